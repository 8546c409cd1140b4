"""Fitting engine vs ForceBalance 1.9.5 on one 24-point torsion profile (issue 4 benchmark).

The problem, identical on every side:

* data: a GFN2-xTB torsion drive (15 degree grid, 24 constrained optimizations, ffparam's
  ``run_torsiondrive``) of the aryl-amide bond of 3-fluorobenzamide (one rotatable bond;
  the meta F makes the two ring sides distinct, so the profile has no 180-degree
  symmetry), computed once and cached in ``--cache`` (default
  ``$TMPDIR/ffparam-bench-fit``);
* force field: OpenFF Sage 2.2.1 with AM1-BCC charges; the four torsions around the bond
  get bespoke SMIRKS parameters (periodicities 1-4, Sage's values copied in); free are the
  k1..k4 of the one parameter on the scanned dihedral (phases fixed), start = Sage
  (k2 = 1.063 kcal/mol, phase 180; the k that Sage leaves at 0 start at ``ZERO_K``);
* parameter space: x = (k - k_start) / 6 kcal/mol (ForceBalance's rescaling factor via
  ``priors``, ffparam's ``prior_width``); priors / penalties off on both sides;
* objective: mean squared error of relative energies, kcal^2/mol^2, one target, weight 1:
  single points on the QM geometries, relative to the profile mean (ForceBalance
  ``AbInitio_OpenMM`` with ``energy_mode average``, ``energy_rms_override`` 1 kcal/mol;
  ffparam ``TorsionProfileTarget(mode="single_point", reference="mean")``); and MM-relaxed
  profiles relative to the point at the QM minimum (ForceBalance ``TorsionProfile_OpenMM``,
  ``restrain_k`` 1 kcal/mol/A^2, the 4 dihedral atoms frozen; ffparam ``mode="relaxed"``,
  ``reference="min"``, tether 1 kcal/mol/A^2, dihedral restrained at 5000 kcal/mol/rad^2 —
  ffparam has no frozen atoms, the one difference the two codes leave).

Columns: ffparam (trust-region least squares, autograd Jacobian), scipy ``least_squares``
(trf) with 2-point finite-difference Jacobians (step 1e-3 in x, ForceBalance's
``finite_difference_h``) on ffparam's residuals, and ForceBalance (``jobtype newton``, its
default trust radius and convergence criteria, OpenMM Reference platform, double
precision). Every final parameter set is scored by one independent evaluator: the exported
OpenMM ForceField XML with the fitted k written in, ``openmm.app.ForceField.createSystem``
on the exported PDB, energies on the 24 QM geometries (single point) and after OpenMM
minimizations at every grid point with either relaxation protocol (dihedral restrained,
ffparam's; dihedral atoms frozen, ForceBalance's). For the relaxed problems, scipy on the
evaluator's own residuals finds each protocol's optimum from the start (``reference
optimum``), which checks that each code reached the optimum of its own objective.

ForceBalance 1.9.5 needs ``pkg_resources`` (gone from setuptools >= 81) and pymbar 3's
``pymbar.pymbar`` module name, and passes an energy-unit tolerance to OpenMM's
``Simulation.minimizeEnergy``, which OpenMM >= 8 rejects (TypeError). The ForceBalance side
therefore runs in a subprocess whose ``PYTHONPATH`` starts with a private ``setuptools<81``
directory (installed by this script with the project's pip into the cache, never into the
project environment), aliases ``pymbar.pymbar`` to the installed pymbar 4 (only its Liquid
target, unused, needs it) and hands ``minimizeEnergy`` the same number in kJ/mol/nm (the RMS
force criterion it always was).

Usage::

    python benchmarks/bench_fit.py [--repeats 3] [--modes single_point relaxed]
        [--sides ffparam scipy_fd forcebalance] [--fb-platform Reference|CPU]
        [--json OUT] [--cache DIR] [--keep]

Timings are single-threaded (OMP/MKL/OpenMM threads = 1 on every side), best of
``--repeats``; the load average is recorded next to them.

The code: ``fit_bench/problem.py`` (the data, the system, the ffxml), ``ffparam_side.py``
(ffparam and scipy FD), ``forcebalance_side.py`` (the ForceBalance project, subprocess and
worker), ``evaluator.py`` (the OpenMM scores and reference optima), ``report.py`` (the
figures and tables); this script runs them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from fit_bench.evaluator import OpenMMEvaluator, reference_optimum
from fit_bench.ffparam_side import ffparam_fit
from fit_bench.forcebalance_side import forcebalance_fit, forcebalance_shim, forcebalance_worker
from fit_bench.problem import (
    METHOD,
    NAME,
    SINGLE_THREAD,
    SMILES,
    FitRun,
    Problem,
    build_problem,
    load_scan,
)
from fit_bench.report import machine, mode_result, table

from ffparam.io.atomic import write_json_atomic

SIDES = ("ffparam", "scipy_fd", "forcebalance")


def fit_mode(
    problem: Problem,
    mode: str,
    args: argparse.Namespace,
    sides: list[str],
    shim: Path | None,
    workdir: Path,
) -> dict[str, list[FitRun]]:
    """Every repeat of every side on ``mode``, interleaved; one line printed per fit."""
    runs: dict[str, list[FitRun]] = {side: [] for side in sides}
    for repeat in range(args.repeats):
        for side in sides:
            if side == "forcebalance":
                fit = forcebalance_fit(problem, mode, shim, workdir, args.fb_platform)
            else:
                fit = ffparam_fit(problem, mode, "autograd" if side == "ffparam" else "fd")
            runs[side].append(fit)
            print(
                f"{mode:12s} {side:12s} repeat {repeat + 1}: {fit.seconds:8.2f} s, "
                f"objective {fit.objective_start:.4f} -> {fit.objective_final:.6f}, "
                f"k = {np.round(fit.k, 4).tolist()}, load {fit.load[0]:.2f}",
                flush=True,
            )
    return runs


def run(args: argparse.Namespace) -> dict:
    """The benchmark: problem, fits of every side and mode, evaluator scores."""
    import torch

    torch.set_num_threads(1)
    cache = Path(args.cache).resolve()  # the ForceBalance worker runs in its own folder
    cache.mkdir(parents=True, exist_ok=True)
    scan = load_scan(cache)
    workdir = Path(tempfile.mkdtemp(prefix="bench-fit-", dir=cache))
    problem = build_problem(scan, workdir)
    evaluator = OpenMMEvaluator(problem)
    sides = [side for side in SIDES if side in args.sides]
    shim = forcebalance_shim(cache) if "forcebalance" in sides else None
    out = {
        "machine": machine(),
        "molecule": NAME,
        "smiles": SMILES,
        "method": METHOD,
        "scan_seconds": scan.seconds,
        "dihedral": list(scan.dihedral),
        "periodicities": problem.periodicities,
        "k_start": problem.start.tolist(),
        "rmse_start": evaluator.rmse(problem.start),
        "modes": {},
    }
    for mode in args.modes:
        runs = fit_mode(problem, mode, args, sides, shim, workdir)
        out["modes"][mode] = mode_result(runs, evaluator)
        if mode == "relaxed":
            out["reference_optima"] = {
                protocol: reference_optimum(problem, evaluator, protocol)
                for protocol in ("restrained", "frozen")
            }
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> None:
    """Parse the options; run the benchmark (or, with ``--fb-worker``, ForceBalance)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["single_point", "relaxed"],
        choices=["single_point", "relaxed"],
    )
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ffparam-bench-fit"))
    parser.add_argument("--json", help="write all figures to this file")
    parser.add_argument(
        "--fb-platform",
        default="Reference",
        choices=["Reference", "CPU"],
        help="OpenMM platform of the ForceBalance side",
    )
    parser.add_argument("--keep", action="store_true", help="keep the ForceBalance runs")
    parser.add_argument("--fb-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fb_worker:
        forcebalance_worker(Path(args.fb_worker))
        return
    for name, value in SINGLE_THREAD.items():
        os.environ.setdefault(name, value)
    out = run(args)
    print(table(out))
    if args.json:
        write_json_atomic(args.json, out, indent=1)


if __name__ == "__main__":
    main()
