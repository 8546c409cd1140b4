"""The ForceBalance side of ``bench_fit.py``: the ForceBalance 1.9.5 project of the problem
(:func:`write_forcebalance_project`), run in a subprocess (:func:`forcebalance_fit`, which
runs ``bench_fit.py --fb-worker DIR``, i.e. :func:`forcebalance_worker`) with a private
``setuptools<81`` first on its path (:func:`forcebalance_shim`); see ``bench_fit.py`` for
why ForceBalance needs the shims."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ffparam.io.atomic import write_json_atomic, write_text_atomic
from ffparam.units import KJ_PER_KCAL
from fit_bench.problem import (
    FD_STEP,
    K_POSITION,
    PRIOR_KCAL,
    ROOT,
    SINGLE_THREAD,
    SPACING,
    FitRun,
    Problem,
    Scan,
    ffxml_with_k,
    proper_element,
)

BENCH_FIT = Path(__file__).resolve().parents[1] / "bench_fit.py"
"""The script whose ``--fb-worker DIR`` runs :func:`forcebalance_worker` in a subprocess."""
FB_TARGET = {"single_point": "AbInitio_OpenMM", "relaxed": "TorsionProfile_OpenMM"}
AU2KJ = 2625.4996394798254
"""ForceBalance's Hartree -> kJ/mol factor (``forcebalance.nifty.au2kj``)."""


def forcebalance_shim(cache: Path) -> Path:
    """A directory holding setuptools<81 (for ``pkg_resources``), put first on the
    ForceBalance subprocess's PYTHONPATH; installed once with the project's pip."""
    shim = cache / "fb-shim"
    if not (shim / "pkg_resources" / "__init__.py").exists():
        shutil.rmtree(shim, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "-c",
                str(ROOT / "constraints.txt"),
                "--target",
                str(shim),
                "setuptools<81",
            ],
            check=True,
        )
    return shim


def _write_scan(scan: Scan, target: Path) -> None:
    """targets/profile/{scan.xyz,qdata.txt,metadata.json}: QM geometries, energies, grid."""
    frames = []
    for i, xyz in enumerate(scan.geometries):
        frames.append(f"{len(xyz)}\nframe {i}\n")
        for symbol, (x, y, z) in zip(scan.symbols, xyz):
            frames.append(f"{symbol:2s} {x:.10f} {y:.10f} {z:.10f}\n")
    write_text_atomic(target / "scan.xyz", "".join(frames))
    # ForceBalance reads Hartree and multiplies by its own au->kJ/mol factor: write the
    # values it maps back onto our kcal/mol exactly
    write_text_atomic(
        target / "qdata.txt",
        "".join(
            f"JOB {i}\nENERGY {energy * KJ_PER_KCAL / AU2KJ:.16e}\n\n"
            for i, energy in enumerate(scan.energies - scan.energies.min())
        ),
    )
    metadata = {
        "dihedrals": [list(scan.dihedral)],
        "grid_spacing": [SPACING],
        "dihedral_ranges": None,
        "torsion_grid_ids": [[round(float(a))] for a in scan.angles],
    }
    write_json_atomic(target / "metadata.json", metadata, indent=None)


def _optimize_in(mode: str, platform_name: str) -> str:
    """optimize.in: Newton-Raphson, priors = the rescaling, one target of ``mode``."""
    prior = PRIOR_KCAL * KJ_PER_KCAL
    priors = "\n".join(f"   Proper/k{m} : {prior!r}" for m in range(1, 9))
    target_options = {
        "single_point": "energy 1\nforce 0\nenergy_mode average\n"
        f"energy_rms_override {KJ_PER_KCAL!r}\n",
        "relaxed": f"restrain_k {K_POSITION!r}\nenergy_denom 1.0\nattenuate 0\n",
    }[mode]
    return f"""$options
jobtype newton
forcefield bench.xml
penalty_type L2
penalty_additive 0.0
finite_difference_h {FD_STEP!r}
backup 0
retain_micro_outputs 0
priors
{priors}
/priors
$end

$target
name profile
type {FB_TARGET[mode]}
weight 1.0
pdb conf.pdb
coords scan.xyz
openmm_platform {platform_name}
openmm_precision double
writelevel 0
{target_options}$end
"""


def write_forcebalance_project(
    problem: Problem, mode: str, directory: Path, platform_name: str = "Reference"
) -> None:
    """ForceBalance input: optimize.in, forcefield/bench.xml, targets/profile/*."""
    (directory / "forcefield").mkdir(parents=True)
    target = directory / "targets" / "profile"
    target.mkdir(parents=True)
    start = dict(zip(problem.periodicities, problem.start))
    write_text_atomic(
        directory / "forcefield" / "bench.xml", ffxml_with_k(problem, start, parameterize=True)
    )
    shutil.copy(problem.pdb, target / "conf.pdb")
    _write_scan(problem.scan, target)
    write_text_atomic(directory / "optimize.in", _optimize_in(mode, platform_name))


