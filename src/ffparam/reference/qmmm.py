"""QM/MM with electrostatic embedding: a QM region in the point charges of its environment.

The QM region is one or more whole molecules; every other molecule contributes its
force-field partial charges (from its :class:`~ffparam.params.system.ParameterizedSystem`,
i.e. its ParameterSet) as fixed point charges at its atoms' positions
(:class:`Environment`). The QM Hamiltonian gets the one-electron potential of those charges
(PySCF ``qmmm.mm_charge``, HF and DFT), so the SCF density polarizes in their field.

Energy of a QM/MM record: E = E_QM[rho in the field] + sum_{A in QM, J in MM} Z_A q_J /
|R_A - r_J|, i.e. PySCF's QM/MM energy: the QM energy with the electron-charge and the
nucleus-charge interactions, without the MM-MM Coulomb energy and without any MM bonded or
Lennard-Jones term (add those with the force field when a total energy is wanted).
Gradients: on the QM atoms (``Record.gradient``) and on the MM charges
(``Record.mm_gradient``: the derivative of the one-electron integrals with respect to the
charge positions contracted with the QM density, plus the nucleus-charge term), both
kcal/mol/Angstrom. ESP (task ``esp``) is the potential of the QM region alone (its
polarized density and its nuclei) on Merz-Kollman points, without the MM charges' own
potential: what IPolQ fits.

The environment (positions rounded like geometries, charges to 1e-8 e) is part of the
Store key, so a rerun with the same snapshot recomputes nothing, and a changed charge or
position is a new calculation. A QM/MM record's molecule key is the molecule's with
:data:`QMMM_KEY_SUFFIX`, so readers that select gas-phase data by molecule (fit targets,
ML data sets) never mix QM/MM energies into it; the extended-XYZ export leaves QM/MM
records out.

A polarizable (Drude) environment, whose Drudes relax in the QM region's field while the
QM density relaxes in theirs, is :mod:`ffparam.reference.qmmm_drude`.

tblite's Python API offers a uniform electric field but no external point charges, so xtb
methods are refused for QM/MM. Cutting the QM region through a covalent bond (link atoms)
is not supported and refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ffparam.errors import InputError
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job
from ffparam.reference.methods import get_calculator
from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import Species, Task
from ffparam.reference.spec import MethodSpec
from ffparam.units import BOHR_ANGSTROM, HARTREE_BOHR_TO_KCAL_MOL_A

if TYPE_CHECKING:
    from rich.progress import Progress

    from ffparam.params.system import ParameterizedSystem
    from ffparam.reference.compute import RunSummary
    from ffparam.reference.records import Record
    from ffparam.reference.store import Store
    from ffparam.runtime import Executor

QMMM_TASKS: tuple[str, ...] = ("energy", "gradient", "esp")
"""Tasks a QM/MM job computes."""

CHARGE_PRECISION: float = 1e-8
"""Rounding of MM charges in Store keys, e."""

MIN_QM_MM_DISTANCE_A: float = 0.5
"""An MM charge closer than this to a QM nucleus (Angstrom) means overlapping molecules."""

QMMM_KEY_SUFFIX: str = " @qmmm"
"""Appended to the molecule key (and name) of a QM/MM record's species."""

TBLITE_REFUSAL = ("QM/MM needs a PySCF method (hf/<basis> or <functional>/<basis>): tblite's "
                  "Python API has no external point charges (only a uniform electric field)")


@dataclass(frozen=True, eq=False)
class Environment:
    """MM point charges around a QM region.

    Attributes:
        charges: (n_charges,) e.
        positions: (n_charges, 3) Angstrom.
    """

    charges: np.ndarray
    positions: np.ndarray

    def __post_init__(self) -> None:
        charges = np.array(self.charges, dtype=np.float64).reshape(-1)
        positions = np.array(self.positions, dtype=np.float64)
        if positions.shape != (len(charges), 3):
            raise InputError(f"MM environment: {len(charges)} charges need positions "
                             f"({len(charges)}, 3), got {positions.shape}")
        if not (np.all(np.isfinite(charges)) and np.all(np.isfinite(positions))):
            raise InputError("MM environment: non-finite charge or position")
        object.__setattr__(self, "charges", charges)
        object.__setattr__(self, "positions", positions)

    def __len__(self) -> int:
        return len(self.charges)

    def key_bytes(self, precision: float = GEOMETRY_PRECISION) -> bytes:
        """The environment's part of a Store key: positions rounded to ``precision``
        Angstrom and charges to :data:`CHARGE_PRECISION` e, as int64 bytes."""
        rounded_q = np.rint(self.charges / CHARGE_PRECISION).astype(np.int64)
        rounded_x = np.rint(self.positions / precision).astype(np.int64)
        return b"qmmm" + np.int64(len(self)).tobytes() + rounded_q.tobytes() + rounded_x.tobytes()


