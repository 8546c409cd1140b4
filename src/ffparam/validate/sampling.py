"""Held-out geometries: conformers generated independently of anything a fit used.

Conformers come from RDKit ETKDG v3 with their own seed (:data:`VALIDATION_SEED` by default,
different from the fitting defaults: ``Molecule.generate_conformers`` uses 0xF00D and the
bespoke pipeline its ``--seed``), are optionally relaxed with MMFF94 (a force field
independent of the systems compared and of the reference), and are pruned by all-atom
Kabsch RMSD, so that small molecules whose conformers differ only in hydrogen positions
(ethanol's OH rotamers) keep them. Geometries close to ones used in a fit (``exclude``)
are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.validate.alignment import kabsch_rmsd

VALIDATION_SEED: int = 0xC0FFEE
"""Default ETKDG seed of validation conformers (12648430)."""

RELAX_MODES: tuple[str, ...] = ("mmff94", "none", "reference")
"""``mmff94``: ETKDG then MMFF94 minimization (UFF where MMFF94 lacks parameters);
``none``: raw ETKDG geometries; ``reference``: ETKDG then optimization with the reference
method (the caller runs the ``optimize`` task)."""


@dataclass
class HeldOutGeometries:
    """Geometries (n, n_atoms, 3) Angstrom and how many candidates were dropped where."""

    geometries: np.ndarray
    n_candidates: int
    n_pruned: int
    n_excluded: int


def held_out_geometries(molecule: Molecule, n_conformers: int, seed: int,
                        rms_threshold: float = 0.25, relax: str = "mmff94",
                        exclude: np.ndarray | None = None,
                        oversample: int = 3) -> HeldOutGeometries:
    """Up to ``n_conformers`` distinct conformers of ``molecule``.

    ``n_conformers * oversample`` ETKDG candidates are embedded with ``seed`` (MMFF94-relaxed
    when ``relax == "mmff94"``), then kept in order if their all-atom RMSD after Kabsch
    superposition to every kept one exceeds ``rms_threshold`` Angstrom and to every geometry
    of ``exclude`` (n_ex, n_atoms, 3) as well.
    """
    if relax not in RELAX_MODES:
        raise InputError(f"unknown relax mode {relax!r} (known: {', '.join(RELAX_MODES)})")
    if n_conformers < 1:
        raise InputError(f"n_conformers must be at least 1, got {n_conformers}")
    optimize = "mmff94" if relax == "mmff94" else None
    candidates = molecule.generate_conformers(n_conformers * max(1, oversample), seed=seed,
                                              rms_threshold=0.0, optimize=optimize).conformers
    excluded = np.zeros((0, molecule.n_atoms, 3))
    if exclude is not None and len(exclude):
        excluded = np.asarray(exclude, dtype=np.float64).reshape(-1, molecule.n_atoms, 3)
    kept: list[np.ndarray] = []
    n_pruned = n_excluded = 0
    for xyz in candidates:
        if len(excluded) and np.min(kabsch_rmsd(excluded, xyz)) <= rms_threshold:
            n_excluded += 1
            continue
        if kept and np.min(kabsch_rmsd(np.array(kept), xyz)) <= rms_threshold:
            n_pruned += 1
            continue
        kept.append(xyz)
        if len(kept) == n_conformers:
            break
    geometries = np.array(kept).reshape(-1, molecule.n_atoms, 3)
    return HeldOutGeometries(geometries, len(candidates), n_pruned, n_excluded)
