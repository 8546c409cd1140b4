"""ML potentials on rMD17 ethanol, acetylacetone and 3BPA: ffparam's ANI, SchNet and GP against
MACE (mace-torch's own trainer, small CPU settings) trained in the same run at equal data and
equal training CPU time.

Splits (all seeded, seed 0):
* ethanol: the 1000 frames of ethanol_rmd17_train.xyz -> 50 test frames held out first, then
  50 validation, then up to 900 training frames. (950 train + 50 valid would leave nothing
  for a disjoint test set, so 50 of the 950 are held out as test.) Learning curve on 50, 200
  and 900 frames (nested subsets, same validation and test frames).
* acetylacetone: acac_train_300K.xyz -> 450 train + 50 valid; test = acac_test_MD_300K.xyz
  (650 frames).
* 3BPA: 3bpa_train_300K.xyz -> 50 test, 50 valid, 400 train.

Every network and MACE gets the same CPU-time budget for its training epochs (process CPU
seconds, one thread); the GP has no budget, its fit time is reported. Training wall time is
reported too (it depends on the machine's load, printed with ``uptime``).

Usage: .venv/bin/python benchmarks/bench_mlp.py [--data ../shared/data/ml] [--scale 1.0]
       [--out /tmp/ffparam_bench_mlp] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from ffparam.io.atomic import write_json_atomic
from ffparam.ml.data import read_extxyz, read_isolated_atoms, split_indices
from ffparam.ml.metrics import error_metrics
from ffparam.ml.models.gp import GPSettings, fit_gp
from ffparam.ml.registry import MODELS
from ffparam.workflows.mlp import train_model

REPO = Path(__file__).resolve().parents[1]
NETWORKS = tuple(name for name, kind in MODELS.items() if kind.network is not None)
MODELS_COMPARED = ("gpr", "ani", "schnet", "mace")
TABLE_HEADER = (
    "| data | model | n_train | E MAE meV | F MAE meV/A | train CPU s | train wall s "
    "| Spearman / miscal. area (F) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
)
BUDGETS = {
    "ethanol": 150.0,
    "acac": 75.0,
    "3bpa": 75.0,
    "lc50": 40.0,
    "lc200": 75.0,
    "committee": 50.0,
}
"""Training CPU seconds per model (multiplied by --scale)."""

GP_SETTINGS = {
    "ethanol": {"max_exact": 200, "n_inducing": 200},
    "acac": {"n_inducing": 100, "n_select": 60, "length_scales": (0.8, 1.6, 3.2, 6.4)},
    "3bpa": {"n_inducing": 60, "n_select": 40, "length_scales": (0.8, 1.6, 3.2, 6.4)},
}
NETWORK_OPTIONS = {"ani": {"lr_patience": 5}, "schnet": {"lr_patience": 5}}


def load(args, name: str):
    train, valid, test, refs = _load(Path(args.data), name)
    if args.quick:  # pipeline smoke test: tiny slices
        return (
            train.subset(np.arange(60)),
            valid.subset(np.arange(10)),
            test.subset(np.arange(10)),
            refs,
        )
    return train, valid, test, refs


def _load(data: Path, name: str):
    if name == "ethanol":
        frames = read_extxyz(data / "ethanol_rmd17_train.xyz")
        split = split_indices(len(frames), 900, 50, 50, seed=0)
        refs = read_isolated_atoms(data / "ethanol_isolated_atoms.xyz")
        return (
            frames.subset(split.train),
            frames.subset(split.valid),
            frames.subset(split.test),
            refs,
        )
    if name == "acac":
        frames = read_extxyz(data / "acac_train_300K.xyz")
        split = split_indices(len(frames), 450, 50, 0, seed=0)
        refs = read_isolated_atoms(data / "acac_isolated_atoms.xyz")
        return (
            frames.subset(split.train),
            frames.subset(split.valid),
            read_extxyz(data / "acac_test_MD_300K.xyz"),
            refs,
        )
    frames = read_extxyz(data / "3bpa_train_300K.xyz")
    split = split_indices(len(frames), 400, 50, 50, seed=0)
    refs = read_isolated_atoms(data / "3bpa_isolated_atoms.xyz")
    return frames.subset(split.train), frames.subset(split.valid), frames.subset(split.test), refs


def run_one(
    model: str,
    train,
    valid,
    test,
    refs,
    out: Path,
    budget: float | None,
    gp_settings: dict | None = None,
    committee: int = 1,
) -> dict:
    """Train one model, evaluate on ``test``; returns a row of figures."""
    shutil.rmtree(out, ignore_errors=True)
    wall0, cpu_children0, cpu0 = time.perf_counter(), _children_cpu(), time.process_time()
    if model == "gpr":
        pot = fit_gp(train, refs, valid, GPSettings(**(gp_settings or {})))
    else:
        pot = train_model(
            model,
            train,
            valid,
            out,
            refs,
            committee=committee,
            time_budget_s=budget,
            max_epochs=100000,
            options=NETWORK_OPTIONS.get(model, {}),
            resume=False,
        )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0 + _children_cpu() - cpu_children0
    pred = pot.predict(test, uncertainty=pot.has_uncertainty)
    row = {
        "model": model if committee == 1 else f"{model} x{committee}",
        "n_train": len(train),
        "budget_cpu_s": budget,
        "train_cpu_s": round(cpu, 1),
        "train_wall_s": round(wall, 1),
        **error_metrics(pred, test),
    }
    meta = getattr(pot, "metadata", {})
    if model == "mace":
        row["epochs"] = meta.get("epochs")
    elif model == "gpr":
        row.update({k: meta.get(k) for k in ("n_basis", "sparse", "n_permutations")})
        row["length_scale"] = pot.length_scale
        row["force_noise"] = pot.cfg.force_noise
        learned = meta.get("weight_learning") or {}
        if learned:
            history, kept = learned["valid_force_mae_ev_a"], learned["best_step"]
            row["weights"] = (f"{len(history) - 1} steps, {learned['cpu_s']:.0f} s CPU, valid F "
                              f"{1000 * history[0]:.1f} -> {1000 * history[kept]:.1f} meV/A "
                              f"(step {kept} kept)")
    elif committee == 1:
        row["epochs"] = meta.get("summary", {}).get("epoch")
    return row


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _fmt(row: dict) -> str:
    cal = row.get("forces_calibration")
    cal_text = f" | {cal['spearman']:.2f} / {cal['miscalibration_area']:.3f}" if cal else " | -"
    return (
        f"| {row['dataset']} | {row['model']} | {row['n_train']} | "
        f"{row['energy_mae_mev']:.2f} | {row['forces_mae_mev_a']:.1f} | "
        f"{row['train_cpu_s']:.0f} | {row['train_wall_s']:.0f}{cal_text} |"
    )


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ml"))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply CPU budgets")
    parser.add_argument("--out", default="/tmp/ffparam_bench_mlp")
    parser.add_argument("--json", default=None, help="write all rows as JSON here")
    parser.add_argument("--only", default="ethanol,lc,committee,acac,3bpa")
    parser.add_argument("--quick", action="store_true", help="tiny slices (smoke test)")
    parser.add_argument("--models", default="gpr,ani,schnet,mace", help="models to run")
    parser.add_argument(
        "--reevaluate",
        default=None,
        metavar="RESULTS.json",
        help="re-evaluate the saved network/MACE models of an earlier run "
        "after the closed-form energy-shift refit (no retraining)",
    )
    return parser.parse_args()


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


class _Bench:
    """The run's options, CPU budgets and rows; trains the wanted models and prints rows."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.budget = {k: v * args.scale for k, v in BUDGETS.items()}
        self.wanted = set(args.models.split(","))
        self.rows: list[dict] = []

    def run(self, dataset: str, model: str, *a, **k) -> None:
        """Train and evaluate ``model`` (if wanted) and record its row under ``dataset``."""
        if model not in self.wanted:
            return
        row = run_one(model, *a, **k)
        row["dataset"] = dataset
        self.rows.append(row)
        print(_fmt(row), flush=True)
        if self.args.json:
            write_json_atomic(self.args.json, self.rows)

    def ethanol(self, parts: list[str]) -> None:
        """The ethanol comparison, the committee and the learning curve."""
        if not {"ethanol", "lc", "committee"} & set(parts):
            return
        train, valid, test, refs = load(self.args, "ethanol")
        if "ethanol" in parts:
            for model in MODELS_COMPARED:
                self.run("ethanol", model, train, valid, test, refs, self.out / f"eth_{model}",
                         self.budget["ethanol"], GP_SETTINGS["ethanol"])
        if "committee" in parts:
            self.run("ethanol", "ani", train, valid, test, refs, self.out / "eth_committee",
                     self.budget["committee"], committee=3)
        if "lc" in parts:
            self.learning_curve(train, valid, test, refs)

    def learning_curve(self, train, valid, test, refs) -> None:
        """50 frames for every model; 200 for the GP and the best ethanol network."""
        eth = [r for r in self.rows if r["dataset"] == "ethanol" and r["model"] in NETWORKS]
        best = min(eth, key=lambda r: r["forces_mae_mev_a"])["model"] if eth else "ani"
        for n, key in ((50, "lc50"), (200, "lc200")):
            n = min(n, len(train) - 5) if self.args.quick else n
            sub = train.subset(np.arange(n))
            for model in MODELS_COMPARED if n == 50 else ("gpr", best):
                self.run(f"ethanol LC{n}", model, sub, valid, test, refs,
                         self.out / f"lc{n}_{model}", self.budget[key], {"max_exact": 200})

    def other_sets(self, parts: list[str]) -> None:
        """Acetylacetone and 3BPA, every model."""
        for name in ("acac", "3bpa"):
            if name not in parts:
                continue
            train, valid, test, refs = load(self.args, name)
            for model in MODELS_COMPARED:
                self.run(name, model, train, valid, test, refs, self.out / f"{name}_{model}",
                         self.budget[name], GP_SETTINGS[name])


