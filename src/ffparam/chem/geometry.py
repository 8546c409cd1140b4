"""Geometry sanity checks shared by every reader of reference data."""

from __future__ import annotations

import numpy as np
from rdkit import Chem

BOND_LENGTH_FACTOR = 1.4
"""Bonded atoms farther apart than this multiple of the sum of their covalent radii (RDKit)
mean a geometry uses another atom order than the molecule (or is broken)."""


def stretched_bond(atomic_numbers, bonds, geometries,
                   factor: float = BOND_LENGTH_FACTOR) -> tuple[int, int, int, float] | None:
    """The most stretched bond over all frames, if any is longer than ``factor`` x the sum
    of covalent radii: (frame, i, j, length in Angstrom), else None.

    Args:
        atomic_numbers: (N,) ints; bonds: (n_bonds, 2) atom pairs;
        geometries: (N, 3) or (n_frames, N, 3) Angstrom.
    """
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    if not len(bonds):
        return None
    xyz = np.asarray(geometries, dtype=np.float64)
    xyz = xyz.reshape(-1, *xyz.shape[-2:])
    table = Chem.GetPeriodicTable()
    radii = np.array([table.GetRcovalent(int(z)) for z in atomic_numbers])
    lengths = np.linalg.norm(xyz[:, bonds[:, 0]] - xyz[:, bonds[:, 1]], axis=-1)
    ratio = lengths / (radii[bonds[:, 0]] + radii[bonds[:, 1]])
    frame, row = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[frame, row] <= factor:
        return None
    return int(frame), int(bonds[row, 0]), int(bonds[row, 1]), float(lengths[frame, row])
