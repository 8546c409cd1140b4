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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMILES = "NC(=O)c1cccc(F)c1"
NAME = "3-fluorobenzamide"
METHOD = "gfn2-xtb"
SPACING = 15
PRIOR_KCAL = 6.0
"""Rescaling of the free k (kcal/mol): ffparam's bespoke torsion prior width, BespokeFit's
ForceBalance prior for ProperTorsions/k."""
FD_STEP = 1e-3
"""Finite-difference step in x (ForceBalance's default ``finite_difference_h``)."""
K_POSITION = 1.0
"""Tether to the QM geometry, kcal/mol/A^2 (ForceBalance ``restrain_k`` default)."""
ZERO_K = 1e-6
"""Start value (kcal/mol) of the free k that Sage leaves at 0, on every side: OpenMM's
``ForceField.createSystem`` skips torsion terms with k = 0, so a ForceBalance
finite-difference step away from 0 adds a term and its in-place parameter copy into the
existing Context fails (``PeriodicTorsionForce`` index out of range)."""
K_DIHEDRAL = 5000.0
"""Dihedral restraint of ffparam's relaxed mode and of the evaluator, kcal/mol/rad^2."""
REFERENCE = {"single_point": "mean", "relaxed": "min"}
SIDES = ("ffparam", "scipy_fd", "forcebalance")
FB_TARGET = {"single_point": "AbInitio_OpenMM", "relaxed": "TorsionProfile_OpenMM"}
SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OPENMM_CPU_THREADS": "1",
}


# --------------------------------------------------------------------------- reference data
@dataclass
class Scan:
    """The cached torsion drive: angles (P,) deg, geometries (P, N, 3) A, energies (P,)
    kcal/mol (absolute GFN2-xTB), dihedral (4,) 0-based, symbols (N,)."""

    angles: np.ndarray
    geometries: np.ndarray
    energies: np.ndarray
    dihedral: tuple[int, int, int, int]
    symbols: list[str]
    seconds: float


def load_scan(cache: Path) -> Scan:
    """Run the GFN2-xTB torsion drive once, then reuse ``cache/<name>-...npz``."""
    from ffparam.chem import Molecule, Topology

    path = cache / f"{NAME}-{METHOD}-{SPACING}deg.npz"
    molecule = Molecule.from_smiles(SMILES, name=NAME)
    if path.exists():
        data = np.load(path)
        if list(data["symbols"]) != molecule.symbols:
            raise SystemExit(f"{path}: atom order differs from {SMILES}; delete it and rerun")
        return Scan(
            data["angles"],
            data["geometries"],
            data["energies"],
            tuple(int(a) for a in data["dihedral"]),
            list(data["symbols"]),
            float(data["seconds"]),
        )
    from ffparam.reference.torsiondrive import run_torsiondrive

    molecule = molecule.generate_conformers(1, seed=7)
    topology = Topology(molecule)
    bonds = topology.rotatable_bonds.tolist()
    if len(bonds) != 1:
        raise SystemExit(f"{NAME}: expected one rotatable bond, found {bonds}")
    dihedral = tuple(int(a) for a in topology.dihedral_for_bond(tuple(bonds[0])))
    start = time.perf_counter()
    result = run_torsiondrive(molecule, [dihedral], METHOD, SPACING, progress=True)
    seconds = time.perf_counter() - start
    if not result.complete or len(result.energies) != 360 // SPACING:
        raise SystemExit(f"torsion drive incomplete: {result.summary}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        angles=result.angles[:, 0],
        geometries=result.geometries,
        energies=result.energies,
        dihedral=np.array(dihedral),
        symbols=np.array(molecule.symbols),
        seconds=seconds,
    )
    tmp.replace(path)
    return load_scan(cache)


# --------------------------------------------------------------------------- the problem
@dataclass
class Problem:
    """The parameterized molecule with k1..k4 of one bespoke torsion free.

    ``periodicities`` (4,) and ``start`` (4,) kcal/mol are in the order of
    ``FitParameters.from_free(system.parameters).groups``.
    """

    scan: Scan
    system: object
    profile: object
    periodicities: list[int]
    start: np.ndarray
    ffxml: Path
    pdb: Path
    quad_types: tuple[str, ...]