def forcebalance_fit(
    problem: Problem, mode: str, shim: Path, workdir: Path, platform_name: str = "Reference"
) -> FitRun:
    """Run ForceBalance in a subprocess (see the module docstring) and read its result."""
    directory = Path(tempfile.mkdtemp(prefix=f"fb-{mode}-", dir=workdir))
    write_forcebalance_project(problem, mode, directory, platform_name)
    env = dict(os.environ, **SINGLE_THREAD)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BENCH_FIT), "--fb-worker", str(directory)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    process_seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ForceBalance failed ({directory}):\n{done.stderr[-3000:]}")
    result = json.loads((directory / "fb_result.json").read_text())
    by_period = {}
    tree = ET.fromstring((directory / "forcefield" / "bench.xml").read_text())
    element = proper_element(tree, problem.quad_types)
    for pid, value in result["pvals"].items():
        attribute = pid.split("/")[1]
        m = attribute[1:]
        by_period[int(element.get(f"periodicity{m}"))] = value / KJ_PER_KCAL
    k = np.array([by_period[n] for n in problem.periodicities])
    n_points = len(problem.scan.energies)
    extra = {
        "setup_s": result["setup_s"],
        "run_s": result["run_s"],
        "process_s": process_seconds,
        "directory": str(directory),
        "objective_calls": result["objective_calls"],
    }
    return FitRun(
        k,
        result["setup_s"] + result["run_s"],
        result["gradient_calls"],
        result["profile_evaluations"],
        result["minimizations"] // n_points,
        result["objective_start"],
        result["objective_final"],
        (load0, os.getloadavg()[0]),
        extra,
    )


# --------------------------------------------------------------------------- in the subprocess
def _accept_energy_tolerance() -> None:
    """Let OpenMM >= 8's ``Simulation.minimizeEnergy`` take ForceBalance 1.9.5's tolerance in
    kJ/mol: the same number (the RMS force criterion it always was) in kJ/mol/nm; OpenMM
    raises a TypeError otherwise."""
    from openmm import app, unit

    minimize = app.Simulation.minimizeEnergy

    def minimize_energy(
        self, tolerance=10 * unit.kilojoule_per_mole / unit.nanometer, *args, **kwargs
    ):
        if unit.is_quantity(tolerance) and tolerance.unit.is_compatible(unit.kilojoule_per_mole):
            tolerance = (
                tolerance.value_in_unit(unit.kilojoule_per_mole)
                * unit.kilojoule_per_mole
                / unit.nanometer
            )
        return minimize(self, tolerance, *args, **kwargs)

    app.Simulation.minimizeEnergy = minimize_energy


def _count_calls(counts: dict[str, int], values: list[float]) -> None:
    """Count, in ``counts``, ForceBalance's objective evaluations (``objective``; their
    values appended to ``values``), those with a gradient (``gradient``), its profile
    evaluations (``profiles``) and MM minimizations (``minimizations``)."""
    import forcebalance.objective
    from forcebalance.abinitio import AbInitio
    from forcebalance.objective import Objective
    from forcebalance.openmmio import OpenMM

    full = Objective.Full

    def counted_full(self, vals, Order=0, *args, **kwargs):
        counts["objective"] += 1
        counts["gradient"] += int(Order > 0)
        answer = full(self, vals, Order, *args, **kwargs)
        values.append(float(answer["X"]))
        return answer

    Objective.Full = counted_full
    forcebalance.objective.Objective.Full = counted_full
    optimize = OpenMM.optimize

    def counted_optimize(self, *args, **kwargs):
        counts["minimizations"] += 1
        return optimize(self, *args, **kwargs)

    OpenMM.optimize = counted_optimize
    transform = AbInitio.energy_force_transform

    def counted_transform(self):
        counts["profiles"] += 1
        return transform(self)

    AbInitio.energy_force_transform = counted_transform


def forcebalance_worker(directory: Path) -> None:
    """Inside the subprocess: set up and run ForceBalance in ``directory``; its result
    (parameters, seconds, counts, objective before and after) goes to fb_result.json."""
    import pymbar

    pymbar.pymbar = pymbar  # ForceBalance's liquid module imports pymbar 3's module name
    _accept_energy_tolerance()
    os.chdir(directory)
    from forcebalance.forcefield import FF
    from forcebalance.objective import Objective
    from forcebalance.optimizer import Optimizer
    from forcebalance.parser import parse_inputs

    counts = {"objective": 0, "gradient": 0, "profiles": 0, "minimizations": 0}
    values: list[float] = []
    _count_calls(counts, values)
    start = time.perf_counter()
    options, target_options = parse_inputs("optimize.in")
    forcefield = FF(options)
    objective = Objective(options, target_options, forcefield)
    optimizer = Optimizer(options, objective, forcefield)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    mvals = optimizer.Run()
    run = time.perf_counter() - start
    pvals = forcefield.create_pvals(np.asarray(mvals, dtype=float))
    if counts["minimizations"]:
        counts["profiles"] = counts["minimizations"] // len(objective.Targets[0].eqm)
    fit_counts = dict(counts)  # the fit's own counts, before the evaluation below
    final = objective.Full(np.asarray(mvals, dtype=float), Order=0)["X"]
    result = {
        "mvals": [float(v) for v in mvals],
        "pvals": {name: float(pvals[i]) for name, i in forcefield.map.items()},
        "setup_s": setup,
        "run_s": run,
        "objective_calls": fit_counts["objective"],
        "gradient_calls": fit_counts["gradient"],
        "profile_evaluations": fit_counts["profiles"],
        "minimizations": fit_counts["minimizations"],
        "objective_start": values[0],
        "objective_final": float(final),
    }
    write_json_atomic(directory / "fb_result.json", result, indent=None)
