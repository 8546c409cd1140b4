"""Derivative kernels for Gaussian process regression on energies and forces.

A molecule of n atoms (fixed composition and atom order) is described by the vector of its
D = n(n-1)/2 inverse interatomic distances x(R) (1/Angstrom), as in sGDML (Chmiela et al.,
Nat. Commun. 9, 3887 (2018)). The prior on the energy is a Matern-5/2 process in x:

    k(x, x') = g(s),  s = |x - x'|^2 / l^2,  g(s) = (1 + u + u^2/3) exp(-u),  u = sqrt(5 s)
    g'(s) = -(5/6)(1 + u) exp(-u),   g''(s) = (25/12) exp(-u)

Observations of a frame are its energy E and its gradient G = dE/dR = -F (3n values).
With J = dx/dR (D x 3n) and d = x_a - x_b the joint covariances are

    cov(E_a, E_b) = g
    cov(E_a, G_b) = -2 g'/l^2  d^T J_b
    cov(G_a, E_b) = +2 g'/l^2  J_a^T d
    cov(G_a, G_b) = -2 g'/l^2  J_a^T J_b  -  4 g''/l^4  (J_a^T d)(J_b^T d)^T

Matrices are laid out in blocks: the N energies first, then the N gradients (frame-major,
atom, then x/y/z). Optionally the kernel is symmetrized over a group of atom permutations
P (molecular graph automorphisms): k_sym(a, b) = mean_p k(a, p(b)), which keeps it symmetric
and makes the model invariant under those permutations.
"""

from __future__ import annotations

import torch


def pair_indices(n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Atom pairs (i < j) in row-major order, the order of the descriptor components."""
    i, j = torch.triu_indices(n_atoms, n_atoms, offset=1)
    return i, j


def inverse_distances(positions: torch.Tensor) -> torch.Tensor:
    """(B, D) inverse distances 1/r_ij (1/Angstrom) from (B, n, 3) positions (Angstrom)."""
    i, j = pair_indices(positions.shape[1])
    return 1.0 / (positions[:, i] - positions[:, j]).norm(dim=2)


def inverse_distance_jacobian(positions: torch.Tensor) -> torch.Tensor:
    """(B, D, 3n) derivatives of 1/r_ij with respect to the Cartesian positions.

    d(1/r_ij)/dR_i = -(R_i - R_j)/r_ij^3 and d(1/r_ij)/dR_j = +(R_i - R_j)/r_ij^3.
    """
    n_frames, n_atoms, _ = positions.shape
    i, j = pair_indices(n_atoms)
    diff = positions[:, i] - positions[:, j]  # (B, D, 3)
    block = diff / diff.norm(dim=2, keepdim=True) ** 3
    jac = positions.new_zeros(n_frames, len(i), n_atoms, 3)
    rows = torch.arange(len(i))
    jac[:, rows, i] = -block
    jac[:, rows, j] = block
    return jac.reshape(n_frames, len(i), 3 * n_atoms)


def matern52(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """g(s), g'(s), g''(s) of the Matern-5/2 kernel in s = |x - x'|^2 / l^2.

    u carries a 1e-30 floor under the square root so that derivatives of these values
    with respect to descriptor weights stay finite at s = 0 (where ds/dw = 0 exactly);
    the values change by < 1e-29.
    """
    u = torch.sqrt(5.0 * torch.clamp(s, min=0.0) + 1e-30)
    e = torch.exp(-u)
    return (1.0 + u + u * u / 3.0) * e, -(5.0 / 6.0) * (1.0 + u) * e, (25.0 / 12.0) * e


class _MaternDerivative(torch.autograd.Function):
    """g(s) (``order`` 0) or g'(s) (``order`` 1) with the analytic derivative g'(s) or
    g''(s): finite at s = 0, unlike autograd's through the square root; g's derivative is
    itself differentiable (twice-differentiable overall)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, order: int) -> torch.Tensor:
        ctx.save_for_backward(s)
        ctx.order = order
        return matern52(s)[order]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (s,) = ctx.saved_tensors
        slope = _MaternDerivative.apply(s, 1) if ctx.order == 0 else matern52(s)[2]
        return grad * slope, None


