"""Merz-Kollman-style ESP fitting points: shells at 1.4, 1.6, 1.8 and 2.0 x vdW radii.

Singh & Kollman, J. Comput. Chem. 5, 129 (1984); Besler, Merz & Kollman, J. Comput. Chem.
11, 431 (1990). Each atom gets, per scale factor s, a sphere of radius s * r_vdW covered
by golden-spiral points at ``density`` points per Angstrom^2; points closer to any atom
than that atom's scaled radius are removed. Radii (Angstrom) are the MK values for H, C,
N, O, F, P, S, Cl; other elements use RDKit's van der Waals radius.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem

MK_SCALES: tuple[float, ...] = (1.4, 1.6, 1.8, 2.0)
MK_RADII: dict[int, float] = {1: 1.2, 6: 1.5, 7: 1.5, 8: 1.4, 9: 1.35, 15: 1.8, 16: 1.75, 17: 1.7}
"""Merz-Kollman van der Waals radii in Angstrom, by atomic number."""


def vdw_radius(z: int) -> float:
    """MK radius if tabulated, else RDKit's (Bondi-like) van der Waals radius, Angstrom."""
    return MK_RADII.get(int(z), Chem.GetPeriodicTable().GetRvdw(int(z)))


def unit_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform points (n, 3) on the unit sphere (golden spiral)."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / n)
    azimuth = np.pi * (1.0 + 5.0**0.5) * k
    return np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)],
        axis=1,
    )


def merz_kollman_points(
    numbers: np.ndarray,
    geometry: np.ndarray,
    scales: tuple[float, ...] = MK_SCALES,
    density: float = 1.0,
) -> np.ndarray:
    """ESP points (m, 3) Angstrom around ``geometry`` (n_atoms, 3) Angstrom.

    Args:
        numbers: atomic numbers (n_atoms,).
        scales: multiples of the vdW radius, one shell each.
        density: points per Angstrom^2 of shell surface.
    """
    geometry = np.asarray(geometry, dtype=np.float64).reshape(-1, 3)
    radii = np.array([vdw_radius(z) for z in numbers])
    shells = []
    for scale in scales:
        scaled = scale * radii
        candidates = []
        for centre, radius in zip(geometry, scaled):
            n_points = max(int(4.0 * np.pi * radius**2 * density), 1)
            candidates.append(centre + radius * unit_sphere(n_points))
        points = np.concatenate(candidates)
        distances = np.linalg.norm(points[:, None, :] - geometry[None, :, :], axis=-1)
        inside = (distances < scaled[None, :] - 1e-8).any(axis=1)
        shells.append(points[~inside])
    return np.concatenate(shells)
