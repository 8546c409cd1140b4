"""Static dielectric constant of a liquid box from its dipole fluctuations.

    eps = eps_inf + (<M^2> - <M>^2) / (3 eps_0 <V> k_B T)            (SI)
        = eps_inf + 4 pi (<M^2> - <M>^2) / (3 <V> k_B T)             (Gaussian)

with M the box dipole sum_i q_i r_i over every charge site (atom cores and Drude
particles, molecules whole), V the box volume and T the temperature. The formula is the
one for Ewald sums with conducting ("tinfoil") boundary conditions, which is what OpenMM's
PME uses. Computed here in SI (M in C m from e Angstrom, V in m^3, k_B in J/K, eps_0 in
F/m); the Gaussian form is the same number (tests check both).

eps_inf, the high-frequency (electronic) part: 1 for fixed charges; for a polarizable
model with explicit Drude dipoles in M (Lamoureux, MacKerell, Roux 2003; Anisimov et al.
2005) it comes from the molecular polarizability alpha (Angstrom^3, a polarizability
volume, i.e. Gaussian alpha) and the number density n (molecules per Angstrom^3) by
Clausius-Mossotti: (eps_inf - 1) / (eps_inf + 2) = 4 pi n alpha / 3.

Error: blocked jackknife over contiguous blocks of the frame series
(:func:`ffparam.liquid.statistics.jackknife_error`), which keeps the correlation inside
each block; with M decorrelating slowly, a short run gives a large error (stated, not
hidden).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import constants

from ffparam.errors import InputError
from ffparam.liquid.statistics import jackknife_error

E_ANGSTROM_IN_C_M = constants.e * 1e-10
"""One e*Angstrom in Coulomb metre."""
ANGSTROM3_IN_M3 = 1e-30


@dataclass(frozen=True)
class DielectricEstimate:
    """A static dielectric constant and its parts.

    Attributes:
        value, error: eps (dimensionless) and its standard error (blocked jackknife).
        eps_inf: the electronic part used (1 for fixed charges).
        fluctuation, fluctuation_error: the dipole-fluctuation term and its error.
        n_samples: frames used; n_blocks: jackknife blocks.
    """

    value: float
    error: float
    eps_inf: float
    fluctuation: float
    fluctuation_error: float
    n_samples: int
    n_blocks: int

    def to_json(self) -> dict:
        return {"value": self.value, "error": self.error, "eps_inf": self.eps_inf,
                "fluctuation": self.fluctuation, "fluctuation_error": self.fluctuation_error,
                "n_samples": self.n_samples, "n_blocks": self.n_blocks}


def box_dipoles(positions_a: np.ndarray, charges_e: np.ndarray) -> np.ndarray:
    """Box dipole sum_i q_i r_i (n_frames, 3) in e*Angstrom of frames (n_frames, n_sites,
    3) Angstrom with molecules whole (unwrapped), charges (n_sites,) e."""
    xyz = np.asarray(positions_a, dtype=np.float64)
    q = np.asarray(charges_e, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[1] != len(q) or xyz.shape[2] != 3:
        raise InputError(f"positions of shape {xyz.shape} do not match {len(q)} charges")
    if abs(q.sum()) > 1e-6:
        raise InputError(f"the box dipole needs a neutral box (total charge {q.sum():.3g} e)")
    return np.einsum("fik,i->fk", xyz, q)


def fluctuation_term(dipoles_e_a: np.ndarray, volumes_a3: np.ndarray,
                     temperature_k: float) -> float:
    """(<M^2> - <M>^2) / (3 eps_0 <V> k_B T), dimensionless (SI; module docstring), from
    box dipoles (n, 3) e*Angstrom and volumes (n,) Angstrom^3."""
    m = np.asarray(dipoles_e_a, dtype=np.float64) * E_ANGSTROM_IN_C_M
    variance = float(np.mean(np.sum(m * m, axis=1)) - np.sum(m.mean(axis=0) ** 2))
    volume = float(np.mean(volumes_a3)) * ANGSTROM3_IN_M3
    return variance / (3.0 * constants.epsilon_0 * volume * constants.k * temperature_k)


def clausius_mossotti(alpha_a3: float, number_density_per_a3: float) -> float:
    """eps_inf from (eps - 1)/(eps + 2) = 4 pi n alpha / 3 (alpha a polarizability volume
    in Angstrom^3, n molecules per Angstrom^3); InputError beyond the catastrophe
    (4 pi n alpha / 3 >= 1)."""
    if alpha_a3 < 0 or number_density_per_a3 < 0:
        raise InputError("polarizability and number density must not be negative")
    x = 4.0 * math.pi * number_density_per_a3 * alpha_a3 / 3.0
    if x >= 1.0:
        raise InputError(f"4 pi n alpha / 3 = {x:.3f} >= 1: Clausius-Mossotti diverges "
                         "(polarization catastrophe)")
    return (1.0 + 2.0 * x) / (1.0 - x)


def dielectric_constant(dipoles_e_a: np.ndarray, volumes_a3: np.ndarray, temperature_k: float,
                        eps_inf: float = 1.0, n_blocks: int = 10) -> DielectricEstimate:
    """eps = eps_inf + :func:`fluctuation_term` with its blocked-jackknife error over
    ``n_blocks`` contiguous blocks (frames in time order)."""
    dipoles = np.asarray(dipoles_e_a, dtype=np.float64)
    volumes = np.asarray(volumes_a3, dtype=np.float64)
    if len(dipoles) != len(volumes):
        raise InputError(f"{len(dipoles)} dipoles but {len(volumes)} volumes")
    if not temperature_k > 0:
        raise InputError(f"temperature must be positive, got {temperature_k} K")
    term = fluctuation_term(dipoles, volumes, temperature_k)
    error = float(jackknife_error(lambda m, v: fluctuation_term(m, v, temperature_k),
                                  (dipoles, volumes), n_blocks))
    blocks = min(n_blocks, len(dipoles) // 2)
    return DielectricEstimate(eps_inf + term, error, eps_inf, term, error, len(dipoles), blocks)