def matern52_differentiable(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """g(s), g'(s) with autograd derivatives that stay finite at s = 0."""
    return _MaternDerivative.apply(s, 0), _MaternDerivative.apply(s, 1)


def joint_kernel(
    xa: torch.Tensor, ja: torch.Tensor, xb: torch.Tensor, jb: torch.Tensor, length: float
) -> torch.Tensor:
    """Covariance of [energies, gradients] of frames a with those of frames b.

    Args:
        xa: (Na, D) descriptors; ja: (Na, D, G) Jacobians, G = 3n.
        xb: (Nb, D); jb: (Nb, D, G).
        length: length scale l (1/Angstrom, the units of x).

    Returns:
        (Na (1 + G), Nb (1 + G)) kernel matrix with unit signal variance.
    """
    blocks = _new_blocks(xa.shape[0], xb.shape[0], ja.shape[2], xa.dtype)
    _add_joint_kernel(blocks, xa, ja, xb, jb, length, 1.0)
    return _assemble(blocks)


def _new_blocks(na: int, nb: int, n_grad: int, dtype: torch.dtype,
                differentiable: bool = False) -> list[torch.Tensor]:
    """A zero kernel matrix and views of its EE, EG, GE, GG blocks (no copies later).

    ``differentiable``: the matrix is a non-leaf of the autograd graph, so that blocks
    added in place stay differentiable (descriptor-weight learning).
    """
    out = torch.zeros(na * (1 + n_grad), nb * (1 + n_grad), dtype=dtype,
                      requires_grad=differentiable)
    if differentiable:
        out = out.clone()
    ee = out[:na, :nb]
    eg = out[:na, nb:].unflatten(1, (nb, n_grad))
    ge = out[na:, :nb].unflatten(0, (na, n_grad))
    gg = out[na:, nb:].unflatten(0, (na, n_grad)).unflatten(2, (nb, n_grad))
    return [out, ee, eg, ge, gg]


def _assemble(blocks: list[torch.Tensor]) -> torch.Tensor:
    return blocks[0]


def _add_joint_kernel(blocks, xa, ja, xb, jb, length: float, weight: float) -> None:
    """Add ``weight`` times the joint kernel blocks (EE, EG, GE, GG) in place."""
    _, ee, eg, ge, gg = blocks
    na, nb, n_grad = xa.shape[0], xb.shape[0], ja.shape[2]
    l2 = length * length
    sq = (xa * xa).sum(1, keepdim=True) - 2.0 * xa @ xb.T + (xb * xb).sum(1)
    g0, g1, g2 = matern52(sq / l2)
    c1 = (-2.0 * weight / l2) * g1  # coefficient of J_a^T J_b, and -/+ of the EG/GE blocks
    c2 = (-4.0 * weight / (l2 * l2)) * g2
    ja_xa = torch.einsum("adg,ad->ag", ja, xa)
    jb_xb = torch.einsum("bdg,bd->bg", jb, xb)
    ja_d = ja_xa.unsqueeze(1) - torch.einsum("adg,bd->abg", ja, xb)  # J_a^T (x_a - x_b)
    jb_d = torch.einsum("bdg,ad->abg", jb, xa) - jb_xb.unsqueeze(0)  # J_b^T (x_a - x_b)
    ee.add_(g0, alpha=weight)
    eg.addcmul_(c1.unsqueeze(2), jb_d)
    ge.addcmul_(-c1.unsqueeze(1), ja_d.permute(0, 2, 1))
    jj = ja.permute(0, 2, 1).reshape(na * n_grad, -1) @ jb.permute(1, 0, 2).reshape(-1, nb * n_grad)
    gg.addcmul_(jj.view(na, n_grad, nb, n_grad), c1[:, None, :, None])
    del jj
    gg.addcmul_((ja_d * c2.unsqueeze(2)).permute(0, 2, 1).unsqueeze(3), jb_d.unsqueeze(1))


def weighted_features(
    positions: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Descriptor w * x(R) (B, D) and its Jacobian (B, D, 3n); ``weights`` (D,) default 1.

    The weights rescale each inverse distance (an automatic-relevance-determination
    metric); they must be equal within each orbit of atom pairs under the permutation
    group the kernel is averaged over (see :func:`pair_orbits`).
    """
    x, jac = inverse_distances(positions), inverse_distance_jacobian(positions)
    if weights is None:
        return x, jac
    return x * weights, jac * weights.unsqueeze(1)


def pair_orbits(permutations: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """(D,) orbit index 0..n_orbits-1 of each atom pair (descriptor order) under the group
    of atom ``permutations`` (P, n): pairs mapped onto each other share an index."""
    i, j = pair_indices(n_atoms)
    column = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
    orbit = [-1] * len(column)
    n_orbits = 0
    for k, (a, b) in enumerate(zip(i.tolist(), j.tolist())):
        if orbit[k] >= 0:
            continue
        for perm in permutations.tolist():
            low, high = sorted((perm[a], perm[b]))
            orbit[column[(low, high)]] = n_orbits
        n_orbits += 1
    return torch.as_tensor(orbit, dtype=torch.int64)


def pair_permutation(permutation: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """(D,) descriptor columns of the frame with atoms permuted: x(R[:, p])_k equals
    x(R)_{pair_permutation(p)[k]} (also for orbit-constant weights), and so do the rows of
    the Jacobian in the original atom order; a gather instead of recomputing features."""
    i, j = pair_indices(n_atoms)
    perm = torch.as_tensor(permutation)
    a, b = perm[i], perm[j]
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    # row-major index of pair (low, high), low < high, among the n(n-1)/2 pairs
    return low * (2 * n_atoms - low - 1) // 2 + (high - low - 1)


def permuted_features(
    positions: torch.Tensor, permutation: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Descriptor and Jacobian of frames with atoms permuted, Jacobian in the original order.

    With R'_i = R_p[i], x' = x(R') and dx'/dR_k = dx/dR'_{p^-1[k]}.
    """
    moved = positions[:, permutation]
    x, jac = weighted_features(moved, weights)
    n_frames, n_desc, n_grad = jac.shape
    inverse = torch.argsort(permutation)
    jac = jac.view(n_frames, n_desc, -1, 3)[:, :, inverse].reshape(n_frames, n_desc, n_grad)
    return x, jac


def symmetric_kernel(
    pos_a: torch.Tensor,
    pos_b: torch.Tensor,
    length: float,
    permutations: torch.Tensor,
    features_a: tuple[torch.Tensor, torch.Tensor] | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Joint kernel of frames a and b averaged over atom permutations of b.

    Args:
        pos_a: (Na, n, 3), pos_b: (Nb, n, 3) Angstrom.
        permutations: (P, n) group of atom permutations (the first row the identity).
        features_a: precomputed (x, J) of ``pos_a`` (weighted if ``weights`` is given).
        weights: (D,) descriptor weights (:func:`weighted_features`); differentiable.
    """
    xa, ja = features_a or weighted_features(pos_a, weights)
    differentiable = weights is not None and weights.requires_grad
    blocks = _new_blocks(pos_a.shape[0], pos_b.shape[0], ja.shape[2], pos_a.dtype,
                         differentiable)
    weight = 1.0 / permutations.shape[0]
    for perm in permutations:
        xb, jb = permuted_features(pos_b, perm, weights)
        _add_joint_kernel(blocks, xa, ja, xb, jb, length, weight)
    return _assemble(blocks)