def build_problem(scan: Scan, workdir: Path) -> Problem:
    import torch

    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule
    from ffparam.export import export_system
    from ffparam.export.topology import atom_names
    from ffparam.fit.bespoke_torsions import make_bespoke_torsions
    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.targets.torsion import TorsionProfile

    anchor = int(np.argmin(scan.energies))
    molecule = Molecule.from_smiles(SMILES, name=NAME).with_conformers(
        scan.geometries[anchor : anchor + 1]
    )
    sage = assign_parameters(molecule, "sage", charges="am1bcc")
    quad = scan.dihedral
    bespoke = make_bespoke_torsions(sage, [quad[1:3]], max_periodicity=4, prior_width=PRIOR_KCAL)
    system = bespoke.system
    group = system.term_group("ProperTorsions")
    pid = next(
        p
        for a, p in zip(group.atoms.tolist(), group.parameter_ids)
        if tuple(a) in (quad, quad[::-1])
    )
    for key in list(system.parameters.free):
        if key.id != pid:
            del system.parameters.free[key]
    values = system.parameters.get("ProperTorsions", pid).values
    for key in system.parameters.free:  # OpenMM's ForceField drops k = 0 terms (see top)
        if values[key.field] == 0.0:
            values[key.field] = ZERO_K
    fit = FitParameters.from_free(system.parameters)
    parameter = system.parameters.get("ProperTorsions", pid)
    periodicities = [int(parameter.fixed[f"periodicity{g[0].field[1:]}"]) for g in fit.groups]
    start = fit.physical(torch.zeros(fit.size, dtype=torch.float64))
    report = export_system(
        system, workdir / "export", formats=("ffxml",), basename="mol", positions=scan.geometries
    )
    names = atom_names(molecule)
    profile = TorsionProfile(
        [quad], scan.angles[:, None], scan.geometries, scan.energies, label=f"{quad[1]}-{quad[2]}"
    )
    return Problem(
        scan,
        system,
        profile,
        periodicities,
        start.numpy(),
        report.outdir / "mol.forcefield.xml",
        report.outdir / "mol.pdb",
        tuple(f"MOL-{names[a]}" for a in quad),
    )


def proper_element(root: ET.Element, quad_types: tuple[str, ...]) -> ET.Element:
    """The ``<Proper>`` of the scanned dihedral in an exported ffxml."""
    for element in root.iter("Proper"):
        types = tuple(element.get(f"type{i}") for i in range(1, 5))
        if types in (quad_types, quad_types[::-1]):
            return element
    raise SystemExit(f"no <Proper> for {quad_types} in the exported ffxml")


def ffxml_with_k(
    problem: Problem, k_by_period: dict[int, float], parameterize: bool = False
) -> str:
    """The exported ffxml with the scanned torsion's k (kcal/mol) by periodicity written in
    (kJ/mol); with ``parameterize`` the k attributes are marked for ForceBalance."""
    from ffparam.units import KJ_PER_KCAL

    tree = ET.parse(problem.ffxml)
    element = proper_element(tree.getroot(), problem.quad_types)
    attributes = {}
    for m in range(1, 9):
        n = element.get(f"periodicity{m}")
        if n is not None:
            attributes[int(n)] = f"k{m}"
    missing = set(k_by_period) - set(attributes)
    if missing:
        raise SystemExit(f"exported torsion lacks periodicities {sorted(missing)}")
    for n, k in k_by_period.items():
        element.set(attributes[n], repr(float(k) * KJ_PER_KCAL))
    if parameterize:
        element.set("parameterize", ", ".join(attributes[n] for n in sorted(k_by_period)))
    return ET.tostring(tree.getroot(), encoding="unicode")


