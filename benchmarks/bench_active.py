"""Pool-based active learning against random selection (issue 16), no QM cost.

    OMP_NUM_THREADS=1 nice python benchmarks/bench_active.py --data ../shared/data/ml \
        --dataset ethanol --model gpr --seeds 0 1 2 --budget 200 --out /tmp/bench_active

For each seed, the same loop (:func:`ffparam.ml.active.run_active`: start from ``--initial``
pool frames, add ``--per-round`` per round, every 10th label a validation frame) runs twice:
choosing the most uncertain diverse candidates ("active") and choosing at random
("random"). After every round the model is scored on the held-out test frames. Printed and
written to OUT/summary.json: test force MAE (meV/A) against labels per method and seed, and
the smallest number of active labels whose mean MAE reaches random's mean MAE at the
budget. Splits as in bench_mlp.py (ethanol: 900 pool / 50 test of rMD17, seed 0; acac:
500 pool from acac_train_300K, test 650 frames of acac_test_MD_300K; 3BPA 450 / 50).
GP hyperparameters are fixed per dataset (``GP_FIXED``: chosen on validation frames by
bench_mlp's full fits) so that the comparison is of the data, not of the hyperparameter
search; networks train as 5-member committees for ``--time-budget`` CPU s each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic
from ffparam.ml.active import ActiveSettings, PoolLabeller, RandomPoolLabeller, run_active
from ffparam.ml.data import read_extxyz, read_isolated_atoms, split_indices
from ffparam.workflows.mlp_active import MlpActiveSettings, make_trainer

GP_FIXED = {
    "ethanol": {"length_scale": 12.8, "force_noise": 1e-5, "learn_weights": False},
    "acac": {"length_scale": 3.2, "force_noise": 1e-4, "learn_weights": False},
    "3bpa": {"length_scale": 3.2, "force_noise": 1e-4, "learn_weights": False},
}
"""Fixed GP options per dataset (GPSettings fields)."""


def load(data: Path, name: str):
    """(pool, test, reference energies) of a dataset."""
    if name == "ethanol":
        frames = read_extxyz(data / "ethanol_rmd17_train.xyz")
        split = split_indices(len(frames), 900, 0, 50, seed=0)
        pool, test = frames.subset(split.train), frames.subset(split.test)
    elif name == "acac":
        pool = read_extxyz(data / "acac_train_300K.xyz")
        test = read_extxyz(data / "acac_test_MD_300K.xyz")
    else:
        frames = read_extxyz(data / "3bpa_train_300K.xyz")
        split = split_indices(len(frames), 450, 0, 50, seed=0)
        pool, test = frames.subset(split.train), frames.subset(split.test)
    return pool, test, read_isolated_atoms(data / f"{name}_isolated_atoms.xyz")


def run_dir(args, name: str, method: str, seed: int) -> Path:
    """OUT/DATASET/MODEL/TAG_seedN of one run (TAG: random, or active-CRITERION)."""
    tag = method if method == "random" else f"{method}-{args.criterion}"
    return Path(args.out) / name / args.model / f"{tag}_seed{seed}"


def collect(args, name: str, method: str, seed: int) -> list[dict]:
    """The scored rounds a run has finished so far (``--report``: nothing is run)."""
    rows = []
    for path in sorted(run_dir(args, name, method, seed).glob("rounds/*/round.json")):
        record = json.loads(path.read_text())
        if "test_force_mae_mev_a" in record:
            rows.append({"n_labels": record["n_labels"],
                         "test_force_mae_mev_a": record["test_force_mae_mev_a"],
                         "test_calibration": record.get("test_calibration")})
    return rows


def run(args, name: str, method: str, seed: int) -> list[dict]:
    pool, test, refs = load(Path(args.data), name)
    loop = ActiveSettings(budget=args.budget, initial=args.initial, per_round=args.per_round,
                          seed=seed, criterion=args.criterion)
    labeller = (RandomPoolLabeller(pool, args.per_round, seed) if method == "random"
                else PoolLabeller(pool, args.max_candidates, seed))
    settings = MlpActiveSettings(model=args.model, time_budget_s=args.time_budget)
    options = GP_FIXED[name] if args.model == "gpr" else {}
    out = run_dir(args, name, method, seed)
    t0 = time.perf_counter()
    summary = run_active(labeller, make_trainer(settings, refs, seed, options), loop, out, test)
    print(f"{name} {args.model} {out.name}: {time.perf_counter() - t0:.0f} s wall",
          flush=True)
    return [{"n_labels": r["n_labels"], "test_force_mae_mev_a": r["test_force_mae_mev_a"],
             "test_calibration": r.get("test_calibration")}
            for r in summary["rounds"] if "test_force_mae_mev_a" in r]


def mean_curve(rows_by_seed: dict) -> dict[int, float]:
    """Test force MAE (meV/A) averaged over seeds, by number of labels."""
    by_n: dict[int, list[float]] = {}
    for rows in rows_by_seed.values():
        for row in rows:
            by_n.setdefault(row["n_labels"], []).append(row["test_force_mae_mev_a"])
    return {n: float(np.mean(v)) for n, v in sorted(by_n.items())}


def markdown_table(curves: dict, points=(20, 50, 100, 150, 200, 300)) -> str:
    """Mean test force MAE per method at ``points`` labels, as a Markdown table."""
    means = {method: mean_curve(seeds) for method, seeds in curves.items()}
    shown = [n for n in points if any(n in m for m in means.values())]
    lines = ["| labels | " + " | ".join(map(str, shown)) + " |",
             "| --- |" + " --- |" * len(shown)]
    for method, curve in means.items():
        cells = [f"{curve[n]:.1f}" if n in curve else "" for n in shown]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def labels_to_match(curves: dict, budget: int) -> int | None:
    """Fewest active labels whose mean test MAE is at most random's mean MAE at budget."""
    active, random = mean_curve(curves["active"]), mean_curve(curves["random"])
    target = random.get(max(random)) if random else None
    return next((n for n, mae in active.items() if mae <= target), None) if target else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/ml")
    parser.add_argument("--dataset", default="ethanol", choices=sorted(GP_FIXED))
    parser.add_argument("--model", default="gpr")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--max-candidates", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None)
    parser.add_argument("--methods", nargs="+", default=["active", "random"])
    parser.add_argument("--criterion", default=ActiveSettings.criterion,
                        help="batch criterion of the active runs (ActiveSettings.criterion)")
    parser.add_argument("--out", default="/tmp/bench_active")
    parser.add_argument("--report", action="store_true",
                        help="only tabulate the rounds already finished under --out")
    args = parser.parse_args()
    step = collect if args.report else run
    curves = {m: {s: step(args, args.dataset, m, s) for s in args.seeds} for m in args.methods}
    result = {"dataset": args.dataset, "model": args.model, "budget": args.budget,
              "criterion": args.criterion, "curves": curves}
    if set(args.methods) >= {"active", "random"}:
        result["active_labels_to_match_random_at_budget"] = labels_to_match(curves,
                                                                            args.budget)
    write_json_atomic(Path(args.out)
                      / f"summary_{args.dataset}_{args.model}_{args.criterion}.json", result)
    for method, seeds in curves.items():
        for seed, rows in seeds.items():
            print(method, seed, " ".join(f"{r['n_labels']}:{r['test_force_mae_mev_a']:.1f}"
                                         for r in rows))
    print("active labels to match random at the budget:",
          result.get("active_labels_to_match_random_at_budget"))
    print(markdown_table(curves))


if __name__ == "__main__":
    main()
