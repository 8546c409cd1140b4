"""Fast predictive variances of the GP: batched derivative kernels against a cached,
precomputed variance basis, and the Cholesky factors that are saved with the model.

The symmetrized kernel k_sym(a, b) = mean_p k(a, p(b)) equals mean_p k(p^-1(a), b) (the
base kernel only sees descriptor distances, which a common relabelling of both frames leaves
unchanged), so the atom permutations are applied once to the variance-basis frames (their
descriptors and Jacobians are precomputed) instead of to every predicted frame, and the sum
over permutations is taken before the one Jacobian product per frame:

    GG(a, b) = J_b^T-side:  sum_p c1_p J_ap^T J_b + c2_p (J_ap^T d_p)(J_b^T d_p)^T
             = (sum_p c1_p J_ap)^T J_b + ...

which costs O(P M D G + M D G^2) per frame instead of O(P M D G^2).

The variance basis is the model's basis (the inducing frames of a sparse GP, the training
frames of an exact one) when it has at most ``GPSettings.variance_frames`` frames; else that
many training frames chosen by :func:`select_variance_frames` (a pivoted Cholesky of their
energy kernel that minimizes the prior variance of all training frames left unexplained:
on acac it ranks the per-frame force errors with Spearman 0.54 where the former
farthest-point subset of the basis, ``variance_selection="fps"``, gave 0.47 and the whole
100-frame basis 0.60). When it is the whole basis of an exact GP the variance is the exact one,
sigma_f^2 (k_** - k_*^T (K + Lambda)^-1 k_*); otherwise it is the deterministic-training-
conditional variance on the variance basis with all training frames,
sigma_f^2 (k_** - k_*v^T K_vv^-1 k_v* + k_*v^T A_v^-1 k_v*) (a rank-limited variance that is
never smaller than the full-basis one in its latent part). Either way the factors are
computed once, at the fit, and stored in the saved model, so loading costs no kernel work.
"""

from __future__ import annotations

import torch

from ffparam.ml.models.gp.kernel import (
    matern52,
    pair_permutation,
    permuted_features,
    weighted_features,
)

FRAME_CHUNK = 32
"""Predicted frames per batched kernel evaluation (bounds the (M, B, D, G) intermediate)."""


