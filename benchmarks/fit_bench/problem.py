"""The problem of ``bench_fit.py``, identical on every side: the cached GFN2-xTB torsion
drive of 3-fluorobenzamide (:func:`load_scan`), the Sage + bespoke-torsion system with k1..k4
of the scanned torsion free (:func:`build_problem`), its exported ffxml with any k written
in (:func:`ffxml_with_k`), and the result of one fit (:class:`FitRun`). See ``bench_fit.py``
for the whole protocol."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
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
SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "OPENMM_CPU_THREADS": "1",
}


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
    from ffparam.io.atomic import atomic_output
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
    with atomic_output(path) as tmp:
        np.savez(
            tmp,
            angles=result.angles[:, 0],
            geometries=result.geometries,
            energies=result.energies,
            dihedral=np.array(dihedral),
            symbols=np.array(molecule.symbols),
            seconds=seconds,
        )
    return load_scan(cache)


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
    """Sage 2.2.1 + AM1-BCC on the QM-minimum geometry, bespoke torsions (n = 1..4) around
    the scanned bond, k1..k4 of the scanned dihedral's parameter free (the zero ones start
    at ``ZERO_K``), exported to ffxml + PDB under ``workdir``."""
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
