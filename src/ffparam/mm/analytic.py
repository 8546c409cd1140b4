"""Analytic energies and forces for every term form (the fast path of
:meth:`MMEngine.compute`).

Coordinates are held as components, ``x = (x, y, z)`` each (C, N) (structure of arrays), so
dot and cross products are plain elementwise arithmetic on (C, T) arrays. Each function
returns the per-conformer energy (C,) kcal/mol and a list of (atom indices (T,),
dE/dx contribution as a 3-tuple of (C, T)) that the caller scatters into the forces in one
pass. Closed forms (tested against autograd, finite differences and OpenMM):

* distance r = |x_j - x_i|: dr/dx_j = (x_j - x_i)/r = -dr/dx_i.
* angle theta between u = x_i - x_j and v = x_k - x_j, n = u x v:
  dtheta/du = (u x n) / (|u|^2 |n|),  dtheta/dv = (n x v) / (|v|^2 |n|).
* dihedral phi with b1 = x_j - x_i, b2 = x_k - x_j, b3 = x_l - x_k, m = b1 x b2,
  n = b2 x b3 (Blondel & Karplus, J. Comput. Chem. 17, 1132 (1996)):
  dphi/dx_i = -|b2| m/|m|^2, dphi/dx_l = |b2| n/|n|^2, and with p = b1.b2/|b2|^2,
  q = b3.b2/|b2|^2: dphi/dx_j = -(1 + p) dphi/dx_i + q dphi/dx_l,
  dphi/dx_k = p dphi/dx_i - (1 + q) dphi/dx_l (the four sum to zero).
"""

from __future__ import annotations

import math

import torch

from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor
Vec = tuple[Tensor, Tensor, Tensor]
Gradients = list[tuple[Tensor, Vec]]


def gather(x: Vec, atoms: Tensor) -> Vec:
    return (x[0][:, atoms], x[1][:, atoms], x[2][:, atoms])


def sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def dot(a: Vec, b: Vec) -> Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def scale(s: Tensor, a: Vec) -> Vec:
    return (s * a[0], s * a[1], s * a[2])


def _pair_gradient(pairs: Tensor, d: Vec, de_dr_over_r: Tensor) -> Gradients:
    g = scale(de_dr_over_r, d)  # dE/dx_j
    return [(pairs[:, 1], g), (pairs[:, 0], (-g[0], -g[1], -g[2]))]


def harmonic_bonds(x: Vec, pairs: Tensor, k: Tensor, r0: Tensor,
                   s: Tensor) -> tuple[Tensor, Gradients]:
    """E = k/2 (r - r0)^2."""
    d = sub(gather(x, pairs[:, 1]), gather(x, pairs[:, 0]))
    r = torch.sqrt(dot(d, d))
    ks = k * s
    dr = r - r0
    return 0.5 * (ks * dr * dr).sum(-1), _pair_gradient(pairs, d, ks * dr / r)


def morse_bonds(x: Vec, pairs: Tensor, depth: Tensor, a: Tensor, r0: Tensor,
                s: Tensor) -> tuple[Tensor, Gradients]:
    """E = D [1 - exp(-a (r - r0))]^2."""
    d = sub(gather(x, pairs[:, 1]), gather(x, pairs[:, 0]))
    r = torch.sqrt(dot(d, d))
    e = torch.exp(-a * (r - r0))
    ds = depth * s
    return (ds * (1.0 - e) ** 2).sum(-1), _pair_gradient(pairs, d, 2.0 * ds * a * e * (1.0 - e)
                                                          / r)


def harmonic_angles(x: Vec, triples: Tensor, k: Tensor, theta0: Tensor,
                    s: Tensor) -> tuple[Tensor, Gradients]:
    """E = k/2 (theta - theta0)^2."""
    centre = gather(x, triples[:, 1])
    u = sub(gather(x, triples[:, 0]), centre)
    v = sub(gather(x, triples[:, 2]), centre)
    n = cross(u, v)
    n_len = torch.sqrt(dot(n, n))
    theta = torch.atan2(n_len, dot(u, v))
    ks = k * s
    dtheta = theta - theta0
    linear = n_len <= 1e-12
    coef = torch.where(linear, torch.zeros_like(n_len),
                       ks * dtheta / torch.where(linear, torch.ones_like(n_len), n_len))
    g_i = scale(coef / dot(u, u), cross(u, n))
    g_k = scale(coef / dot(v, v), cross(n, v))
    g_j = (-(g_i[0] + g_k[0]), -(g_i[1] + g_k[1]), -(g_i[2] + g_k[2]))
    energy = 0.5 * (ks * dtheta * dtheta).sum(-1)
    return energy, [(triples[:, 0], g_i), (triples[:, 2], g_k), (triples[:, 1], g_j)]