def environment_from_systems(systems: Sequence[ParameterizedSystem],
                             positions: Sequence[np.ndarray]) -> Environment:
    """Point charges of MM molecules: each system's partial charges (e, from its
    ParameterSet) at its positions (n_atoms_i, 3) Angstrom, concatenated in order."""
    if len(systems) != len(positions):
        raise InputError(f"{len(systems)} MM systems but {len(positions)} position arrays")
    if not systems:
        return Environment(np.zeros(0), np.zeros((0, 3)))
    charges, xyz = [], []
    for system, pos in zip(systems, positions):
        pos = np.asarray(pos, dtype=np.float64)
        if pos.shape != (system.n_atoms, 3):
            raise InputError(f"{system.molecule.name}: positions {pos.shape}, expected "
                             f"({system.n_atoms}, 3)")
        charges.append(np.asarray(system.charges(), dtype=np.float64))
        xyz.append(pos)
    return Environment(np.concatenate(charges), np.concatenate(xyz))


@dataclass(frozen=True)
class QMMMRegion:
    """A cluster of molecules split into a QM region and its MM environment.

    Attributes:
        species: the QM region as one species (its molecules' atoms in order).
        geometry: (n_qm_atoms, 3) Angstrom.
        environment: the other molecules' point charges.
        qm_molecules: indices of the QM molecules in the cluster.
    """

    species: Species
    geometry: np.ndarray
    environment: Environment
    qm_molecules: tuple[int, ...]


def qm_molecules_of_atoms(systems: Sequence[ParameterizedSystem], atoms: Sequence[int]
                          ) -> tuple[int, ...]:
    """Molecule indices whose atoms are exactly ``atoms`` (cluster atom numbering:
    molecule 0's atoms, then molecule 1's ...). A selection that cuts a covalent bond
    raises InputError (link atoms are not supported)."""
    selected = {int(a) for a in atoms}
    offsets = np.cumsum([0] + [s.n_atoms for s in systems])
    if not selected or min(selected) < 0 or max(selected) >= offsets[-1]:
        raise InputError(f"QM atoms must be indices 0..{offsets[-1] - 1} of the cluster")
    chosen = []
    for m, system in enumerate(systems):
        start = int(offsets[m])
        for i, j in np.asarray(system.molecule.bonds).reshape(-1, 2).tolist():
            if (start + i in selected) != (start + j in selected):
                raise InputError(
                    f"the QM region cuts the bond {start + i}-{start + j} of molecule {m} "
                    f"({system.molecule.name}): QM/MM across a covalent bond (link atoms) is "
                    "not supported; select whole molecules")
        if start in selected:
            chosen.append(m)
    return tuple(chosen)


def split_region(systems: Sequence[ParameterizedSystem], positions: Sequence[np.ndarray],
                 qm_molecules: Sequence[int]) -> QMMMRegion:
    """Split a cluster (one ParameterizedSystem and (n_atoms, 3) Angstrom per molecule)
    into the QM region (the whole molecules ``qm_molecules``) and the point charges of all
    the others."""
    qm = tuple(sorted({int(m) for m in qm_molecules}))
    if not qm or qm[0] < 0 or qm[-1] >= len(systems):
        raise InputError(f"QM molecules must be indices 0..{len(systems) - 1}, got {qm}")
    mm = [m for m in range(len(systems)) if m not in qm]
    species = combined_species([systems[m] for m in qm])
    geometry = np.concatenate([np.asarray(positions[m], dtype=np.float64) for m in qm])
    environment = environment_from_systems([systems[m] for m in mm], [positions[m] for m in mm])
    return QMMMRegion(species, geometry.reshape(-1, 3), environment, qm)


def combined_species(systems: Sequence[ParameterizedSystem]) -> Species:
    """One closed-shell species of several molecules (atoms in order, bonds offset)."""
    parts = [Species.from_molecule(s.molecule) for s in systems]
    if len(parts) == 1:
        return parts[0]
    if any(p.multiplicity != 1 for p in parts):
        raise InputError("a QM region of several molecules must be closed-shell molecules")
    numbers, bonds, offset = [], [], 0
    for part in parts:
        numbers += part.numbers
        bonds += [(i + offset, j + offset) for i, j in part.bonds]
        offset += part.n_atoms
    return Species(tuple(numbers), sum(p.charge for p in parts), 1, tuple(bonds),
                   key=".".join(p.key for p in parts), name="+".join(p.name for p in parts))


def check_qmmm_method(method: MethodSpec | str) -> MethodSpec:
    """``method`` parsed; InputError unless a PySCF method (tblite has no point charges)."""
    spec = MethodSpec.parse(method)
    if spec.backend != "pyscf":
        raise InputError(f"{spec.name}: {TBLITE_REFUSAL}")
    return spec


