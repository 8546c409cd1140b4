#!/usr/bin/env bash
# Seed sweep: run every test marked `stochastic` once per seed (FFPARAM_TEST_SEED, read by
# the `seed` fixture of tests/conftest.py). A stochastic test asserts only what holds for
# every valid trajectory, so it must pass for every seed.
#
#   tests/seed_sweep.sh                      # seeds 1-5, "stochastic and not slow", -n 2
#   SEEDS="1 2 3 4 5 6 7" tests/seed_sweep.sh -p no:xdist tests/validate/test_md.py
#   MARK="stochastic" tests/seed_sweep.sh    # the slow stochastic tests too
#
# PY: python to use (default .venv/bin/python, else python3); PYTEST_PAR: parallel options
# (default "-n 2 --dist loadgroup", empty when the arguments say -p no:xdist). Extra
# arguments go to pytest. Prints one line per seed with its time; exits 1 if any seed failed.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
SEEDS=${SEEDS:-"1 2 3 4 5"}
MARK=${MARK:-"stochastic and not slow"}
case " $* " in
  *" no:xdist "*) PAR=${PYTEST_PAR:-} ;;
  *) PAR=${PYTEST_PAR:-"-n 2 --dist loadgroup"} ;;
esac
failed=""
for seed in $SEEDS; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  if FFPARAM_TEST_SEED=$seed "$PY" -m pytest -q -m "$MARK" $PAR "$@"; then
    outcome=passed
  else
    outcome=FAILED
    failed="$failed $seed"
  fi
  echo "seed-sweep: seed $seed $outcome in $(( $(date +%s) - start )) s"
done
if [ -n "$failed" ]; then
  echo "seed-sweep: failed for seed(s)$failed"
  exit 1
fi
echo "seed-sweep: all seeds passed ($SEEDS)"
