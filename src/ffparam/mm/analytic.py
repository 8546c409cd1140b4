"""Closed-form energies and forces of every registered functional form: the pure-PyTorch
fast path of :meth:`MMEngine.compute` (and the reference of the optional compiled kernel,
:mod:`ffparam.mm.kernel`).

All terms of a system are packed once per parameter vector (:class:`Packed`): one index of
every atom slot that any term reads (angle atoms, unique dihedral quads, then the second
and first atoms of every distance term and nonbonded pair). Positions are laid out
(N, 3, C), conformers last, so one gather of whole rows per chunk gives the coordinates of
every slot as an (S, 3, C) tensor, and each internal coordinate is computed once for every
term that reads it, whatever its form: one pass for the vectors and squared lengths of all
two-atom rows (distances of bonds, Morse, Urey-Bradley, ... and nonbonded pairs), one for
all angles, one for all unique dihedrals. Each form (:mod:`ffparam.forms`) then turns its
rows of the coordinate into energies and dE/d(coordinate)
(:meth:`Form.energy_and_derivative`); the chain rule through the coordinate's gradient is
again one pass per coordinate kind. Each kind writes its dE/dx contributions into its own
block of one gradient buffer and its per-row energies into rows of one (R, C) buffer; one
``index_add_`` turns the gradient buffer into dE/dx per atom (a second one, with factor
-1, adds the first atoms of two-atom rows: dE/dx_i = -dE/dx_j, never written out) and
another the row energies into per-term energies.
Closed forms (tested against autograd, finite differences and OpenMM):

* distance r = |x_j - x_i|: dr/dx_j = (x_j - x_i)/r = -dr/dx_i.
* angle theta between u = x_i - x_j and v = x_k - x_j, n = u x v:
  dtheta/du = (u x n) / (|u|^2 |n|),  dtheta/dv = (n x v) / (|v|^2 |n|).
* dihedral phi with b1 = x_j - x_i, b2 = x_k - x_j, b3 = x_l - x_k, m = b1 x b2,
  n = b2 x b3 (Blondel & Karplus, J. Comput. Chem. 17, 1132 (1996)):
  dphi/dx_i = -|b2| m/|m|^2, dphi/dx_l = |b2| n/|n|^2, and with p = b1.b2/|b2|^2,
  q = b3.b2/|b2|^2: dphi/dx_j = -(1 + p) dphi/dx_i + q dphi/dx_l,
  dphi/dx_k = p dphi/dx_i - (1 + q) dphi/dx_l (the four sum to zero).
* Lennard-Jones 4 eps [(s/r)^12 - (s/r)^6] = A r^-12 - B r^-6 with A = 4 eps s^12,
  B = 4 eps s^6, and Coulomb qq/r, in powers of r^-2: (dE/dr)/r = -(r^-6 (12 A r^-6 - 6 B)
  + qq/r) r^-2.

Units: Angstrom, radians, kcal/mol, e.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ffparam.forms import Form

Tensor = torch.Tensor
Vec = tuple[Tensor, Tensor, Tensor]
Gradients = list[tuple[Tensor, Vec]]


@dataclass
class FormRows:
    """The rows of one form on one internal coordinate.

    ``rows``: a slice of the coordinate's rows (distances, angles), or for dihedrals the
    (n,) unique quad of every row; ``params``: field -> (n, 1) column, internal units,
    energy scale folded into the scaled field; ``energy_rows``: its rows of the (R, C)
    energy buffer.
    """

    form: Form
    rows: slice | Tensor
    params: dict[str, Tensor]
    energy_rows: slice


@dataclass
class Packed:
    """Every term of a system with its parameters, laid out for :func:`evaluate`.

    ``index`` (S,) is the atom of every gathered slot; the ``*_slots`` are slices of it
    (e.g. ``angle_slots = (i, j, k)``). The last slots are the two-atom rows: ``n_distance``
    distance terms then the nonbonded pairs, their second atoms ``two_atom_j`` then, in the
    same order, their first atoms ``index[two_atom_j.stop:]``; the gradient buffer has
    ``two_atom_j.stop`` rows (none for first atoms). ``forms``: coordinate (``distance``,
    ``angle``, ``dihedral``) -> the :class:`FormRows` reading it. ``pair_a``, ``pair_b``
    are A = 4 eps sigma^12, B = 4 eps sigma^6 (kcal/mol Angstrom^12, ^6) and ``pair_qq``
    332.0637 q_i q_j scale (kcal/mol Angstrom), (n_pairs, 1); ``pair_rows``: the vdW and
    electrostatics rows of the energy buffer. ``row_term`` (R,) is the term (column of the
    per-term energies) each energy row adds to.
    """

    index: Tensor
    angle_slots: tuple[slice, slice, slice]
    quad_slots: tuple[slice, slice, slice, slice]
    two_atom_j: slice
    n_distance: int
    pair_qq: Tensor
    pair_a: Tensor
    pair_b: Tensor
    pair_rows: tuple[slice, slice]
    row_term: Tensor
    forms: dict[str, list[FormRows]] = field(default_factory=dict)


def evaluate(packed: Packed, pos: Tensor, n_terms: int) -> tuple[Tensor, Tensor]:
    """Per-term energies (n_terms, C) kcal/mol and dE/dx (N, 3, C) kcal/mol/Angstrom of a
    chunk of positions ``pos`` (N, 3, C) Angstrom (conformers last)."""
    x = pos.index_select(0, packed.index)  # (S, 3, C): every slot's coordinates at once
    j = packed.two_atom_j
    rows = j.stop  # slots with a gradient row; the first atoms of two-atom rows follow
    grad = x.new_empty((rows, 3, x.shape[2]))
    energy = x.new_empty((len(packed.row_term), x.shape[2]))
    d = x[j] - x[rows:]  # x_j - x_i of every distance term and pair
    r_sq = _dot(d, d)
    n = packed.n_distance
    _distances(d[:n], r_sq[:n], grad[j.start:j.start + n], energy, packed)
    _angles(x, grad, energy, packed)
    _dihedrals(x, grad, energy, packed)
    _pairs(d[n:], r_sq[n:], grad[j.start + n:rows], energy, packed)
    slots = energy.new_zeros((n_terms, x.shape[2])).index_add_(0, packed.row_term, energy)
    forces = pos.new_zeros(pos.shape).index_add_(0, packed.index[:rows], grad)
    return slots, forces.index_add_(0, packed.index[rows:], grad[j], alpha=-1.0)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.linalg.vecdot(a, b, dim=1)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """a x b over dim 1 of (n, 3, C): component products written in place (4x faster
    than ``torch.linalg.cross`` on this strided layout, same arithmetic)."""
    out = torch.empty_like(a)
    a0, a1, a2 = a.unbind(1)
    b0, b1, b2 = b.unbind(1)
    torch.mul(a1, b2, out=out[:, 0]).sub_(a2 * b1)
    torch.mul(a2, b0, out=out[:, 1]).sub_(a0 * b2)
    torch.mul(a0, b1, out=out[:, 2]).sub_(a1 * b0)
    return out


def _empty(slots: tuple[slice, ...]) -> bool:
    return slots[0].stop == slots[0].start


def _form_derivatives(coordinate: Tensor, blocks: list[FormRows], energy: Tensor) -> Tensor:
    """dE/d(coordinate) of every row (shaped like ``coordinate``), each form's energies
    written into its rows of ``energy``."""
    if len(blocks) == 1 and isinstance(blocks[0].rows, slice):  # one form: no copies
        block = blocks[0]
        energy[block.energy_rows], derivative = block.form.energy_and_derivative(
            coordinate, block.params)
        return derivative
    derivative = torch.zeros_like(coordinate)
    for block in blocks:
        if isinstance(block.rows, slice):
            energy[block.energy_rows], derivative[block.rows] = \
                block.form.energy_and_derivative(coordinate[block.rows], block.params)
        else:  # dihedral rows on shared quads: sum per quad
            energy[block.energy_rows], d = block.form.energy_and_derivative(
                coordinate[block.rows], block.params)
            derivative.index_add_(0, block.rows, d)
    return derivative


def _distances(d: Tensor, r_sq: Tensor, grad_j: Tensor, energy: Tensor,
               packed: Packed) -> None:
    """Every distance form at once from d = x_j - x_i and |d|^2: r = |d|,
    dE/dx_j = dE/dr d/r written into ``grad_j`` (dE/dx_i = -dE/dx_j)."""
    if not len(d):
        return
    r = r_sq.sqrt()
    de_dr = _form_derivatives(r, packed.forms["distance"], energy)
    torch.mul(d, (de_dr / r).unsqueeze(1), out=grad_j)


def _angles(x: Tensor, grad: Tensor, energy: Tensor, packed: Packed) -> None:
    """Every angle form at once; a linear angle (|u x v| = 0) gets no force."""
    si, sj, sk = packed.angle_slots
    if _empty(packed.angle_slots):
        return
    centre = x[sj]
    u, v = x[si] - centre, x[sk] - centre
    n = _cross(u, v)
    n_len = _dot(n, n).sqrt_()
    theta = torch.atan2(n_len, _dot(u, v))
    de_dtheta = _form_derivatives(theta, packed.forms["angle"], energy)
    linear = n_len <= 1e-12
    coef = torch.where(linear, 0.0, de_dtheta / torch.where(linear, 1.0, n_len))
    torch.mul(_cross(u, n), (coef / _dot(u, u)).unsqueeze(1), out=grad[si])
    torch.mul(_cross(n, v), (coef / _dot(v, v)).unsqueeze(1), out=grad[sk])
    torch.add(grad[si], grad[sk], out=grad[sj]).neg_()


def _dihedrals(x: Tensor, grad: Tensor, energy: Tensor, packed: Packed) -> None:
    """Every dihedral form at once, on the unique quads (phi computed once per quad)."""
    s0, s1, s2, s3 = packed.quad_slots
    if _empty(packed.quad_slots):
        return
    p0, p1, p2, p3 = x[s0], x[s1], x[s2], x[s3]
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    m, n = _cross(b1, b2), _cross(b2, b3)
    b2_sq = _dot(b2, b2)
    b2_len = b2_sq.sqrt()
    phi = torch.atan2(b2_len * _dot(b1, n), _dot(m, n))
    de_dphi = _form_derivatives(phi, packed.forms["dihedral"], energy)
    g_i, g_l = grad[s0], grad[s3]
    torch.mul(m, (de_dphi * -b2_len / _dot(m, m).clamp_min(1e-24)).unsqueeze(1), out=g_i)
    torch.mul(n, (de_dphi * b2_len / _dot(n, n).clamp_min(1e-24)).unsqueeze(1), out=g_l)
    p = _dot(b1, b2).div_(b2_sq).unsqueeze(1)
    q = _dot(b3, b2).div_(b2_sq).unsqueeze(1)
    torch.mul(g_i, -(1.0 + p), out=grad[s1]).addcmul_(g_l, q)
    torch.mul(g_i, p, out=grad[s2]).addcmul_(g_l, -(1.0 + q))


def _pairs(d: Tensor, r_sq: Tensor, grad_j: Tensor, energy: Tensor, packed: Packed) -> None:
    """Lennard-Jones A r^-12 - B r^-6 and Coulomb qq/r per pair, in powers of r^-2, from
    d = x_j - x_i and |d|^2; dE/dx_j into ``grad_j``."""
    if not len(d):
        return
    inv_r2 = r_sq.reciprocal()
    inv_r6 = inv_r2 * inv_r2 * inv_r2
    vdw_rows, elec_rows = packed.pair_rows
    a_r6 = packed.pair_a * inv_r6
    torch.mul(inv_r6, a_r6 - packed.pair_b, out=energy[vdw_rows])
    e_el = torch.mul(inv_r2.sqrt(), packed.pair_qq, out=energy[elec_rows])
    coef = (12.0 * a_r6).sub_(6.0 * packed.pair_b).mul_(inv_r6).add_(e_el).mul_(inv_r2)
    torch.mul(d, coef.neg_().unsqueeze(1), out=grad_j)


# ------------------------------------------------------------------------------------------
# Dihedrals with gradients on (x, y, z) component tuples of (C, N) arrays, for callers that
# add their own dihedral terms (the restraints of ffparam.fit.relax).


def _components(x: Vec, atoms: Tensor) -> Vec:
    return (x[0][:, atoms], x[1][:, atoms], x[2][:, atoms])


def dihedrals_with_gradients(x: Vec, quads: Tensor) -> tuple[Tensor, list[Vec]]:
    """phi (C, Q) radians and dphi/dx of the four atoms (each a Vec of (C, Q)) from
    positions as components ``x = (x, y, z)``, each (C, N) Angstrom."""
    stacked = [torch.stack(_components(x, quads[:, a])) for a in range(4)]  # (3, C, Q)
    b1, b2, b3 = stacked[1] - stacked[0], stacked[2] - stacked[1], stacked[3] - stacked[2]
    vecdot = lambda a, b: torch.linalg.vecdot(a, b, dim=0)  # noqa: E731
    m, n = torch.linalg.cross(b1, b2, dim=0), torch.linalg.cross(b2, b3, dim=0)
    b2_sq = vecdot(b2, b2)
    b2_len = torch.sqrt(b2_sq)
    phi = torch.atan2(b2_len * vecdot(b1, n), vecdot(m, n))
    g_i = m * (-b2_len / vecdot(m, m).clamp_min(1e-24))
    g_l = n * (b2_len / vecdot(n, n).clamp_min(1e-24))
    p = vecdot(b1, b2) / b2_sq
    q = vecdot(b3, b2) / b2_sq
    g_j = -(1.0 + p) * g_i + q * g_l
    g_k = p * g_i - (1.0 + q) * g_l
    return phi, [tuple(g.unbind(0)) for g in (g_i, g_j, g_k, g_l)]


def dihedral_gradients(quads: Tensor, de_dphi: Tensor, grads: list[Vec]) -> Gradients:
    """(atom indices, dE/dx contribution) per quad column, given dE/dphi (C, Q)."""
    return [(quads[:, a], tuple(de_dphi * c for c in grads[a])) for a in range(4)]