def main() -> None:
    args = _parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    if args.reevaluate:
        reevaluate(args)
        return
    bench = _Bench(args)
    bench.out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        for settings in GP_SETTINGS.values():
            settings.update({"n_inducing": 20, "n_select": 20})
    parts = args.only.split(",")
    print(
        f"# bench_mlp {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} "
        f"({os.cpu_count()} CPUs), torch {torch.__version__}, 1 thread per model"
    )
    print("# load:", _uptime())
    print(TABLE_HEADER)
    bench.ethanol(parts)
    bench.other_sets(parts)
    print("# load:", _uptime())
    _summary(bench.rows)


def _model_dir(out: Path, row: dict) -> Path:
    model = row["model"].split(" ")[0]
    if row["model"].endswith("x3"):
        return out / "eth_committee"
    if row["dataset"].startswith("ethanol LC"):
        return out / f"lc{row['dataset'].split('LC')[1]}_{model}"
    prefix = {"ethanol": "eth"}.get(row["dataset"], row["dataset"])
    return out / f"{prefix}_{model}"


def _refit(potential, train):
    from ffparam.ml.committee import Committee
    from ffparam.ml.potential import NetworkPotential
    from ffparam.ml.training import refit_energy_shift

    if isinstance(potential, Committee):
        return Committee([_refit(m, train) for m in potential.members], potential.metadata)
    if isinstance(potential, NetworkPotential):
        refit_energy_shift(potential.model, train)
        return NetworkPotential(potential.model, potential.metadata)
    potential.refit_energy_shift(train)
    return potential


