"""Internal coordinates and the nonbonded forms as pure functions on tensors (the bonded
functional forms are the registered :mod:`ffparam.forms`).

Every function takes geometry tensors batched over conformers and term parameters batched
over terms, and returns values (n_conformers, n_terms): Angstrom, radians, kcal/mol, e.
No Python loops; everything broadcasts.
"""

from __future__ import annotations

import torch

from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor


# ---------------------------------------------------------------- geometry
def distances(positions: Tensor, pairs: Tensor) -> Tensor:
    """|r_j - r_i| for index pairs: positions (C, N, 3), pairs (T, 2) -> (C, T) Angstrom."""
    delta = positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]]
    return torch.linalg.vector_norm(delta, dim=-1)


def angles(positions: Tensor, triples: Tensor) -> Tensor:
    """Angle i-j-k at apex j, (C, T) radians, via atan2(|u x v|, u.v) (stable near 0, pi)."""
    u = positions[:, triples[:, 0]] - positions[:, triples[:, 1]]
    v = positions[:, triples[:, 2]] - positions[:, triples[:, 1]]
    cross = torch.linalg.vector_norm(torch.cross(u, v, dim=-1), dim=-1)
    return torch.atan2(cross, (u * v).sum(-1))


def dihedrals(positions: Tensor, quads: Tensor) -> Tensor:
    """Dihedral i-j-k-l in (-pi, pi], (C, T) radians, IUPAC sign (same as OpenMM).

    phi = atan2(|b2| b1.(b2 x b3), (b1 x b2).(b2 x b3)), b1 = r_j - r_i, b2 = r_k - r_j,
    b3 = r_l - r_k.
    """
    p0, p1, p2, p3 = (positions[:, quads[:, a]] for a in range(4))
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1 = torch.cross(b1, b2, dim=-1)
    n2 = torch.cross(b2, b3, dim=-1)
    y = torch.linalg.vector_norm(b2, dim=-1) * (b1 * n2).sum(-1)
    x = (n1 * n2).sum(-1)
    return torch.atan2(y, x)


GEOMETRY = {"distance": distances, "angle": angles, "dihedral": dihedrals}
"""Internal coordinate of :data:`ffparam.forms.GEOMETRIES` -> its function (positions
(C, N, 3), atom rows (T, n)) -> (C, T)."""


# ---------------------------------------------------------------- nonbonded forms
def coulomb(r: Tensor, charge_product: Tensor) -> Tensor:
    """E = 332.0637 q_i q_j / r (kcal/mol, e, Angstrom)."""
    return COULOMB_CONSTANT_KCAL_MOL_A_E2 * charge_product / r


def lennard_jones_sigma(r: Tensor, epsilon: Tensor, sigma: Tensor) -> Tensor:
    """E = 4 eps [(sigma/r)^12 - (sigma/r)^6]; sigma = zero-crossing distance."""
    s6 = (sigma / r) ** 6
    return 4.0 * epsilon * (s6 * s6 - s6)


def lennard_jones_rmin(r: Tensor, epsilon: Tensor, rmin: Tensor) -> Tensor:
    """E = eps [(rmin/r)^12 - 2 (rmin/r)^6]; rmin = 2^(1/6) sigma = minimum position."""
    m6 = (rmin / r) ** 6
    return epsilon * (m6 * m6 - 2.0 * m6)


def safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with a zero (not infinite) derivative at 0, for epsilon mixing of zero-depth
    atoms (e.g. hydroxyl hydrogens)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def combine_lj(
    sigma_i: Tensor, sigma_j: Tensor, eps_i: Tensor, eps_j: Tensor, rule: str
) -> tuple[Tensor, Tensor]:
    """Pair sigma and epsilon from per-atom values.

    ``lorentz-berthelot``: sigma_ij = (sigma_i + sigma_j)/2, eps_ij = sqrt(eps_i eps_j);
    ``geometric``: both geometric means (OPLS).
    """
    eps = safe_sqrt(eps_i * eps_j)
    if rule == "lorentz-berthelot":
        return 0.5 * (sigma_i + sigma_j), eps
    if rule == "geometric":
        return safe_sqrt(sigma_i * sigma_j), eps
    raise ValueError(f"unknown combining rule {rule!r}")
