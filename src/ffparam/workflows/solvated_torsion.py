"""Solvated torsion profiles: QM/MM single points along a torsion drive in solvent snapshots.

Steps (each stored or checkpointed, so a rerun recomputes nothing):

1. Drive geometries of the solute: given (e.g. a LOW torsion drive's optimized
   geometries, :func:`ffparam.reference.torsiondrive.run_torsiondrive`) or MM-relaxed
   (:func:`mm_drive_geometries`: the dihedral set by rigid rotation, then the force field
   minimized with the dihedral restrained, :func:`ffparam.fit.relax.relax`).
2. Per drive point, :func:`ffparam.workflows.qmmm.run_qmmm` with the solute frozen at that
   geometry (``freeze_solute``, the restrained solute): a packmol solvent box, NPT MD,
   ``n_frames`` snapshots, one QM/MM energy per snapshot (the solute in the point charges
   of the solvent molecules within ``cutoff_a``) and the gas-phase QM energy of the same
   geometry; work files in ``OUT/point_NN/``, calculations in one Store.
3. ``OUT/solvated_torsion.json``: the :class:`~ffparam.fit.targets.solvated_torsion.
   SolvatedProfile` (drive angles, geometries, gas energies, QM/MM energies and the
   solvent atoms of every snapshot, with the solvent's charges and Lennard-Jones
   parameters), the reference of a ``solvated_torsion`` target of ``ffparam fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from ffparam.errors import CalculationError, InputError
from ffparam.fit.targets.solvated_torsion import SolvatedProfile
from ffparam.params.system import ParameterizedSystem
from ffparam.workflows.qmmm import QMMMSettings, box_edge_a, run_qmmm

PROFILE_FILE = "solvated_torsion.json"


def mm_drive_geometries(system: ParameterizedSystem, dihedral: Sequence[int],
                        angles_deg: Sequence[float], start: np.ndarray | None = None
                        ) -> np.ndarray:
    """MM-relaxed drive geometries (P, N, 3) Angstrom: ``start`` (default the first
    conformer) turned to each angle (:func:`~ffparam.reference.torsiondrive.
    turned_geometry`), then minimized with the force field with the dihedral restrained at
    the angle (5000 kcal/mol/rad^2) and every atom weakly tethered."""
    import torch

    from ffparam.fit.relax import RestraintSpec, relax
    from ffparam.mm.engine import MMEngine
    from ffparam.reference.torsiondrive import turned_geometry

    dihedral = check_dihedral(system, dihedral)
    start = system.molecule.conformers[0] if start is None else np.asarray(start, float)
    starts = np.array([turned_geometry(system.molecule, start, [dihedral], [a])
                       for a in angles_deg])
    target = np.radians(np.asarray(angles_deg, dtype=float)).reshape(-1, 1)
    spec = RestraintSpec(np.array([dihedral]), target, starts, k_position=0.1)
    values = torch.as_tensor(system.parameters.vector(), dtype=torch.float64)
    return relax(MMEngine(system), values, starts, spec)


def check_dihedral(system: ParameterizedSystem, dihedral: Sequence[int]) -> tuple[int, ...]:
    """``dihedral`` as 4 atom indices; InputError unless they form a bonded chain."""
    quad = tuple(int(a) for a in dihedral)
    bonds = {tuple(sorted(b)) for b in np.asarray(system.topology.bonds).tolist()}
    if len(quad) != 4 or min(quad) < 0 or max(quad) >= system.n_atoms or not all(
            tuple(sorted(pair)) in bonds for pair in pairwise(quad)):
        raise InputError(f"{system.molecule.name}: dihedral {list(quad)} is not four bonded "
                         f"atoms i-j-k-l (0-based, {system.n_atoms} atoms)")
    return quad


def solvated_torsion_profile(system: ParameterizedSystem, dihedral: Sequence[int],
                             angles_deg: Sequence[float], out: str | Path,
                             settings: QMMMSettings | None = None, store=None, executor=None,
                             geometries: np.ndarray | None = None, progress: bool = False
                             ) -> SolvatedProfile:
    """QM/MM single points of ``system``'s molecule along a drive of ``dihedral`` at
    ``angles_deg`` (degrees), each drive geometry ((P, N, 3) Angstrom ``geometries``,
    default :func:`mm_drive_geometries`) frozen in ``settings.n_frames`` snapshots of its
    own solvent box (``settings`` as ``ffparam qmmm``; the task is ``energy``). Writes
    ``OUT/solvated_torsion.json``; CalculationError when a calculation failed."""
    from ffparam.reference.store import Store

    settings = (settings or QMMMSettings()).replace(task="energy", freeze_solute=True)
    box_edge_a(settings)  # bad input refused before anything runs
    dihedral = check_dihedral(system, dihedral)
    angles = np.asarray(angles_deg, dtype=float).reshape(-1)
    if len(angles) < 2:
        raise InputError("a solvated torsion profile needs at least 2 drive angles")
    if geometries is None:
        geometries = mm_drive_geometries(system, dihedral, angles)
    geometries = np.asarray(geometries, dtype=float)
    if geometries.shape != (len(angles), system.n_atoms, 3):
        raise InputError(f"drive geometries {geometries.shape}, expected ({len(angles)}, "
                         f"{system.n_atoms}, 3)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    own = store is None
    store = Store(out / "qmmm.sqlite") if own else store
    try:
        runs = [run_qmmm(system, out / f"point_{k:02d}", settings.replace(seed=settings.seed + k),
                         store, executor, progress, geometry)
                for k, geometry in enumerate(geometries)]
    finally:
        if own:
            store.close()
    profile = profile_of_runs(runs, dihedral, angles, system.molecule.name)
    profile.save(out / PROFILE_FILE)
    return profile


def profile_of_runs(runs: list, dihedral: Sequence[int], angles: np.ndarray, name: str
                    ) -> SolvatedProfile:
    """The :class:`SolvatedProfile` of one :class:`~ffparam.workflows.qmmm.QMMMResult` per
    drive point; CalculationError naming the first failed calculation."""
    for k, run in enumerate(runs):
        failed = [r for r in [run.gas, *run.records] if not r.ok]
        if failed:
            raise CalculationError(f"solvated torsion point {k} ({angles[k]:g} deg): "
                                   f"{len(failed)} calculation(s) failed: {failed[0].error}")
    solvent = runs[0].solvent
    vector = solvent.parameters.vector()
    nb = solvent.nonbonded
    return SolvatedProfile(
        dihedral, angles, [run.regions[0].geometry for run in runs],
        [run.gas.energy for run in runs],
        [[record.energy for record in run.records] for run in runs],
        [[region.environment.positions for region in run.regions] for run in runs],
        solvent.charges(), vector[nb.sigma_index], vector[nb.epsilon_index],
        runs[0].gas.method, f"{name} {'-'.join(map(str, dihedral))} in "
        f"{solvent.molecule.name}")
