"""Small analytic energy models with exactly known Boltzmann distributions."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ffparam.sample import TorsionMoves
from ffparam.units import BOLTZMANN_KCAL_MOL_K

CHAIN = np.array([[1.0, 1.2, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [2.2, 1.0, 0.6]])
"""A 4-atom chain 0-1-2-3 (Angstrom) whose dihedral is the one coordinate of the model."""

TERMS = ((1, 1.2, 0.0), (2, 0.4, 0.9), (3, 1.0, 0.0))
"""(periodicity n, k kcal/mol, phase rad) of V(phi) = sum k (1 + cos(n phi - phase)): an
asymmetric (phase 0.9) profile with three wells, so a sign error shows."""


def torsion_energy(phi: Tensor | np.ndarray):
    """V(phi) kcal/mol of the model, phi in radians."""
    lib = torch if isinstance(phi, Tensor) else np
    return sum(k * (1.0 + lib.cos(n * phi - phase)) for n, k, phase in TERMS)


def dihedral(positions: Tensor) -> Tensor:
    """Dihedral 0-1-2-3 (radians) of (n, 4, 3) positions."""
    a, b, c, d = (positions[:, i] for i in range(4))
    b1, b2, b3 = b - a, c - b, d - c
    n1, n2 = torch.cross(b1, b2, dim=-1), torch.cross(b2, b3, dim=-1)
    y = b2.norm(dim=-1) * (b1 * n2).sum(-1)
    return torch.atan2(y, (n1 * n2).sum(-1))


def chain_energy(positions: Tensor) -> Tensor:
    """The 1-D torsion model as an energy function of Cartesian positions."""
    return torsion_energy(dihedral(positions))


def chain_moves() -> TorsionMoves:
    return TorsionMoves.from_bonds(4, np.array([[0, 1], [1, 2], [2, 3]]), np.array([[1, 2]]))


def exact_bin_probabilities(edges_deg: np.ndarray, temperature_k: float) -> np.ndarray:
    """Boltzmann probability of each dihedral bin (edges in degrees, [0, 360]): torsion
    moves keep bonds and angles, so phi is uniform-measure with density exp(-V/kT)."""
    fine = np.linspace(0.0, 360.0, 360 * 200, endpoint=False) + 0.5 / 200
    weight = np.exp(-torsion_energy(np.radians(fine)) / (BOLTZMANN_KCAL_MOL_K * temperature_k))
    counts = np.histogram(fine, bins=edges_deg, weights=weight)[0]
    return counts / counts.sum()


def harmonic_pair_energy(k: float, r0_a: float):
    """E = k/2 (r - r0)^2 of a two-atom 'molecule' (kcal/mol, Angstrom)."""

    def energy(positions: Tensor) -> Tensor:
        r = (positions[:, 1] - positions[:, 0]).norm(dim=-1)
        return 0.5 * k * (r - r0_a) ** 2

    return energy