# --------------------------------------------------------------------------- evaluator
class OpenMMEvaluator:
    """Independent RMSE of a parameter set: OpenMM ForceField XML -> System, energies on
    the QM geometries and after a restrained OpenMM minimization per grid point."""

    def __init__(self, problem: Problem) -> None:
        from openmm import app

        self.problem = problem
        self.pdb = app.PDBFile(str(problem.pdb))
        self.qm = problem.scan.energies - problem.scan.energies.min()
        self.anchor = int(np.argmin(self.qm))

    def system(self, k_by_period: dict[int, float]):
        import io

        from openmm import app

        text = ffxml_with_k(self.problem, k_by_period)
        forcefield = app.ForceField(io.StringIO(text))
        return forcefield.createSystem(
            self.pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None, removeCMMotion=False
        )

    def energies(self, k_by_period: dict[int, float], protocol: str) -> np.ndarray:
        """MM energies (P,) kcal/mol: ``single`` on the QM geometries; after minimizing with
        every atom tethered to its QM position (``K_POSITION``) and either the scanned
        dihedral restrained at its QM value (``restrained``, ffparam's relaxed mode) or its
        four atoms frozen (``frozen``, ForceBalance's TorsionProfile). Restraint energies
        are left out."""
        import openmm
        from openmm import unit

        from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

        system = self.system(k_by_period)
        quad = self.problem.scan.dihedral
        restraints = []
        if protocol != "single":
            tether = openmm.CustomExternalForce("0.5*kp*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
            tether.addGlobalParameter("kp", K_POSITION * KCAL_MOL_A2_TO_KJ_MOL_NM2)
            for name in ("x0", "y0", "z0"):
                tether.addPerParticleParameter(name)
            for atom in range(system.getNumParticles()):
                tether.addParticle(atom, [0.0, 0.0, 0.0])
            restraints.append(tether)
        if protocol == "restrained":
            dihedral = openmm.CustomTorsionForce(
                "0.5*kd*d^2; d = dt - 2*pi*floor((dt + pi)/(2*pi)); dt = theta - theta0;"
                " pi = 3.141592653589793"
            )
            dihedral.addGlobalParameter("kd", K_DIHEDRAL * KJ_PER_KCAL)
            dihedral.addPerTorsionParameter("theta0")
            dihedral.addTorsion(*quad, [0.0])
            restraints.append(dihedral)
        elif protocol == "frozen":
            for atom in quad:  # OpenMM's minimizer does not move massless particles
                system.setParticleMass(atom, 0.0)
        for force in restraints:
            force.setForceGroup(31)
            system.addForce(force)
        context = openmm.Context(
            system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
        )
        out = []
        for xyz in self.problem.scan.geometries:
            nm = xyz * NM_PER_ANGSTROM
            context.setPositions(nm)
            if protocol != "single":
                for atom, position in enumerate(nm):
                    tether.setParticleParameters(atom, atom, list(position))
                tether.updateParametersInContext(context)
                if protocol == "restrained":
                    dihedral.setTorsionParameters(0, *quad, [_dihedral(xyz, quad)])
                    dihedral.updateParametersInContext(context)
                openmm.LocalEnergyMinimizer.minimize(context, 1e-4, 0)
            state = context.getState(getEnergy=True, groups=set(range(31)))
            out.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        del context
        return np.array(out) / KJ_PER_KCAL

    def rmse(self, k: np.ndarray) -> dict[str, float]:
        """RMSE kcal/mol of MM vs QM relative energies: single points referenced to the
        profile mean and to the QM-minimum point; both relaxed protocols referenced to the
        QM-minimum point."""
        k_by_period = dict(zip(self.problem.periodicities, (float(v) for v in k)))
        qm = self.qm
        single = self.energies(k_by_period, "single")
        out = {
            "single_point_mean": (single - single.mean()) - (qm - qm.mean()),
            "single_point_min": (single - single[self.anchor]) - qm,
        }
        for protocol in ("restrained", "frozen"):
            relaxed = self.energies(k_by_period, protocol)
            out[f"relaxed_{protocol}"] = (relaxed - relaxed[self.anchor]) - qm
        return {name: float(np.sqrt(np.mean(d**2))) for name, d in out.items()}


def _dihedral(xyz: np.ndarray, quad: tuple[int, ...]) -> float:
    """Dihedral angle (rad) of atoms ``quad`` in ``xyz`` (N, 3)."""
    p0, p1, p2, p3 = (xyz[a] for a in quad)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1) * b1
    w = b2 - np.dot(b2, b1) * b1
    return float(np.arctan2(np.dot(np.cross(b1, v), w), np.dot(v, w)))


# --------------------------------------------------------------------------- ffparam side
@dataclass
class FitRun:
    """One fit: final k (4,) kcal/mol, wall time s, iteration and evaluation counts."""

    k: np.ndarray
    seconds: float
    iterations: int
    profile_evaluations: int
    relaxations: int
    objective_start: float
    objective_final: float
    load: tuple[float, float]
    extra: dict = field(default_factory=dict)