def dihedrals_with_gradients(x: Vec, quads: Tensor) -> tuple[Tensor, list[Vec]]:
    """phi (C, Q) radians and dphi/dx of the four atoms (each a Vec of (C, Q))."""
    p0, p1, p2, p3 = (gather(x, quads[:, a]) for a in range(4))
    b1, b2, b3 = sub(p1, p0), sub(p2, p1), sub(p3, p2)
    m = cross(b1, b2)
    n = cross(b2, b3)
    b2_sq = dot(b2, b2)
    b2_len = torch.sqrt(b2_sq)
    phi = torch.atan2(b2_len * dot(b1, n), dot(m, n))
    g_i = scale(-b2_len / dot(m, m).clamp_min(1e-24), m)
    g_l = scale(b2_len / dot(n, n).clamp_min(1e-24), n)
    p = dot(b1, b2) / b2_sq
    q = dot(b3, b2) / b2_sq
    g_j = tuple(-(1.0 + p) * gi + q * gl for gi, gl in zip(g_i, g_l))
    g_k = tuple(p * gi - (1.0 + q) * gl for gi, gl in zip(g_i, g_l))
    return phi, [g_i, g_j, g_k, g_l]


def dihedral_gradients(quads: Tensor, de_dphi: Tensor, grads: list[Vec]) -> Gradients:
    return [(quads[:, a], scale(de_dphi, grads[a])) for a in range(4)]


def periodic_energy(phi: Tensor, k: Tensor, periodicity: Tensor, phase: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """E = k (1 + cos(n phi - phase)) per row and dE/dphi, rows (C, R)."""
    arg = periodicity * phi - phase
    return k * (1.0 + torch.cos(arg)), -k * periodicity * torch.sin(arg)


def harmonic_improper_energy(phi: Tensor, k: Tensor, phi0: Tensor) -> tuple[Tensor, Tensor]:
    """E = k/2 dphi^2 with dphi wrapped into (-pi, pi], and dE/dphi."""
    dphi = torch.remainder(phi - phi0 + math.pi, 2.0 * math.pi) - math.pi
    return 0.5 * k * dphi * dphi, k * dphi


def nonbonded(x: Vec, pairs: Tensor, charge_product: Tensor, epsilon: Tensor,
              sigma_sq: Tensor) -> tuple[Tensor, Tensor, Gradients]:
    """Coulomb 332.0637 qq/r and LJ 4 eps [(s/r)^12 - (s/r)^6] with per-pair (mixed,
    scaled) parameters; ``sigma_sq`` = sigma^2. Returns (E_vdW, E_elec, gradients)."""
    d = sub(gather(x, pairs[:, 1]), gather(x, pairs[:, 0]))
    inv_r2 = 1.0 / dot(d, d)
    s6 = (sigma_sq * inv_r2) ** 3
    s12 = s6 * s6
    e_lj = (4.0 * epsilon) * (s12 - s6)
    e_el = (COULOMB_CONSTANT_KCAL_MOL_A_E2 * charge_product) * torch.sqrt(inv_r2)
    de_dr_over_r = -((24.0 * epsilon) * (2.0 * s12 - s6) + e_el) * inv_r2
    return e_lj.sum(-1), e_el.sum(-1), _pair_gradient(pairs, d, de_dr_over_r)


def scatter_forces(n_atoms: int, n_conformers: int, gradients: Gradients,
                   like: Tensor) -> Tensor:
    """Sum dE/dx contributions per atom in one pass; returns forces (C, N, 3) = -dE/dx."""
    if not gradients:
        return like.new_zeros((n_conformers, n_atoms, 3))
    atoms = torch.cat([a for a, _ in gradients])
    comps = [torch.cat([g[c] for _, g in gradients], dim=1) for c in range(3)]
    stacked = torch.stack(comps)  # (3, C, S)
    out = like.new_zeros((3, n_conformers, n_atoms))
    out.index_add_(2, atoms, stacked)
    return -out.permute(1, 2, 0)
