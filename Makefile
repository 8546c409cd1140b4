# ffparam: `make demo` and `make test` work on a fresh machine (they create .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ffparam-installed
BENCH_STAMP := $(VENV)/.ffparam-bench-installed

.PHONY: venv demo test test-all seed-sweep bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# the benchmarks' peers (ForceBalance for bench_fit.py), on top of the test set-up
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -c constraints.txt -e ".[dev,bench]"
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(VENV)/bin/ffparam demo --out demo_out --workers 2

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-all: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "slow or not slow"
	PY=$(PY) tests/seed_sweep.sh

# every test marked `stochastic` once per seed (1-5): each must hold for any valid trajectory
seed-sweep: $(STAMP)
	PY=$(PY) tests/seed_sweep.sh

bench: $(BENCH_STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
