"""An Ewald sum written from the textbook formula, independent of OpenMM, for checking the
liquid box's PME electrostatics (kcal/mol, Angstrom, e; cubic box, neutral)."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import erfc

from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2


def ewald_energy(positions: np.ndarray, charges: np.ndarray, box: float, alpha: float,
                 kmax: int) -> float:
    """Full periodic Coulomb energy of point charges (no exclusions):
    E = 1/2 sum_{i != j} q_i q_j erfc(a r_ij)/r_ij  (nearest image; erfc(a L/2) must be
        negligible)
      + (2 pi / V) sum_{k != 0, |n_i| <= kmax} exp(-k^2 / 4a^2) / k^2 |sum_j q_j e^{ik.r_j}|^2
      - a / sqrt(pi) sum_i q_i^2, all times the Coulomb constant."""
    x = np.asarray(positions, dtype=np.float64)
    q = np.asarray(charges, dtype=np.float64)
    delta = x[None, :, :] - x[:, None, :]
    delta -= box * np.round(delta / box)
    r = np.linalg.norm(delta, axis=-1)
    i, j = np.triu_indices(len(q), k=1)
    real = np.sum(q[i] * q[j] * erfc(alpha * r[i, j]) / r[i, j])
    n = np.array([v for v in itertools.product(range(-kmax, kmax + 1), repeat=3) if any(v)])
    k = 2.0 * math.pi * n / box
    k2 = np.sum(k * k, axis=1)
    phase = x @ k.T  # (atoms, kvectors)
    structure = (q[:, None] * np.exp(1j * phase)).sum(axis=0)
    volume = box**3
    recip = (2.0 * math.pi / volume) * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2
                                              * np.abs(structure) ** 2)
    self_term = -alpha / math.sqrt(math.pi) * np.sum(q * q)
    return COULOMB_CONSTANT_KCAL_MOL_A_E2 * (real + recip + self_term)
