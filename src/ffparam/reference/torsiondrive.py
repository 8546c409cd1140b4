"""Torsion drives: the ``torsiondrive`` wavefront algorithm over geomeTRIC constrained
optimizations, 1-D or 2-D, with every optimization recorded in the Store.

The scan state lives in ``torsiondrive.td_api`` form (geometries in Bohr, energies in
Hartree — converted only here). Each iteration asks ``next_jobs_from_state`` for the
constrained optimizations the wavefront needs next, runs them through
:func:`~ffparam.reference.compute.run_jobs` (the Store answers the ones already done) and
feeds the results back with ``update_state``. A rerun after a crash replays the same
sequence from the stored results, so it recomputes nothing that was committed and ends
with the same profile as an uninterrupted run.

A failed optimization is recorded as failed; the wavefront is told about it as an
end point with the start geometry turned to the grid angle and a sentinel energy of
``FAILED_ENERGY_HARTREE`` (so the scan never stops on it and never uses it: such points
neither become a grid minimum when any real result exists, nor spawn new optimizations
while any real result exists). Grid points with no successful optimization are reported
in ``TorsionDriveResult.missing``.

Composite ``HIGH//LOW`` methods (:class:`~ffparam.reference.spec.CompositeSpec`): the drive
runs with LOW; then one HIGH single point (``energy``, or ``gradient`` on request) per final
grid geometry goes through the same :func:`run_jobs` and Store, and the result's energies are
the HIGH ones (``low_energies`` keeps LOW's). Both are ordinary Store records, so a rerun
computes nothing and a killed run resumes. Both methods are checked against the molecule
before any LOW work starts. A grid point whose HIGH single point failed is dropped from the
profile and listed in ``missing``.

Geometry identity. torsiondrive recognises a finished optimization by its start geometry
truncated to 0.001 Angstrom (``get_geo_key``), computed once from the Angstrom coordinates it
holds (initial coordinates, or a finished optimization's end geometry) and once from the
Bohr start geometry it handed out and got back, i.e. after an Angstrom -> Bohr -> Angstrom
round trip. A coordinate that sits exactly on a 0.001 Angstrom multiple (every geometry read
from a file written with 3-4 decimals has many) can lose its last bit in that trip and fall
into the bin below: the finished job is then unknown to torsiondrive, which asks for it
again, forever. Every geometry handed to torsiondrive therefore goes through
:func:`torsiondrive_coordinates`, which moves such coordinates 1e-8 Angstrom into their bin
(100 times below the Store's 1e-6 Angstrom key precision).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise, product

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdMolTransforms
from rich.progress import Progress

from ffparam.chem import Molecule, Topology
from ffparam.errors import CalculationError, InputError
from ffparam.reference.compute import RunSummary, run_jobs
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job
from ffparam.reference.methods import get_calculator
from ffparam.reference.records import Constraints, Record, Species, Task
from ffparam.reference.relax_high import parse_high_relax
from ffparam.reference.spec import CompositeSpec, MethodSpec, parse_method
from ffparam.reference.store import Store
from ffparam.runtime import Executor, progress_task
from ffparam.units import BOHR_ANGSTROM, HARTREE_KCAL_MOL

FAILED_ENERGY_HARTREE: float = 1.0e6
"""Sentinel energy reported to torsiondrive for a failed optimization (never a result)."""
DEFAULT_SPACING: int = 15
"""Default grid spacing, degrees."""
GEO_KEY_NUDGE_ANGSTROM: float = 1e-8
"""How far a coordinate on a torsiondrive geometry-key bin edge is moved into its bin."""


@dataclass
class TorsionDriveResult:
    """The minimum-energy profile of a torsion drive.

    Attributes:
        molecule: the molecule scanned (atom order of all geometries).
        dihedrals: scanned dihedrals (i, j, k, l), 0-based.
        grid_spacing: degrees per dihedral.
        method: canonical method spec (``HIGH//LOW`` for a composite).
        angles: (n_points, n_dihedrals) grid angles in degrees, in (-180, 180], sorted.
        energies: (n_points,) kcal/mol, lowest constrained-optimized energy per grid point
            (composite: the HIGH single-point energy on that LOW geometry).
        geometries: (n_points, n_atoms, 3) Angstrom, the optimized geometries.
        records: the Store records of those optimizations, one per point.
        geometry_method: canonical method of the optimizations (LOW for a composite).
        energy_method: canonical method of ``energies`` (HIGH for a composite).
        low_energies: composite only: (n_points,) kcal/mol, LOW's optimized energies.
        high_records: composite only: the HIGH single-point records, one per point.
        missing: grid points (tuples of degrees) without any successful optimization.
        summary: jobs run, taken from the Store, failed.
        n_iterations: wavefront iterations.
        iteration_sizes: optimizations requested per iteration (the parallelism available).
    """

    molecule: Molecule
    dihedrals: list[tuple[int, int, int, int]]
    grid_spacing: list[int]
    method: str
    angles: np.ndarray
    energies: np.ndarray
    geometries: np.ndarray
    records: list[Record]
    missing: list[tuple[int, ...]] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)
    n_iterations: int = 0
    iteration_sizes: list[int] = field(default_factory=list)
    geometry_method: str = ""
    energy_method: str = ""
    low_energies: np.ndarray | None = None
    high_records: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.geometry_method = self.geometry_method or self.method
        self.energy_method = self.energy_method or self.method

    @property
    def composite(self) -> bool:
        """True when the energies are HIGH single points on LOW geometries."""
        return self.low_energies is not None

    @property
    def relative_energies(self) -> np.ndarray:
        """Energies minus the profile minimum, kcal/mol."""
        return self.energies - self.energies.min() if len(self.energies) else self.energies

    @property
    def complete(self) -> bool:
        """Every grid point has a result and no optimization failed."""
        return not self.missing and self.summary.complete

    def energy_at(self, *angles: float) -> float:
        """Energy (kcal/mol) at a grid point given in degrees."""
        wanted = np.array([_wrap(a) for a in angles])
        hit = np.flatnonzero(np.all(np.isclose(self.angles, wanted), axis=1))
        if not len(hit):
            raise InputError(f"no result at grid point {tuple(angles)}")
        return float(self.energies[hit[0]])

    def to_molecule(self) -> Molecule:
        """The optimized geometries as conformers of the molecule (grid order)."""
        return self.molecule.with_conformers(self.geometries)


def rotatable_dihedrals(
    molecule: Molecule, include_terminal_rotors: bool = False
) -> list[tuple[int, int, int, int]]:
    """One representative dihedral (heaviest neighbours) per rotatable bond."""
    topology = Topology(molecule)
    bonds = topology.find_rotatable_bonds(include_terminal_rotors=include_terminal_rotors)
    return [tuple(int(a) for a in topology.dihedral_for_bond(tuple(b))) for b in bonds]


def run_torsiondrive(
    molecule: Molecule,
    dihedrals: Sequence[Sequence[int]],
    method: MethodSpec | CompositeSpec | str = "gfn2-xtb",
    spacing_deg: int | Sequence[int] = DEFAULT_SPACING,
    store: Store | None = None,
    executor: Executor | None = None,
    *,
    initial_geometries: np.ndarray | None = None,
    dihedral_ranges: Sequence[tuple[int, int]] | None = None,
    energy_upper_limit_kcal_mol: float | None = None,
    retry_failed: bool = False,
    max_steps: int = 300,
    progress: Progress | bool = False,
    precision: float = GEOMETRY_PRECISION,
    high_task: str = "energy",
    high_relax: str = "none",
) -> TorsionDriveResult:
    """Drive one dihedral (1-D) or two (2-D) over a grid of ``spacing_deg`` degrees.

    Args:
        molecule: molecule with explicit hydrogens; its conformers are the starting
            geometries unless ``initial_geometries`` (n, n_atoms, 3) Angstrom is given
            (one ETKDG conformer is generated if there are none).
        dihedrals: one or two (i, j, k, l) atom index tuples, 0-based.
        method: reference method spec (``gfn2-xtb``, ``b3lyp-d3bj/dzvp``...) or a
            composite ``HIGH//LOW`` (``b3lyp-d3bj/dzvp//gfn2-xtb``): drive with LOW, then
            HIGH single points on the final grid geometries (module docstring).
        spacing_deg: grid spacing in degrees (a divisor of 180), one value or one per
            dihedral.
        store: where optimizations are recorded (default: in memory).
        executor: where optimizations run (default: in-process).
        dihedral_ranges: optional [low, high] degree limits per dihedral.
        energy_upper_limit_kcal_mol: kcal/mol above the current minimum beyond which the
            wavefront does not start new optimizations from a point (torsiondrive option).
        retry_failed: recompute optimizations stored as failed.
        max_steps: geomeTRIC step limit per optimization.
        high_task: composite only: ``energy`` or ``gradient``, the HIGH single points.
        high_relax: composite only: ``none`` (HIGH single points), ``newton`` or
            ``steps:N``: each HIGH point relaxed from its LOW geometry with the scanned
            dihedrals held (:mod:`ffparam.reference.relax_high`; ``energies`` are then the
            relaxed HIGH estimates and ``high_records`` copies of the HIGH gradient
            records on the LOW geometries with the estimate as their energy and no
            gradient, since the estimate has none).
    """
    dihedrals = _check_dihedrals(molecule, dihedrals)
    spacings = _check_spacings(spacing_deg, len(dihedrals))
    full_spec = parse_method(method)
    composite = full_spec if isinstance(full_spec, CompositeSpec) else None
    spec = composite.low if composite else full_spec
    if high_task not in ("energy", "gradient"):
        raise InputError(f"high_task must be energy or gradient, got {high_task!r}")
    relax_steps = _relax_steps(high_relax, full_spec)
    species = Species.from_molecule(molecule)
    for part in (composite.high, spec) if composite else (spec,):
        get_calculator(part, species)  # fail early on a bad method/molecule combination
    starts = _initial_geometries(molecule, initial_geometries)
    state = _initial_state(
        species, dihedrals, spacings, starts, dihedral_ranges, energy_upper_limit_kcal_mol
    )
    grid = _grid_points(spacings, dihedral_ranges)
    own_store = store is None
    store = store if store is not None else Store(":memory:")
    drive = _Drive(molecule, species, spec, dihedrals, max_steps, precision)
    label = f"torsion drive {molecule.name} {'/'.join('-'.join(map(str, d)) for d in dihedrals)}"
    try:
        summary, sizes = _wavefront(drive, state, store, executor, retry_failed,
                                    progress, label, len(grid))
        result = drive.result(spacings, grid, summary, len(sizes))
        result.iteration_sizes = sizes
        if composite is not None and relax_steps is not None:
            _high_relaxed_points(result, composite, species, relax_steps, store, executor,
                                 retry_failed, progress)
        elif composite is not None:
            _high_single_points(result, composite, species, high_task, store, executor,
                                retry_failed, progress, precision)
    finally:
        if own_store:
            store.close()
    return result


def _high_single_points(result: TorsionDriveResult, composite: CompositeSpec,
                        species: Species, task: str, store: Store,
                        executor: Executor | None, retry_failed: bool,
                        progress: Progress | bool, precision: float) -> None:
    """Replace ``result``'s LOW energies by HIGH single points (``task``) on its final
    geometries, through the Store; a point whose HIGH calculation failed is dropped from
    the profile and listed in ``missing`` (its failure is in ``summary``)."""
    jobs = [Job.create(species, composite.high, Task.parse(task), geometry, precision)
            for geometry in result.geometries]
    records, part = run_jobs(jobs, store, executor, retry_failed, progress,
                             f"  {composite.high.canonical()} {task}")
    result.summary.merge(part)
    ok = np.array([r.ok for r in records], dtype=bool)
    _keep_high(result, composite, ok, [r.energy for r in records if r.ok],
               [r for r in records if r.ok])


def _keep_high(result: TorsionDriveResult, composite: CompositeSpec, ok: np.ndarray,
               energies: list[float], high_records: list[Record]) -> None:
    """``result`` with only the grid points ``ok`` (the others listed in ``missing``), the
    HIGH ``energies`` (kcal/mol) and records of those, LOW's energies in ``low_energies``."""
    result.missing += [tuple(int(a) for a in angles) for angles in result.angles[~ok]]
    result.angles, result.geometries = result.angles[ok], result.geometries[ok]
    result.low_energies = result.energies[ok]
    result.energies = np.array(energies, dtype=np.float64)
    result.records = [r for r, good in zip(result.records, ok) if good]
    result.high_records = high_records
    result.method = composite.canonical()
    result.energy_method = composite.high.canonical()


def _relax_steps(high_relax: str, spec: MethodSpec | CompositeSpec) -> int | None:
    """Quasi-Newton steps of ``high_relax`` (None: single points); InputError for a bad
    value or a relaxation asked for a method that is not ``HIGH//LOW``."""
    steps = parse_high_relax(high_relax)
    if steps is not None and not isinstance(spec, CompositeSpec):
        raise InputError(f"high_relax needs a HIGH//LOW method, got {spec.canonical()!r}")
    return steps


def _high_relaxed_points(result: TorsionDriveResult, composite: CompositeSpec,
                         species: Species, steps: int, store: Store,
                         executor: Executor | None, retry_failed: bool,
                         progress: Progress | bool) -> None:
    """Like :func:`_high_single_points`, with each HIGH point relaxed from its LOW
    geometry (:func:`~ffparam.reference.relax_high.relax_points`, ``steps`` quasi-Newton
    steps; 0: the Newton estimate)."""
    from ffparam.reference.relax_high import RelaxSettings, relax_points

    points = relax_points(species, composite.high, composite.low, result.geometries,
                          result.dihedrals, RelaxSettings(steps=steps), store, executor,
                          retry_failed, progress, result.summary)
    ok = np.array([p.ok for p in points], dtype=bool)
    first = store.get_many([p.keys[0] for p in points if p.ok])
    _keep_high(result, composite, ok, [p.energy_kcal_mol for p in points if p.ok],
               [dataclasses.replace(first[p.keys[0]], energy=p.energy_kcal_mol, gradient=None)
                for p in points if p.ok])


def _check_spacings(spacing: int | Sequence[int], n_dihedrals: int) -> list[int]:
    """Grid spacing per dihedral (degrees); InputError unless each divides 180."""
    spacings = [int(spacing)] * n_dihedrals if np.isscalar(spacing) else list(spacing)
    if len(spacings) != n_dihedrals or any(s <= 0 or 180 % s for s in spacings):
        # torsiondrive rounds a measured -179.99... to the nearest grid multiple; only when
        # the spacing divides 180 does that land on the +-180 grid point
        raise InputError(f"grid spacing {spacing} must divide 180, one value per dihedral")
    return spacings


def _wavefront(drive: _Drive, state: dict, store: Store, executor: Executor | None,
               retry_failed: bool, progress: Progress | bool, label: str,
               n_points: int) -> tuple[RunSummary, list[int]]:
    """Run the wavefront to its end: the optimizations torsiondrive asks for, one batch per
    iteration, through the Store. Returns the summary and the batch size per iteration."""
    summary = RunSummary()
    submitted: set[str] = set()
    sizes: list[int] = []
    with progress_task(progress, label, n_points) as (bar, task):
        while True:
            next_jobs = _next_jobs(state)
            if not next_jobs:
                break
            batch = drive.jobs(next_jobs)
            keys = {job.key for _, _, job in batch}
            if keys <= submitted:
                raise CalculationError(
                    f"torsiondrive asked again for {len(keys)} finished optimization(s)"
                )
            submitted |= keys
            sizes.append(len(batch))
            records, part = run_jobs(
                [job for _, _, job in batch],
                store,
                executor,
                retry_failed,
                bar,
                f"  iteration {len(sizes)}",
            )
            summary.merge(part)
            _update_state(state, drive.results(batch, records))
            bar.update(task, completed=len(drive.best), note=f"{summary.n_jobs} opt(s)")
    return summary, sizes


class _Drive:
    """Turns torsiondrive job requests into Store jobs and keeps the best result per point."""

    def __init__(self, molecule, species, spec, dihedrals, max_steps, precision) -> None:
        self.molecule = molecule
        self.species = species
        self.spec = spec
        self.dihedrals = dihedrals
        self.max_steps = max_steps
        self.precision = precision
        self.best: dict[tuple[int, ...], tuple[float, Record]] = {}

    def jobs(self, next_jobs: dict[str, list[list[float]]]) -> list[tuple[str, list, Job]]:
        batch = []
        for grid_id, starts in next_jobs.items():
            angles = _grid_id(grid_id)
            constraints = Constraints(
                dihedrals=tuple((*d, float(a)) for d, a in zip(self.dihedrals, angles))
            )
            task = Task("optimize", constraints=constraints, max_steps=self.max_steps)
            for start in starts:
                geometry = np.asarray(start, dtype=np.float64).reshape(-1, 3) * BOHR_ANGSTROM
                job = Job.create(self.species, self.spec, task, geometry, self.precision)
                batch.append((grid_id, start, job))
        return batch

    def results(self, batch, records: list[Record]) -> dict[str, list]:
        """td_api job results; also tracks the lowest successful energy per grid point
        with torsiondrive's rule (replace only when lower by more than 1e-5 Hartree)."""
        job_results: dict[str, list] = {}
        for (grid_id, start, _job), record in zip(batch, records):
            angles = _grid_id(grid_id)
            if record.ok:
                end, energy = record.final_geometry, record.energy / HARTREE_KCAL_MOL
                previous = self.best.get(angles)
                if previous is None or energy < previous[0] - 1e-5:
                    self.best[angles] = (energy, record)
            else:
                start_angstrom = np.asarray(start).reshape(-1, 3) * BOHR_ANGSTROM
                end, energy = self._turned(start_angstrom, angles), FAILED_ENERGY_HARTREE
            item = (start, torsiondrive_coordinates(end), energy)
            job_results.setdefault(grid_id, []).append(item)
        return job_results

    def _turned(self, geometry: np.ndarray, angles: tuple[int, ...]) -> np.ndarray:
        """``geometry`` with the scanned dihedrals set to ``angles`` by rigid rotation."""
        return turned_geometry(self.molecule, geometry, self.dihedrals, angles)

    def result(self, spacings, grid, summary, iterations) -> TorsionDriveResult:
        points = sorted(self.best)
        records = [self.best[p][1] for p in points]
        n_atoms = self.species.n_atoms
        return TorsionDriveResult(
            molecule=self.molecule,
            dihedrals=self.dihedrals,
            grid_spacing=spacings,
            method=self.spec.canonical(),
            angles=np.array(points, dtype=np.float64).reshape(-1, len(self.dihedrals)),
            energies=np.array([r.energy for r in records], dtype=np.float64),
            geometries=np.array([r.final_geometry for r in records]).reshape(-1, n_atoms, 3),
            records=records,
            missing=[p for p in grid if p not in self.best],
            summary=summary,
            n_iterations=iterations,
        )


def turned_geometry(molecule: Molecule, geometry: np.ndarray,
                    dihedrals: Sequence[Sequence[int]], angles_deg: Sequence[float]
                    ) -> np.ndarray:
    """``geometry`` (N, 3) Angstrom with each of ``dihedrals`` set to its angle in
    ``angles_deg`` (degrees) by rotating the atoms on its last atom's side of the central
    bond (RDKit ``SetDihedralDeg``, in order)."""
    mol = Chem.Mol(molecule.rdmol)
    mol.RemoveAllConformers()
    conf = Chem.Conformer(mol.GetNumAtoms())
    for index, xyz in enumerate(np.asarray(geometry, dtype=float)):
        conf.SetAtomPosition(index, xyz.tolist())
    conf = mol.GetConformer(mol.AddConformer(conf, assignId=True))  # needs an owner
    for (i, j, k, m), angle in zip(dihedrals, angles_deg):
        rdMolTransforms.SetDihedralDeg(conf, int(i), int(j), int(k), int(m), float(angle))
    return np.array(conf.GetPositions())


def _check_dihedrals(molecule: Molecule, dihedrals) -> list[tuple[int, int, int, int]]:
    dihedrals = [tuple(int(a) for a in d) for d in dihedrals]
    if not 1 <= len(dihedrals) <= 2:
        raise InputError("a torsion drive scans one or two dihedrals")
    bonds = {tuple(b) for b in molecule.bonds.tolist()}
    for d in dihedrals:
        if len(d) != 4 or len(set(d)) != 4 or max(d) >= molecule.n_atoms or min(d) < 0:
            raise InputError(f"dihedral {d} needs 4 distinct atom indices of {molecule.name}")
        for a, b in pairwise(d):
            if (min(a, b), max(a, b)) not in bonds:
                raise InputError(f"dihedral {d}: atoms {a} and {b} are not bonded")
        if molecule.rdmol.GetBondBetweenAtoms(d[1], d[2]).IsInRing():
            raise InputError(f"dihedral {d}: the central bond is in a ring")
    return dihedrals


def _initial_geometries(molecule: Molecule, geometries: np.ndarray | None) -> np.ndarray:
    if geometries is not None:
        return np.asarray(geometries, dtype=np.float64).reshape(-1, molecule.n_atoms, 3)
    if molecule.n_conformers:
        return molecule.conformers
    return molecule.generate_conformers(n_conformers=1).conformers


def _initial_state(species, dihedrals, spacings, starts, ranges, upper_limit) -> dict:
    from torsiondrive import td_api

    limit = FAILED_ENERGY_HARTREE / 10 if upper_limit is None else upper_limit / HARTREE_KCAL_MOL
    return td_api.create_initial_state(
        dihedrals=[list(d) for d in dihedrals],
        grid_spacing=list(spacings),
        elements=species.symbols,
        init_coords=[torsiondrive_coordinates(g) for g in starts],
        dihedral_ranges=[list(r) for r in ranges] if ranges else None,
        energy_upper_limit=limit,
    )


def torsiondrive_coordinates(geometry: np.ndarray) -> list[float]:
    """Flat Bohr coordinates of ``geometry`` (n_atoms, 3) Angstrom whose torsiondrive
    geometry key survives torsiondrive's Angstrom -> Bohr -> Angstrom round trip.

    torsiondrive's key is ``trunc(1000 * x)`` of each Angstrom coordinate ``x``. A
    coordinate whose key changes in the round trip lies within rounding error of a bin edge;
    it is moved :data:`GEO_KEY_NUDGE_ANGSTROM` away from zero, deep enough into its bin that
    no rounding crosses back (see the module docstring).
    """
    from geometric.nifty import ang2bohr, bohr2ang

    bohr = np.asarray(geometry, dtype=np.float64).reshape(-1) / BOHR_ANGSTROM
    for _ in range(3):
        angstrom = bohr * bohr2ang  # what torsiondrive holds
        round_trip = (angstrom * ang2bohr) * bohr2ang  # what it reads back from a result
        unstable = _geo_key(angstrom) != _geo_key(round_trip)
        if not unstable.any():
            return bohr.tolist()
        nudged = angstrom[unstable] + np.copysign(GEO_KEY_NUDGE_ANGSTROM, angstrom[unstable])
        bohr[unstable] = nudged / bohr2ang
    raise CalculationError("could not make a geometry's torsiondrive key stable")


def _geo_key(angstrom: np.ndarray) -> np.ndarray:
    """torsiondrive's per-coordinate geometry key (``dihedral_scanner.get_geo_key``)."""
    return (angstrom * 1000).astype(int)


def _next_jobs(state: dict) -> dict:
    from torsiondrive import td_api

    with contextlib.redirect_stdout(io.StringIO()):  # torsiondrive prints progress
        return td_api.next_jobs_from_state(state, verbose=False)


def _update_state(state: dict, job_results: dict) -> None:
    from torsiondrive import td_api

    td_api.update_state(state, job_results)


def _grid_id(text: str) -> tuple[int, ...]:
    return tuple(int(a) for a in text.split(","))


def _wrap(angle: float) -> float:
    """Angle in degrees mapped to (-180, 180]."""
    wrapped = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 else wrapped


def _grid_points(spacings: list[int], ranges) -> list[tuple[int, ...]]:
    """All grid points (degrees, torsiondrive's (-180, 180] convention) within ranges."""
    axes = []
    for dim, spacing in enumerate(spacings):
        values = [a for a in range(-180 + spacing, 181, spacing)]
        if ranges:  # limits may cross +180, e.g. [80, 240]
            low, high = ranges[dim]
            values = [a for a in values if low <= a <= high or low <= a + 360 <= high]
        axes.append(values)
    return list(product(*axes))
