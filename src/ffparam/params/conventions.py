"""Conversions between parameter conventions, applied only at the edges.

Internal conventions (what :class:`~ffparam.params.ParameterSet` stores):

* harmonic bond / angle / Urey-Bradley: E = k/2 (x - x0)^2 (OpenMM, SMIRNOFF);
  AMBER files and many texts write E = K (x - x0)^2, so K = k/2.
* Lennard-Jones: E = 4 eps [(sigma/r)^12 - (sigma/r)^6] with sigma the zero crossing;
  the rmin form E = eps [(rmin/r)^12 - 2 (rmin/r)^6] has rmin = 2^(1/6) sigma, and AMBER
  stores rmin_half = rmin/2 per atom type.
* periodic torsion: E = k (1 + cos(n phi - phase)); SMIRNOFF/AMBER ``idivf`` divides k
  (internal k is the per-term amplitude, k_file / idivf).
"""

from __future__ import annotations

from ffparam.errors import ConventionError
from ffparam.units import RMIN_PER_SIGMA

HARMONIC_CONVENTIONS = ("k/2", "K")
LJ_SIZE_CONVENTIONS = ("sigma", "rmin", "rmin_half")


def harmonic_to_internal(value: float, convention: str) -> float:
    """Force constant in ``convention`` -> internal k of E = k/2 (x-x0)^2.

    ``"k/2"``: already internal; ``"K"``: AMBER E = K (x-x0)^2, so k = 2 K.
    """
    if convention == "k/2":
        return value
    if convention == "K":
        return 2.0 * value
    raise ConventionError(f"unknown harmonic convention {convention!r}; use one of "
                          f"{HARMONIC_CONVENTIONS}")


def harmonic_from_internal(value: float, convention: str) -> float:
    """Internal k (E = k/2 (x-x0)^2) -> force constant in ``convention``."""
    if convention == "k/2":
        return value
    if convention == "K":
        return 0.5 * value
    raise ConventionError(f"unknown harmonic convention {convention!r}; use one of "
                          f"{HARMONIC_CONVENTIONS}")


def lj_size_to_sigma(value: float, convention: str) -> float:
    """LJ size in ``convention`` (Angstrom) -> sigma (Angstrom).

    sigma = rmin / 2^(1/6) = 2 rmin_half / 2^(1/6).
    """
    if convention == "sigma":
        return value
    if convention == "rmin":
        return value / RMIN_PER_SIGMA
    if convention == "rmin_half":
        return 2.0 * value / RMIN_PER_SIGMA
    raise ConventionError(f"unknown LJ size convention {convention!r}; use one of "
                          f"{LJ_SIZE_CONVENTIONS}")


def lj_size_from_sigma(sigma: float, convention: str) -> float:
    """sigma (Angstrom) -> LJ size in ``convention`` (Angstrom)."""
    if convention == "sigma":
        return sigma
    if convention == "rmin":
        return sigma * RMIN_PER_SIGMA
    if convention == "rmin_half":
        return 0.5 * sigma * RMIN_PER_SIGMA
    raise ConventionError(f"unknown LJ size convention {convention!r}; use one of "
                          f"{LJ_SIZE_CONVENTIONS}")


def torsion_k_to_internal(k_file: float, idivf: float) -> float:
    """Torsion barrier from a file with divisor ``idivf`` -> internal per-term k = k/idivf."""
    if idivf <= 0:
        raise ConventionError(f"idivf must be positive, got {idivf}")
    return k_file / idivf


def torsion_k_from_internal(k: float, idivf: float = 1.0) -> float:
    """Internal per-term k -> file value for divisor ``idivf`` (k_file = k * idivf)."""
    if idivf <= 0:
        raise ConventionError(f"idivf must be positive, got {idivf}")
    return k * idivf