class VarianceBasis:
    """The variance-basis frames with their permuted descriptors and Jacobians.

    Args:
        positions: (M, n, 3) Angstrom.
        permutations: (P, n) atom permutations the kernel is averaged over.
        length: length scale l (1/Angstrom).
        weights: (D,) descriptor weights or None.
    """

    def __init__(self, positions: torch.Tensor, permutations: torch.Tensor, length: float,
                 weights: torch.Tensor | None) -> None:
        self.positions = positions
        self.permutations = permutations
        self.length = float(length)
        self.weights = weights
        xs, js = [], []
        for perm in permutations:
            x, jac = permuted_features(positions, torch.argsort(perm), weights)
            xs.append(x)
            js.append(jac)
        self.x = torch.stack(xs)  # (P, M, D)
        self.jac = torch.stack(js)  # (P, M, D, G)
        self.jac_x = torch.einsum("pmdg,pmd->pmg", self.jac, self.x)  # J_ap^T x_ap

    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    def cross(self, positions: torch.Tensor) -> torch.Tensor:
        """(M (1 + G), B (1 + G)) symmetrized joint kernel of the basis with ``positions``
        (B, n, 3), rows and columns in the [energies, gradients] layout of
        :mod:`ffparam.ml.models.gp.kernel` (unit signal variance)."""
        parts = [self._cross_chunk(positions[k : k + FRAME_CHUNK])
                 for k in range(0, positions.shape[0], FRAME_CHUNK)]
        m = self.n_frames
        energies = torch.cat([p[:m] for p in parts], dim=1)
        g = self.jac.shape[3]
        grads = torch.cat([p[m:].view(m * g, -1, 1 + g) for p in parts], dim=1)
        n_b = positions.shape[0]
        out = torch.empty(m * (1 + g), n_b * (1 + g), dtype=energies.dtype)
        out[:, :n_b] = torch.cat([energies[:, :, 0], grads[:, :, 0]])
        out[:, n_b:] = torch.cat([energies[:, :, 1:], grads[:, :, 1:]]).reshape(m * (1 + g), -1)
        return out

    def _cross_chunk(self, positions: torch.Tensor) -> torch.Tensor:
        """(M (1 + G), B, 1 + G): the kernel of one chunk, test columns grouped by frame."""
        xb, jb = weighted_features(positions, self.weights)  # (B, D), (B, D, G)
        l2 = self.length**2
        weight = 1.0 / self.permutations.shape[0]
        xa, ja = self.x, self.jac
        sq = ((xa * xa).sum(2, keepdim=True) - 2.0 * xa @ xb.T + (xb * xb).sum(1))
        g0, g1, g2 = matern52(sq / l2)  # (P, M, B)
        c1 = (-2.0 * weight / l2) * g1
        c2 = (-4.0 * weight / (l2 * l2)) * g2
        jb_xb = torch.einsum("bdg,bd->bg", jb, xb)
        jb_d = torch.einsum("pmd,bdg->pmbg", xa, jb) - jb_xb  # J_b^T (x_ap - x_b)
        ja_d = self.jac_x.unsqueeze(2) - torch.einsum("pmdg,bd->pmbg", ja, xb)  # J_ap^T d
        m, n_b, g = xa.shape[1], xb.shape[0], jb.shape[2]
        out = torch.empty(m, 1 + g, n_b, 1 + g, dtype=xb.dtype)
        out[:, 0, :, 0] = weight * g0.sum(0)
        out[:, 0, :, 1:] = torch.einsum("pmb,pmbg->mbg", c1, jb_d)
        out[:, 1:, :, 0] = -torch.einsum("pmb,pmbg->mgb", c1, ja_d)
        summed = torch.einsum("pmb,pmdg->mbdg", c1, ja)  # sum_p c1 J_ap
        out[:, 1:, :, 1:] = torch.einsum("mbdg,bdh->mgbh", summed, jb)
        out[:, 1:, :, 1:] += torch.einsum("pmbg,pmbh->mgbh", ja_d * c2.unsqueeze(3), jb_d)
        return torch.cat([out[:, 0].reshape(m, n_b, 1 + g),
                          out[:, 1:].reshape(m * g, n_b, 1 + g)])


def prior_diagonal(positions: torch.Tensor, permutations: torch.Tensor, length: float,
                   weights: torch.Tensor | None) -> torch.Tensor:
    """(B, 1 + G) prior variances k_sym(b, b) of the energy and the gradient components of
    each frame (unit signal variance), batched over frames and permutations."""
    l2 = float(length) ** 2
    weight = 1.0 / permutations.shape[0]
    xa, ja = weighted_features(positions, weights)
    out = positions.new_zeros(positions.shape[0], 1 + ja.shape[2])
    for perm in permutations:
        columns = pair_permutation(perm, positions.shape[1])
        xb, jb = xa[:, columns], ja[:, columns]
        d = xa - xb
        g0, g1, g2 = matern52((d * d).sum(1) / l2)
        c1 = (-2.0 * weight / l2) * g1
        c2 = (-4.0 * weight / (l2 * l2)) * g2
        ja_d = torch.einsum("bdg,bd->bg", ja, d)
        jb_d = torch.einsum("bdg,bd->bg", jb, d)
        out[:, 0] += weight * g0
        out[:, 1:] += c1[:, None] * (ja * jb).sum(1) + c2[:, None] * ja_d * jb_d
    return out


MAX_SELECTION_FRAMES = 1000
"""Most training frames the greedy variance-basis selection looks at (a seeded random
subset beyond it: the selection costs O(P N^2 D) kernel work and O(N^2 m) updates)."""


