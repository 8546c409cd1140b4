"""The report of ``bench_fit.py``: the machine, each side's best repeat scored by the
evaluator (:func:`mode_result`), and the Markdown tables printed at the end
(:func:`table`)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from fit_bench.evaluator import OpenMMEvaluator
from fit_bench.problem import FitRun


def best(runs: list[FitRun]) -> FitRun:
    """The fastest of a side's repeats."""
    return min(runs, key=lambda r: r.seconds)


def mode_result(runs: dict[str, list[FitRun]], evaluator: OpenMMEvaluator) -> dict:
    """Per side: the best repeat's figures, every repeat's time and load, the evaluator's
    RMSE of its k and (next to ffparam) its time over ffparam's."""
    result = {}
    for side, fits in runs.items():
        chosen = best(fits)
        result[side] = {
            "seconds_best": chosen.seconds,
            "seconds_all": [f.seconds for f in fits],
            "k": chosen.k.tolist(),
            "iterations": chosen.iterations,
            "profile_evaluations": chosen.profile_evaluations,
            "relaxations": chosen.relaxations,
            "objective_start": chosen.objective_start,
            "objective_final": chosen.objective_final,
            "load": [f.load for f in fits],
            "extra": chosen.extra,
            "rmse": evaluator.rmse(chosen.k),
        }
    sides = list(runs)
    for side in sides[1:] if sides[0] == "ffparam" else []:
        result[side]["time_ratio_vs_ffparam"] = (
            result[side]["seconds_best"] / result["ffparam"]["seconds_best"]
        )
    return result


def machine() -> dict:
    """CPU, core count, library versions and date of the run."""
    import openmm
    import scipy
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "openmm": openmm.__version__,
        "scipy": scipy.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


ROWS = [
    ("wall s (best)", lambda r: f"{r['seconds_best']:.2f}"),
    ("wall s (all)", lambda r: ", ".join(f"{s:.1f}" for s in r["seconds_all"])),
    (
        "time / ffparam",
        lambda r: f"{r['time_ratio_vs_ffparam']:.2f}" if "time_ratio_vs_ffparam" in r else "-",
    ),
    ("iterations (Jacobians)", lambda r: str(r["iterations"])),
    ("profile evaluations", lambda r: str(r["profile_evaluations"])),
    ("relaxed profiles", lambda r: str(r["relaxations"])),
    (
        "objective start -> final",
        lambda r: f"{r['objective_start']:.4f} -> {r['objective_final']:.5f}",
    ),
    ("k1..k4 kcal/mol", lambda r: " ".join(f"{v:.3f}" for v in r["k"])),
    ("RMSE single point (mean)", lambda r: f"{r['rmse']['single_point_mean']:.4f}"),
    ("RMSE single point (min)", lambda r: f"{r['rmse']['single_point_min']:.4f}"),
    (
        "RMSE relaxed, dihedral restrained (min)",
        lambda r: f"{r['rmse']['relaxed_restrained']:.4f}",
    ),
    (
        "RMSE relaxed, dihedral atoms frozen (min)",
        lambda r: f"{r['rmse']['relaxed_frozen']:.4f}",
    ),
    ("load avg (1 min)", lambda r: " ".join(f"{a:.1f}" for a, _ in r["load"])),
]
"""(label, cell of one side's result) of each row of a mode's table."""


def table(out: dict) -> str:
    """The figures of ``out`` (:func:`bench_fit.run`) as one Markdown table per mode."""
    lines = [
        f"{out['molecule']} ({out['smiles']}), {out['method']} 15-degree drive, "
        f"k(n=1..4) start {np.round(out['k_start'], 4).tolist()} kcal/mol; start RMSE "
        + ", ".join(f"{k} {v:.3f}" for k, v in out["rmse_start"].items()),
        "",
    ]
    for mode, result in out["modes"].items():
        lines.append(f"mode {mode}")
        lines.append("| | " + " | ".join(result) + " |")
        lines.append("| --- |" + " --- |" * len(result))
        for label, cell in ROWS:
            lines.append(f"| {label} | " + " | ".join(cell(r) for r in result.values()) + " |")
        fb = result.get("forcebalance")
        if fb:
            extra = fb["extra"]
            lines.append(
                f"\nForceBalance best run: setup {extra['setup_s']:.2f} s + optimizer "
                f"{extra['run_s']:.2f} s; whole subprocess incl. Python imports "
                f"{extra['process_s']:.2f} s"
            )
        lines.append("")
    for protocol, optimum in out.get("reference_optima", {}).items():
        lines.append(
            f"reference optimum, relaxed ({protocol}), scipy FD on OpenMM minimizations: "
            f"objective {optimum['objective']:.6f}, k "
            + " ".join(f"{v:.4f}" for v in optimum["k"])
            + f", {optimum['evaluations']} relaxed profiles, {optimum['seconds']:.1f} s"
        )
    return "\n".join(lines)
