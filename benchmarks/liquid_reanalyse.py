"""Copy a finished ``bench_liquid.py`` fit to a new directory for re-analysis with other
run lengths (e.g. a longer gas phase), without re-simulating what exists.

Every round keeps its parameters x, trust radius and proposal; its results are cleared and
the fingerprint is stamped for the new settings. Rerunning ``bench_liquid.py`` with the same
options on the new directory then reuses the liquid frames and their per-frame LJ sums,
extends each run that is now too short from its checkpoint, and recomputes every property,
objective and acceptance. Usage::

    python benchmarks/liquid_reanalyse.py tmp/bench_liquid_v2 tmp/bench_liquid_v3 --gas-ns 25 \\
        --no-worse 0.5
    python benchmarks/bench_liquid.py --stage all --iterations 1 --gas-ns 25 --no-worse 0.5 \\
        --out tmp/bench_liquid_v3
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_liquid as bl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--equil-ps", type=float, default=50.0)
    parser.add_argument("--prod-ps", type=float, default=200.0)
    parser.add_argument("--gas-ns", type=float, default=25.0)
    parser.add_argument("--trust-radius", type=float, default=0.4)
    parser.add_argument("--no-worse", type=float, default=-1.0)
    parser.add_argument("--model-safety", type=float, default=1.5)
    parser.add_argument("--holdout", nargs="*", default=list(bl.HOLDOUT))
    parser.add_argument("--csv", type=Path, default=bl.DEFAULT_CSV)
    args = parser.parse_args()
    args.iterations, args.workers, args.params = 1, 2, []

    from ffparam.liquid import fit_state as fs
    from ffparam.liquid.data import read_liquids_csv

    if args.target.exists():
        sys.exit(f"{args.target} exists; choose a new directory")
    references = read_liquids_csv(args.csv)
    args.params = bl.training_params(references, args.holdout)
    shutil.copytree(args.source, args.target)
    state_path = args.target / "fit" / fs.STATE_FILE
    old = fs.read_fit_state(state_path)
    rounds = tuple(fs.FitRound(r.index, r.x, r.trust_radius, r.from_round,
                               step_norm=r.step_norm, predicted_change=r.predicted_change)
                   for r in old.rounds)
    validation = None if old.validation is None else fs.FitValidation(old.validation.round)
    state = fs.LiquidFitState(fs.fit_fingerprint(references, bl.options(args)), rounds, 0,
                              validation)
    state.save(state_path)
    for name in ("fit_history.json", "metrics.json"):
        (args.target / "fit" / name).unlink(missing_ok=True)
    print(f"{args.target}: {len(state.rounds)} round(s) to re-analyse")


if __name__ == "__main__":
    main()