def energy_kernel(xa: torch.Tensor, xb: torch.Tensor, permutations: torch.Tensor,
                  length: float) -> torch.Tensor:
    """(A, B) symmetrized energy-energy kernel (unit signal variance) of frames with
    (weighted) descriptors ``xa`` (A, D) and ``xb`` (B, D) (1/Angstrom)."""
    n_atoms = permutations.shape[1]
    out = xa.new_zeros(xa.shape[0], xb.shape[0])
    bb = (xb * xb).sum(1)
    for perm in permutations:
        xp = xa[:, pair_permutation(perm, n_atoms)]
        sq = (xp * xp).sum(1, keepdim=True) - 2.0 * xp @ xb.T + bb
        out += matern52(sq.clamp(min=0.0) / float(length) ** 2)[0]
    return out / permutations.shape[0]


def greedy_trace_selection(kernel: torch.Tensor, m: int) -> list[int]:
    """Indices of ``m`` columns of the PSD ``kernel`` (N, N) chosen greedily to minimize
    the trace of the Nystrom residual K - K_:S K_SS^-1 K_S: (the total prior variance of
    the N frames that the chosen frames leave unexplained): each step takes the column j
    with the largest |R_:j|^2 / R_jj of the residual R (a pivoted Cholesky whose pivot rule
    is the trace reduction, not the largest diagonal, so it picks frames that represent
    many others instead of the outliers farthest-point sampling prefers)."""
    residual = kernel.clone()
    chosen: list[int] = []
    floor = 1e-12 * float(kernel.diagonal().max())
    for _ in range(min(m, kernel.shape[0])):
        diagonal = residual.diagonal()
        score = (residual * residual).sum(0) / diagonal.clamp(min=floor)
        score[diagonal <= floor] = -1.0
        if chosen:
            score[chosen] = -1.0
        j = int(torch.argmax(score))
        if score[j] < 0:
            break
        chosen.append(j)
        column = residual[:, j] / torch.sqrt(diagonal[j])
        residual -= torch.outer(column, column)
    return chosen


def select_variance_frames(x: torch.Tensor, permutations: torch.Tensor, length: float,
                           m: int, seed: int = 0) -> torch.Tensor:
    """Indices (sorted) of ``m`` of the frames with descriptors ``x`` (N, D) chosen by
    :func:`greedy_trace_selection` on their symmetrized energy kernel."""
    candidates = torch.arange(x.shape[0])
    if x.shape[0] > MAX_SELECTION_FRAMES:
        rng = torch.Generator().manual_seed(seed)
        candidates = torch.randperm(x.shape[0], generator=rng)[:MAX_SELECTION_FRAMES]
    xc = x[candidates]
    chosen = greedy_trace_selection(energy_kernel(xc, xc, permutations, length), m)
    return torch.sort(candidates[torch.as_tensor(chosen)]).values


def latent_variance(basis: VarianceBasis, factors: dict[str, torch.Tensor],
                    positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent (noise-free, unit signal variance) variances of the energies (B,) and the
    gradient components (B, G) of ``positions`` (B, n, 3): ``factors`` holds either ``k``
    (Cholesky of K + Lambda of an exact GP on the basis) or ``kmm`` and ``b`` (the
    whitened DTC factors of :func:`ffparam.ml.models.gp.solvers.accumulate_sparse`)."""
    n_frames = positions.shape[0]
    prior = prior_diagonal(positions, basis.permutations, basis.length, basis.weights)
    cross = basis.cross(positions)
    q = torch.linalg.solve_triangular(factors["k" if "k" in factors else "kmm"], cross,
                                      upper=False)
    explained = (q * q).sum(0)
    if "b" in factors:
        r = torch.linalg.solve_triangular(factors["b"], q, upper=False)
        explained = explained - (r * r).sum(0)
    latent_e = prior[:, 0] - explained[:n_frames]
    latent_g = prior[:, 1:] - explained[n_frames:].view(n_frames, -1)
    return latent_e.clamp(min=0.0), latent_g.clamp(min=0.0)