def reevaluate(args) -> None:
    """Saved network/MACE models of an earlier run, energy shifts refitted, evaluated again."""
    from ffparam.ml.potential import load_potential

    rows = json.loads(Path(args.reevaluate).read_text())
    out = Path(args.out)
    sets = {}
    print(TABLE_HEADER)
    new_rows = []
    for row in rows:
        if row["model"] == "gpr":
            new_rows.append(row)
            continue
        base = row["dataset"].split(" ")[0]
        if base not in sets:
            sets[base] = load(args, base)
        train, _, test, _ = sets[base]
        train = train.subset(np.arange(row["n_train"]))
        potential = _refit(load_potential(_model_dir(out, row)), train)
        pred = potential.predict(test, uncertainty=potential.has_uncertainty)
        fresh = {
            **{k: v for k, v in row.items() if "calibration" not in k},
            **error_metrics(pred, test),
            "energy_shift_refit": True,
        }
        new_rows.append(fresh)
        print(_fmt(fresh), flush=True)
    if args.json:
        write_json_atomic(args.json, new_rows)
    _summary(new_rows)


def _summary(rows: list[dict]) -> None:
    for dataset in ("ethanol", "acac", "3bpa"):
        here = {r["model"]: r for r in rows if r["dataset"] == dataset}
        if "mace" not in here:
            continue
        native = {m: r for m, r in here.items() if m in ("ani", "schnet", "gpr")}
        best = min(native, key=lambda m: native[m]["forces_mae_mev_a"])
        ratio = native[best]["forces_mae_mev_a"] / here["mace"]["forces_mae_mev_a"]
        print(
            f"# {dataset}: best ffparam-native model {best}, force MAE ratio to MACE "
            f"{ratio:.2f} (goal <= 2)"
        )
    lc50 = {r["model"]: r["forces_mae_mev_a"] for r in rows if r["dataset"] == "ethanol LC50"}
    if lc50:
        winner = min(lc50, key=lc50.get)
        print(f"# ethanol 50 frames: best force MAE {winner} ({lc50[winner]:.1f} meV/A); goal: gpr")


if __name__ == "__main__":
    main()