class _Counter:
    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def ffparam_fit(problem: Problem, mode: str, jacobian: str) -> FitRun:
    """Fit with ffparam's objective: ``jacobian`` "autograd" (ffparam's least_squares) or
    "fd" (scipy least_squares, 2-point finite differences on the same residuals)."""
    import scipy.optimize
    import torch

    from ffparam.fit.objective import Objective
    from ffparam.fit.optimizers import least_squares
    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.targets import torsion as torsion_module
    from ffparam.fit.targets.torsion import TorsionProfileTarget

    relax = torsion_module.relax
    relax_counter = _Counter(relax)
    torsion_module.relax = relax_counter
    load0 = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        target = TorsionProfileTarget(
            "torsion",
            problem.system,
            problem.profile,
            mode=mode,
            reference=REFERENCE[mode],
            k_dihedral=K_DIHEDRAL,
            k_position=K_POSITION,
        )
        fit = FitParameters.from_free(problem.system.parameters)
        objective = Objective([target], fit, use_priors=False)
        residuals = _Counter(objective.residuals)
        objective.residuals = residuals
        if jacobian == "autograd":
            result = least_squares(objective)
            x, iterations = result.x, len(result.history) - 1
            value0, value = result.objective_before, result.objective_after
        else:
            x0 = np.zeros(fit.size)

            def function(x: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return residuals(torch.as_tensor(x, dtype=torch.float64)).numpy()

            value0 = float(function(x0) @ function(x0))
            out = scipy.optimize.least_squares(
                function,
                x0,
                jac="2-point",
                method="trf",
                diff_step=FD_STEP,
                xtol=1e-10,
                ftol=1e-10,
                gtol=1e-10,
            )
            x, iterations, value = out.x, int(out.njev), float(2 * out.cost)
        seconds = time.perf_counter() - start
    finally:
        torsion_module.relax = relax
    k = fit.physical(torch.as_tensor(x, dtype=torch.float64)).numpy()
    return FitRun(
        k,
        seconds,
        iterations,
        residuals.calls,
        relax_counter.calls,
        value0,
        value,
        (load0, os.getloadavg()[0]),
    )


# --------------------------------------------------------------------------- ForceBalance side
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


def write_forcebalance_project(
    problem: Problem, mode: str, directory: Path, platform_name: str = "Reference"
) -> None:
    """ForceBalance input: optimize.in, forcefield/bench.xml, targets/profile/*."""
    from ffparam.units import KJ_PER_KCAL

    (directory / "forcefield").mkdir(parents=True)
    target = directory / "targets" / "profile"
    target.mkdir(parents=True)
    start = dict(zip(problem.periodicities, problem.start))
    (directory / "forcefield" / "bench.xml").write_text(
        ffxml_with_k(problem, start, parameterize=True)
    )
    shutil.copy(problem.pdb, target / "conf.pdb")
    scan = problem.scan
    with open(target / "scan.xyz", "w") as out:
        for i, xyz in enumerate(scan.geometries):
            out.write(f"{len(xyz)}\nframe {i}\n")
            for symbol, (x, y, z) in zip(scan.symbols, xyz):
                out.write(f"{symbol:2s} {x:.10f} {y:.10f} {z:.10f}\n")
    # ForceBalance reads Hartree and multiplies by its own au->kJ/mol factor
    # (forcebalance.nifty.au2kj): write the values it maps back onto our kcal/mol exactly
    au2kj = 2625.4996394798254
    with open(target / "qdata.txt", "w") as out:
        for i, energy in enumerate(scan.energies - scan.energies.min()):
            out.write(f"JOB {i}\nENERGY {energy * KJ_PER_KCAL / au2kj:.16e}\n\n")
    (target / "metadata.json").write_text(
        json.dumps(
            {
                "dihedrals": [list(scan.dihedral)],
                "grid_spacing": [SPACING],
                "dihedral_ranges": None,
                "torsion_grid_ids": [[round(float(a))] for a in scan.angles],
            }
        )
    )
    prior = PRIOR_KCAL * KJ_PER_KCAL
    priors = "\n".join(f"   Proper/k{m} : {prior!r}" for m in range(1, 9))
    target_options = {
        "single_point": "energy 1\nforce 0\nenergy_mode average\n"
        f"energy_rms_override {KJ_PER_KCAL!r}\n",
        "relaxed": f"restrain_k {K_POSITION!r}\nenergy_denom 1.0\nattenuate 0\n",
    }[mode]
    (directory / "optimize.in").write_text(f"""$options
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
""")


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
        [sys.executable, str(Path(__file__).resolve()), "--fb-worker", str(directory)],
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
        by_period[int(element.get(f"periodicity{m}"))] = value / 4.184
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


def forcebalance_worker(directory: Path) -> None:
    """Inside the subprocess: set up and run ForceBalance in ``directory``."""
    import pymbar

    pymbar.pymbar = pymbar  # ForceBalance's liquid module imports pymbar 3's module name
    from openmm import app, unit

    minimize = app.Simulation.minimizeEnergy

    def minimize_energy(
        self, tolerance=10 * unit.kilojoule_per_mole / unit.nanometer, *args, **kwargs
    ):
        # ForceBalance 1.9.5 passes kJ/mol; OpenMM >= 8 wants the same number (the RMS force
        # criterion it always was) in kJ/mol/nm and raises a TypeError otherwise
        if unit.is_quantity(tolerance) and tolerance.unit.is_compatible(unit.kilojoule_per_mole):
            tolerance = (
                tolerance.value_in_unit(unit.kilojoule_per_mole)
                * unit.kilojoule_per_mole
                / unit.nanometer
            )
        return minimize(self, tolerance, *args, **kwargs)

    app.Simulation.minimizeEnergy = minimize_energy
    os.chdir(directory)
    import forcebalance.objective
    from forcebalance.forcefield import FF
    from forcebalance.objective import Objective
    from forcebalance.openmmio import OpenMM
    from forcebalance.optimizer import Optimizer
    from forcebalance.parser import parse_inputs

    counts = {"objective": 0, "gradient": 0, "profiles": 0, "minimizations": 0}
    values: list[float] = []
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
    from forcebalance.abinitio import AbInitio

    transform = AbInitio.energy_force_transform

    def counted_transform(self):
        counts["profiles"] += 1
        return transform(self)

    AbInitio.energy_force_transform = counted_transform
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
    (directory / "fb_result.json").write_text(
        json.dumps(
            {
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
        )
    )


# --------------------------------------------------------------------------- driver
def reference_optimum(problem: Problem, evaluator: OpenMMEvaluator, protocol: str) -> dict:
    """The optimum of a relaxed problem computed with other tools: scipy least_squares
    (2-point finite differences, step ``FD_STEP``) on the evaluator's OpenMM residuals
    (one relaxation protocol), from the start; checks that each code's fit reached the
    optimum of its own relaxed objective."""
    import scipy.optimize

    def residuals(x: np.ndarray) -> np.ndarray:
        k = problem.start + PRIOR_KCAL * x
        energies = evaluator.energies(dict(zip(problem.periodicities, k)), protocol)
        diff = (energies - energies[evaluator.anchor]) - evaluator.qm
        return diff / np.sqrt(len(diff))

    start = time.perf_counter()
    fit = scipy.optimize.least_squares(
        residuals,
        np.zeros(len(problem.start)),
        diff_step=FD_STEP,
        xtol=1e-10,
        ftol=1e-10,
        gtol=1e-10,
    )
    return {
        "objective": float(2 * fit.cost),
        "k": (problem.start + PRIOR_KCAL * fit.x).tolist(),
        "evaluations": int(fit.nfev + fit.njev * len(problem.start)),
        "seconds": time.perf_counter() - start,
    }


def best(runs: list[FitRun]) -> FitRun:
    return min(runs, key=lambda r: r.seconds)


def machine() -> dict:
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


def run(args: argparse.Namespace) -> dict:
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
        for side in sides[1:] if sides[0] == "ffparam" else []:
            result[side]["time_ratio_vs_ffparam"] = (
                result[side]["seconds_best"] / result["ffparam"]["seconds_best"]
            )
        out["modes"][mode] = result
        if mode == "relaxed":
            out["reference_optima"] = {
                protocol: reference_optimum(problem, evaluator, protocol)
                for protocol in ("restrained", "frozen")
            }
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def table(out: dict) -> str:
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
        rows = [
            ("wall s (best)", lambda r: f"{r['seconds_best']:.2f}"),
            ("wall s (all)", lambda r: ", ".join(f"{s:.1f}" for s in r["seconds_all"])),
            (
                "time / ffparam",
                lambda r: (
                    f"{r['time_ratio_vs_ffparam']:.2f}" if "time_ratio_vs_ffparam" in r else "-"
                ),
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
        for label, cell in rows:
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


def main() -> None:
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
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
