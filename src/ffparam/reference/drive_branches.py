"""Conformer branches of a LOW torsion drive: the other side-chain rotamers the drive met,
so that a HIGH method can decide which branch the relaxed profile follows.

A relaxed torsion drive keeps, at each grid point, the lowest LOW energy over every
constrained optimization the wavefront ran. When LOW and HIGH disagree about which
rotamer of another rotatable bond is lower (a methoxy group turned by 80 degrees in a
sulfinate ester: GFN2-xTB prefers one, B3LYP-D3BJ the other, by 0.5-1 kcal/mol), the
LOW drive follows the wrong branch everywhere, and single points on its geometries cannot
repair that (measured on OpenFF Torsion Drive Supplement record 119466812, see
``benchmarks/RESULTS.md``).

The wavefront's own optimizations often hold the other branches at some grid points; a
drive from one start may never meet them, so :func:`drive_branches` first *seeds* them:
at the profile's lowest point, one constrained LOW optimization per other rotamer (each
signature dihedral turned by +-120 degrees). It then collects them from the Store: every
successful LOW ``optimize`` record of the molecule constrained to the scanned dihedral at
a grid angle. A geometry is
described by its *signature*, the values (degrees) of one heavy-atom dihedral per other
rotatable bond (:func:`secondary_dihedrals`); two geometries are on the same branch when
every signature dihedral differs by less than :data:`BRANCH_GAP_DEG`. Alternatives at one
grid point are linked to those at the neighbouring grid points into branches; a branch
whose LOW energies equal the drive's own within :data:`SYMMETRIC_IMAGE_KCAL_MOL` wherever
both exist is a symmetry image (a carboxylate turned by 180 degrees) and is dropped. The
:data:`MAX_ALT_BRANCHES` branches that come closest to the drive's profile (within
:data:`BRANCH_WINDOW_KCAL_MOL` somewhere) are kept and *completed*: grid points the
branch lacks get a constrained LOW optimization started from the neighbouring member
turned to the grid angle, one step at a time outwards. Where LOW has no minimum on the
branch (the optimization slides back), the optimization is redone with the signature
dihedrals held at the neighbour's values as well: HIGH may well have that minimum (the
sulfinate above: GFN2-xTB loses the methoxy rotamer over a third of the drive, B3LYP keeps
it throughout). These are ordinary Store records (a rerun computes nothing).

Bonds whose ends carry only hydrogens besides each other (methyl, hydroxyl) have no
signature dihedral: their rotamers are not branches here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ffparam.chem import Molecule, Topology
from ffparam.reference.compute import RunSummary, run_jobs
from ffparam.reference.jobs import Job
from ffparam.reference.records import Constraints, Species, Task
from ffparam.reference.spec import MethodSpec
from ffparam.sample.statistics import dihedral_angles

BRANCH_GAP_DEG = 45.0
"""Two geometries are on different branches when some signature dihedral differs by at
least this much, degrees (rotamers are 60-120 degrees apart; a branch drifts by 15-30
degrees along a drive)."""
SYMMETRIC_IMAGE_KCAL_MOL = 0.02
"""A branch whose LOW energies equal the drive's own within this everywhere (kcal/mol) is a
symmetry image of it, not another conformer."""
BRANCH_WINDOW_KCAL_MOL = 3.0
"""An alternative branch is kept only if it comes within this of the drive's profile at
some grid point, kcal/mol (HIGH - LOW branch errors are 0.5-1 kcal/mol)."""
MAX_ALT_BRANCHES = 2
"""Alternative branches kept per drive (those closest to the drive's profile)."""


@dataclass
class DriveBranches:
    """Candidate geometries of a 1-D drive: its own profile (branch 0, candidate ``i`` =
    grid point ``i``) followed by the kept alternative branches.

    Attributes:
        grid_index: (m,) profile grid point of each candidate.
        branch: (m,) 0 for the drive's own profile, 1.. for the alternatives.
        geometries: (m, n_atoms, 3) LOW constrained-optimized geometries, Angstrom.
        low_energies: (m,) LOW energies, kcal/mol.
        signatures: (m, k) signature dihedrals, degrees.
        secondary: the k signature dihedrals (i, j, k, l).
        summary: the LOW optimizations run to complete the branches.
        held: (m,) True where LOW has no minimum on the branch at that angle and the
            candidate was optimized with its signature dihedrals held too.
    """

    grid_index: np.ndarray
    branch: np.ndarray
    geometries: np.ndarray
    low_energies: np.ndarray
    signatures: np.ndarray
    secondary: list[tuple[int, int, int, int]]
    summary: RunSummary = field(default_factory=RunSummary)
    held: np.ndarray | None = None

    @property
    def n_branches(self) -> int:
        return int(self.branch.max()) + 1 if len(self.branch) else 0


def secondary_dihedrals(molecule: Molecule, dihedral) -> list[tuple[int, int, int, int]]:
    """One dihedral (heaviest neighbours) per rotatable bond other than the scanned one's
    central bond (both ends bonded to another heavy atom: no methyl or hydroxyl rotors)."""
    topology = Topology(molecule)
    scanned = tuple(sorted(int(a) for a in dihedral[1:3]))
    return [tuple(int(a) for a in topology.dihedral_for_bond(tuple(int(a) for a in bond)))
            for bond in topology.rotatable_bonds if tuple(int(a) for a in bond) != scanned]


def dihedral_values(geometries: np.ndarray, quads) -> np.ndarray:
    """(m, k) dihedral angles (degrees, [-180, 180)) of ``quads`` in ``geometries``
    (m, N, 3): :func:`ffparam.sample.statistics.dihedral_angles` in the signed range the
    drive's constraints use."""
    return (dihedral_angles(geometries, quads) + 180.0) % 360.0 - 180.0


def signature_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest circular difference (degrees) between signatures ``a`` (..., k) and ``b``."""
    diff = np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)
    return diff.max(axis=-1) if diff.shape[-1] else np.zeros(diff.shape[:-1])


def drive_branches(molecule: Molecule, dihedral, angles_deg: np.ndarray,
                   geometries: np.ndarray, energies: np.ndarray, low: MethodSpec | str,
                   store, executor=None, *, retry_failed: bool = False,
                   progress: bool = False, max_steps: int = 300,
                   complete: bool = True, seed: bool = True) -> DriveBranches:
    """The branches of the 1-D LOW drive of ``dihedral`` on ``molecule`` whose profile is
    ``angles_deg`` (n,) degrees, ``geometries`` (n, N, 3) Angstrom and ``energies`` (n,)
    kcal/mol (module docstring); ``seed``: first optimize the other rotamers of every
    signature dihedral at the profile's minimum; ``complete``: run the LOW optimizations
    that extend the kept branches over the grid."""
    low = MethodSpec.parse(low)
    dihedral = tuple(int(a) for a in dihedral)
    angles = np.asarray(angles_deg, dtype=float).reshape(-1)
    geometries = np.asarray(geometries, dtype=float)
    energies = np.asarray(energies, dtype=float)
    quads = secondary_dihedrals(molecule, dihedral)
    main_sig = dihedral_values(geometries, quads) if quads else np.zeros((len(angles), 0))
    out = DriveBranches(np.arange(len(angles)), np.zeros(len(angles), dtype=np.int64),
                        geometries, energies, main_sig, quads)
    if not quads:
        return out
    species = Species.from_molecule(molecule)
    if seed:
        _seed(molecule, species, low, dihedral, angles, geometries, energies, main_sig,
              quads, store, executor, retry_failed, progress, max_steps, out.summary)
    found = _stored_alternatives(species, low, dihedral, angles, main_sig, quads, store)
    branches = _link(found, angles, energies)
    held: list[set[int]] = [set() for _ in branches]
    if complete:
        for members, kept in zip(branches, held):
            _complete(members, molecule, species, low, dihedral, angles, main_sig, quads,
                      store, executor, retry_failed, progress, max_steps, out.summary, kept)
    return _assemble(out, branches, held)


def _seed(molecule: Molecule, species: Species, low: MethodSpec, dihedral,
          angles: np.ndarray, geometries: np.ndarray, energies: np.ndarray,
          main_sig: np.ndarray, quads, store, executor, retry_failed: bool,
          progress: bool, max_steps: int, summary: RunSummary) -> None:
    """Constrained LOW optimizations at the profile's lowest grid point from its geometry
    with one signature dihedral turned by +-120 degrees (the other rotamers a drive from
    one start never meets); they land in the Store, where the branches are collected."""
    from ffparam.reference.torsiondrive import turned_geometry

    best = int(np.argmin(energies))
    starts = {}
    for q, value in zip(quads, main_sig[best]):
        for turn in (120.0, -120.0):
            starts[len(starts)] = turned_geometry(molecule, geometries[best], [q],
                                                  [value + turn])
    jobs = [_constrained_job(species, low, dihedral, angles[best], start, (), max_steps)
            for start in starts.values()]
    summary.merge(run_jobs(jobs, store, executor, retry_failed, progress,
                           f"  {low.canonical()} branch seeds")[1])


def _constrained_job(species: Species, low: MethodSpec, dihedral, angle: float,
                     start: np.ndarray, holds: tuple, max_steps: int) -> Job:
    """A LOW optimization from ``start`` with ``dihedral`` at ``angle`` degrees (and the
    ``holds`` (i, j, k, l, degrees) held as well)."""
    held = ((*dihedral, float(angle)), *holds)
    task = Task("optimize", constraints=Constraints(dihedrals=held), max_steps=max_steps)
    return Job.create(species, low, task, start)


def _stored_alternatives(species: Species, low: MethodSpec, dihedral, angles: np.ndarray,
                         main_sig: np.ndarray, quads, store) -> dict[int, list[tuple]]:
    """Grid index -> [(energy, geometry, signature)] of the lowest stored LOW optimization
    per branch other than the profile's own, lowest first."""
    grid = {round(float(a), 6) % 360.0: i for i, a in enumerate(angles)}
    per_point: dict[int, list[tuple]] = {}
    for record in store.records(status="complete", method=low.canonical(),
                                molecule_key=species.key):
        task = json.loads(record.task)
        held = task.get("constraints", {}).get("dihedrals", [])
        if (task["kind"] != "optimize" or len(held) != 1
                or tuple(held[0][:4]) != dihedral or record.final_geometry is None):
            continue
        index = grid.get(round(float(held[0][4]), 6) % 360.0)
        if index is None or record.energy is None:
            continue
        sig = dihedral_values(record.final_geometry[None], quads)[0]
        if signature_gap(sig, main_sig[index]) < BRANCH_GAP_DEG:
            continue
        per_point.setdefault(index, []).append((float(record.energy),
                                                np.asarray(record.final_geometry), sig))
    for index, found in per_point.items():
        found.sort(key=lambda item: item[0])
        kept: list[tuple] = []
        for item in found:
            if all(signature_gap(item[2], k[2]) >= BRANCH_GAP_DEG for k in kept):
                kept.append(item)
        per_point[index] = kept
    return per_point


def _neighbours(index: int, order: list[int], cyclic: bool) -> list[int]:
    pos = order.index(index)
    steps = [pos - 1, pos + 1]
    if cyclic:
        return [order[s % len(order)] for s in steps]
    return [order[s] for s in steps if 0 <= s < len(order)]


def _is_cyclic(angles: np.ndarray) -> bool:
    """Whether the grid closes the circle (its spacing repeats across +-180 degrees)."""
    if len(angles) < 3:
        return False
    ordered = np.sort(angles % 360.0)
    gaps = np.diff(np.concatenate([ordered, ordered[:1] + 360.0]))
    return bool(np.allclose(gaps, gaps[0], atol=1e-6))


def _link(found: dict[int, list[tuple]], angles: np.ndarray,
          energies: np.ndarray) -> list[dict[int, tuple]]:
    """Alternatives linked across neighbouring grid points into branches (grid index ->
    (energy, geometry, signature)); symmetry images dropped; the kept ones, closest to the
    profile first."""
    nodes = [(i, j) for i, items in found.items() for j in range(len(items))]
    parent = {n: n for n in nodes}

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    order = [int(i) for i in np.argsort(angles, kind="stable")]
    cyclic = _is_cyclic(angles)
    for i, j in nodes:
        for k in _neighbours(i, order, cyclic):
            for m, other in enumerate(found.get(k, [])):
                if signature_gap(found[i][j][2], other[2]) < BRANCH_GAP_DEG:
                    parent[root((i, j))] = root((k, m))
    groups: dict[tuple, dict[int, tuple]] = {}
    for i, j in nodes:
        branch = groups.setdefault(root((i, j)), {})
        if i not in branch or found[i][j][0] < branch[i][0]:
            branch[i] = found[i][j]
    scored = []
    for branch in groups.values():
        above = np.array([item[0] - energies[i] for i, item in branch.items()])
        if np.all(np.abs(above) < SYMMETRIC_IMAGE_KCAL_MOL):
            continue  # a symmetry image of the profile's own branch
        if above.min() < BRANCH_WINDOW_KCAL_MOL:
            scored.append((float(above.min()), branch))
    scored.sort(key=lambda item: item[0])
    return [branch for _, branch in scored[:MAX_ALT_BRANCHES]]


def _complete(branch: dict[int, tuple], molecule: Molecule, species: Species,
              low: MethodSpec, dihedral, angles: np.ndarray, main_sig: np.ndarray, quads,
              store, executor, retry_failed: bool, progress: bool, max_steps: int,
              summary: RunSummary, held: set[int]) -> None:
    """Extend ``branch`` over the grid in place: constrained LOW optimizations from the
    neighbouring member turned to each missing angle, outwards. One that leaves the branch
    (LOW has no minimum there) is redone with the signature dihedrals also held at the
    neighbour's values; such grid points go into ``held``."""
    from ffparam.reference.torsiondrive import turned_geometry

    order = [int(i) for i in np.argsort(angles, kind="stable")]
    cyclic = _is_cyclic(angles)
    dead: set[int] = set()
    while True:
        asks = {}
        for index in sorted(branch):
            for k in _neighbours(index, order, cyclic):
                if k not in branch and k not in dead and k not in asks:
                    asks[k] = index
        if not asks:
            return
        starts = {k: turned_geometry(molecule, branch[seed][1], [dihedral], [angles[k]])
                  for k, seed in asks.items()}
        free = _optimize(species, low, dihedral, angles, starts, {}, store, executor,
                         retry_failed, progress, max_steps, summary)
        slid = {}
        for k, record in free.items():
            seed = asks[k]
            sig = None if record is None else dihedral_values(record.final_geometry[None],
                                                              quads)[0]
            if sig is not None and signature_gap(sig, branch[seed][2]) < BRANCH_GAP_DEG \
                    and signature_gap(sig, main_sig[k]) >= BRANCH_GAP_DEG:
                branch[k] = (float(record.energy), np.asarray(record.final_geometry), sig)
            else:
                slid[k] = seed
        holds = {k: tuple((*q, float(v)) for q, v in zip(quads, branch[seed][2]))
                 for k, seed in slid.items()}
        fixed = _optimize(species, low, dihedral, angles, {k: starts[k] for k in slid},
                          holds, store, executor, retry_failed, progress, max_steps, summary)
        for k, record in fixed.items():
            if record is None:
                dead.add(k)
                continue
            sig = dihedral_values(record.final_geometry[None], quads)[0]
            branch[k] = (float(record.energy), np.asarray(record.final_geometry), sig)
            held.add(k)


def _optimize(species: Species, low: MethodSpec, dihedral, angles: np.ndarray,
              starts: dict[int, np.ndarray], holds: dict[int, tuple], store, executor,
              retry_failed: bool, progress: bool, max_steps: int,
              summary: RunSummary) -> dict[int, object]:
    """Grid index -> the successful LOW optimization from ``starts[k]`` with the scanned
    dihedral at the grid angle (and ``holds[k]`` also held), None where it failed."""
    if not starts:
        return {}
    jobs = [_constrained_job(species, low, dihedral, angles[k], start, holds.get(k, ()),
                             max_steps) for k, start in starts.items()]
    records, part = run_jobs(jobs, store, executor, retry_failed, progress,
                             f"  {low.canonical()} branch completion")
    summary.merge(part)
    return {k: r if r.ok and r.final_geometry is not None else None
            for k, r in zip(starts, records)}


def _assemble(out: DriveBranches, branches: list[dict[int, tuple]],
              held: list[set[int]]) -> DriveBranches:
    grid, label, geos, energies, sigs = [out.grid_index], [out.branch], [out.geometries], \
        [out.low_energies], [out.signatures]
    flags = [np.zeros(len(out.grid_index), dtype=bool)]
    for b, (branch, kept) in enumerate(zip(branches, held), start=1):
        indices = sorted(branch)
        flags.append(np.array([i in kept for i in indices], dtype=bool))
        grid.append(np.array(indices, dtype=np.int64))
        label.append(np.full(len(indices), b, dtype=np.int64))
        geos.append(np.stack([branch[i][1] for i in indices]))
        energies.append(np.array([branch[i][0] for i in indices]))
        sigs.append(np.stack([branch[i][2] for i in indices]))
    return DriveBranches(np.concatenate(grid), np.concatenate(label),
                         np.concatenate(geos), np.concatenate(energies),
                         np.concatenate(sigs), out.secondary, out.summary,
                         np.concatenate(flags))


__all__ = [
    "BRANCH_GAP_DEG",
    "BRANCH_WINDOW_KCAL_MOL",
    "MAX_ALT_BRANCHES",
    "SYMMETRIC_IMAGE_KCAL_MOL",
    "DriveBranches",
    "dihedral_values",
    "drive_branches",
    "secondary_dihedrals",
    "signature_gap",
]