def qmmm_job(species: Species, geometry: np.ndarray, environment: Environment,
             method: MethodSpec | str, task: Task | str = "gradient",
             precision: float = GEOMETRY_PRECISION) -> Job:
    """One QM/MM job: ``species`` at ``geometry`` (n_atoms, 3) Angstrom in ``environment``.

    Refuses (InputError, before anything runs) a non-PySCF method, a task other than
    :data:`QMMM_TASKS` and an MM charge on top of a QM nucleus.
    """
    spec = check_qmmm_method(method)
    task = Task.parse(task)
    if task.kind not in QMMM_TASKS:
        raise InputError(f"QM/MM computes {', '.join(QMMM_TASKS)}, not {task.kind}")
    geometry = check_qm_geometry(species, geometry, environment.positions)
    return Job.create(qmmm_species(species), spec, task, geometry, precision,
                      environment=environment)


def check_qm_geometry(species: Species, geometry: np.ndarray, mm_positions: np.ndarray
                      ) -> np.ndarray:
    """``geometry`` as (n_atoms, 3) Angstrom; InputError when an MM site (``mm_positions``
    (m, 3) Angstrom) lies within :data:`MIN_QM_MM_DISTANCE_A` of a QM atom."""
    geometry = np.asarray(geometry, dtype=np.float64).reshape(species.n_atoms, 3)
    mm_positions = np.asarray(mm_positions, dtype=np.float64).reshape(-1, 3)
    if len(mm_positions):
        gap = np.linalg.norm(mm_positions[:, None] - geometry[None], axis=-1).min()
        if gap < MIN_QM_MM_DISTANCE_A:
            raise InputError(f"an MM atom is {gap:.2f} A from a QM atom of {species.name}: "
                             "the molecules overlap")
    return geometry


def qmmm_species(species: Species) -> Species:
    """``species`` with :data:`QMMM_KEY_SUFFIX` on its key and name (once)."""
    if species.key.endswith(QMMM_KEY_SUFFIX):
        return species
    return replace(species, key=species.key + QMMM_KEY_SUFFIX,
                   name=species.name + QMMM_KEY_SUFFIX)


def embedded_calculator(method: MethodSpec | str, species: Species,
                        environment: Environment) -> Calculator:
    """A fresh calculator for ``species`` whose every SCF runs in ``environment`` (direct,
    unstored use: finite differences, EnergyModel)."""
    calc = get_calculator(check_qmmm_method(method), species)
    embed(calc, environment)
    return calc


def embed(calc: Calculator, environment: Environment) -> None:
    """Put ``calc`` in the field of ``environment`` (a PySCF calculator; others refused)."""
    if not getattr(calc, "supports_embedding", False):
        raise InputError(f"{calc.name}: {TBLITE_REFUSAL}")
    calc.environment = environment  # type: ignore[attr-defined]


def embed_scf(mf, environment: Environment):
    """PySCF SCF object ``mf`` with the one-electron potential of the point charges (and
    their interaction with the QM nuclei in its nuclear energy): ``pyscf.qmmm.mm_charge``."""
    from pyscf import qmmm

    if not len(environment):
        return mf
    return qmmm.mm_charge(mf, environment.positions / BOHR_ANGSTROM, environment.charges,
                          unit="Bohr")


def mm_gradient(grad_method, total_dm: np.ndarray) -> np.ndarray:
    """Gradient (n_charges, 3) kcal/mol/Angstrom of the QM/MM energy with respect to the MM
    charge positions: sum_ij dh_ij/dR_J P_ji (electrons) plus the nuclei-charge Coulomb
    term, from PySCF's QM/MM gradient object ``grad_method``; zero rows for no charges."""
    if not hasattr(grad_method, "grad_hcore_mm"):  # an empty environment: no embedding
        return np.zeros((0, 3))
    electronic = grad_method.grad_hcore_mm(total_dm)
    nuclear = grad_method.grad_nuc_mm()
    return (np.asarray(electronic) + np.asarray(nuclear)) * HARTREE_BOHR_TO_KCAL_MOL_A


def compute_qmmm(regions: Sequence[QMMMRegion], method: MethodSpec | str,
                 task: Task | str = "gradient", store: Store | None = None,
                 executor: Executor | None = None, retry_failed: bool = False,
                 progress: Progress | bool = False) -> tuple[list[Record], RunSummary]:
    """One stored QM/MM calculation per region (snapshot), in order, computing only what
    ``store`` lacks (default: an in-memory Store); every job is checked before any runs."""
    jobs = [qmmm_job(r.species, r.geometry, r.environment, method, task) for r in regions]
    return run_qmmm_jobs(jobs, store, executor, retry_failed, progress, "QM/MM")


def run_qmmm_jobs(jobs: Sequence[Job], store: Store | None, executor: Executor | None,
                  retry_failed: bool, progress: Progress | bool, description: str
                  ) -> tuple[list[Record], RunSummary]:
    """Records of checked QM/MM ``jobs`` through :func:`ffparam.reference.compute.run_jobs`
    (default ``store``: an in-memory Store); InputError for no jobs."""
    from ffparam.reference.compute import run_jobs
    from ffparam.reference.store import Store

    if not jobs:
        raise InputError("no QM/MM snapshots to compute")
    own = store is None
    store = Store(":memory:") if own else store
    try:
        return run_jobs(jobs, store, executor, retry_failed, progress, description)
    finally:
        if own:
            store.close()
