"""Batch selection by the reduction of the integrated posterior variance over the candidates.

The models are judged by their force error on frames drawn like the candidates (the unused
pool, or fresh MD frames), not on the candidates' outliers. This criterion therefore picks
the batch that most reduces the *summed* posterior variance of a Gaussian-process
surrogate over all candidates, given the frames already trained on (Cohn's active learning
criterion, ALC / integrated mean squared error design; Cohn, Ghahramani & Jordan, JAIR 4,
129 (1996); Gramacy & Lee, Technometrics 51, 130 (2009)).

Surrogate: one value per frame with the Matern-5/2 kernel (:func:`matern52`) of the
model's descriptor, inverse interatomic distances x(R) (1/Angstrom) scaled by the GP's
descriptor weights and averaged over its atom permutations (unweighted, identity only for
other models), k(a, b) = mean_p g(|x_a - x_{p(b)}|^2 / L^2). Its length L is
``length_factor`` times the median pairwise descriptor distance of the frames involved,
not the GP's own length scale: a GP on energies and forces learns from the 3n force
components of a frame over a region much larger than the reach of one energy (its length
scale is far beyond the spread of the data), and the surrogate's job is to measure how
densely the candidates fill each region of configuration space and how far the labelled
frames already cover it. ``noise`` is the observation variance relative to the mean prior
variance.

A GP's posterior covariance depends only on where it is observed, so the batch is chosen
exactly and greedily: S, the covariance of the candidates conditioned on the training
frames (Cholesky solve); labelling candidate c reduces the summed variance by
sum_j S_jc^2 / (S_cc + noise); after each pick S <- S - S_:c S_c: / (S_cc + noise) (the
exact rank-1 conditioning on c), so candidates near one already picked gain little and the
batch spreads over the regions the candidates fill densely.
"""

from __future__ import annotations

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.ml.data import MLDataset
from ffparam.ml.models.gp.kernel import inverse_distances, matern52

_TIE = 1e-6
"""Scores within this fraction of the best count as tied (the lowest index wins), so that
frames read back from text files (8 decimals) choose the same batch."""

_SAMPLE = 2000
"""At most this many frames enter the median pairwise distance (an evenly spaced subset)."""


def permuted_descriptors(potential, data: MLDataset) -> np.ndarray:
    """(P, N, D) descriptors (1/Angstrom) of the frames of ``data`` under each atom
    permutation of ``potential`` (its ``permutations`` and ``descriptor_weights`` when it
    has them, as the GP does; else the identity, unweighted); row 0 is the identity."""
    n = int(data.n_atoms[0])
    if np.any(data.n_atoms != n):
        raise InputError("active learning selects among frames of one molecule")
    positions = torch.as_tensor(data.positions, dtype=torch.float64).view(-1, n, 3)
    perms = getattr(potential, "permutations", None)
    perms = torch.arange(n)[None] if perms is None else torch.as_tensor(perms)
    weights = getattr(potential, "descriptor_weights", None)
    out = []
    for perm in perms:
        x = inverse_distances(positions[:, perm])
        out.append(x if weights is None else x * weights)
    return torch.stack(out).numpy()


def frame_kernel(xa: np.ndarray, xb: np.ndarray, length: float) -> np.ndarray:
    """(Na, Nb) kernel mean_p g(|xa - xb_p|^2 / length^2) of identity descriptors ``xa``
    (Na, D) with permuted descriptors ``xb`` (P, Nb, D) (1/Angstrom)."""
    xa = np.asarray(xa, dtype=float)
    xb = np.asarray(xb, dtype=float)
    total = np.zeros((xa.shape[0], xb.shape[1]))
    for xp in xb:
        sq = (xa * xa).sum(1)[:, None] - 2.0 * xa @ xp.T + (xp * xp).sum(1)[None]
        total += matern52(torch.as_tensor(np.maximum(sq, 0.0) / length**2))[0].numpy()
    return total / xb.shape[0]


def median_distance(x: np.ndarray) -> float:
    """Median pairwise Euclidean distance between the rows of ``x`` (at most ``_SAMPLE``
    evenly spaced rows are used)."""
    x = np.asarray(x, dtype=float)
    if len(x) > _SAMPLE:
        x = x[np.linspace(0, len(x) - 1, _SAMPLE).astype(int)]
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2.0 * x @ x.T, 0.0)
    upper = d2[np.triu_indices(len(x), 1)]
    return float(np.sqrt(np.median(upper))) if len(upper) else 0.0


def conditional_covariance(k_ll: np.ndarray, k_lc: np.ndarray, k_cc: np.ndarray,
                           noise: float) -> np.ndarray:
    """Covariance of the candidates given noisy observations of the labelled frames:
    k_cc - k_lc^T (k_ll + noise I)^-1 k_lc (no labelled frames: k_cc)."""
    k_cc = np.array(k_cc, dtype=float)
    if not len(k_ll):
        return k_cc
    chol = np.linalg.cholesky(np.asarray(k_ll, dtype=float) + noise * np.eye(len(k_ll)))
    q = np.linalg.solve(chol, np.asarray(k_lc, dtype=float))
    return k_cc - q.T @ q


def greedy_integrated(cov: np.ndarray, k: int, noise: float,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy batch of ``k`` candidates maximizing the reduction of the summed variance
    sum_j w_j cov_jj (see the module docstring; ``weights`` w default 1); returns (indices
    in the order chosen, the reduction each pick brought, in the units of ``cov``). Ties
    (within a fraction ``_TIE``) go to the lowest index."""
    s = np.array(cov, dtype=float)
    n = s.shape[0]
    if s.ndim != 2 or s.shape[1] != n:
        raise InputError(f"the candidate covariance must be square, got shape {s.shape}")
    if not noise > 0:
        raise InputError(f"the observation noise must be positive, got {noise}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"the variance weights must be {n} finite values >= 0")
    k = min(int(k), n)
    chosen: list[int] = []
    gains: list[float] = []
    free = np.ones(n, dtype=bool)
    for _ in range(max(k, 0)):
        denom = np.maximum(np.diag(s), 0.0) + noise
        score = np.where(free, (w @ (s * s)) / denom, -np.inf)
        best = score.max()
        pick = int(np.flatnonzero(score >= best - _TIE * abs(best))[0])
        column = s[:, pick].copy()
        s -= np.outer(column, column) / denom[pick]
        free[pick] = False
        chosen.append(pick)
        gains.append(float(score[pick]))
    return np.asarray(chosen, dtype=np.int64), np.asarray(gains)


def select_integrated(potential, labelled: MLDataset | None, candidates: MLDataset, k: int,
                      length_factor: float = 0.5, noise: float = 1e-3,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of at most ``k`` of ``candidates`` chosen to reduce the surrogate's summed
    posterior variance over all candidates, given the ``labelled`` (training) frames, and
    the relative variance reduction of each pick (fraction of the candidates' summed prior
    variance); see the module docstring for ``length_factor`` and ``noise``. ``weights``
    (one per candidate, e.g. the model's predicted force variance there) weight each
    candidate's variance in the sum (normalized to mean 1)."""
    if not length_factor > 0 or not noise > 0:
        raise InputError(f"length_factor and noise must be positive, got {length_factor} "
                         f"and {noise}")
    xc = permuted_descriptors(potential, candidates)
    xl = (permuted_descriptors(potential, labelled) if labelled is not None and len(labelled)
          else xc[:, :0])
    length = length_factor * median_distance(np.concatenate([xl[0], xc[0]]))
    if not length > 0:  # all frames identical: any choice is as good
        chosen = np.arange(max(min(int(k), len(candidates)), 0), dtype=np.int64)
        return chosen, np.zeros(len(chosen))
    k_cc = frame_kernel(xc[0], xc, length)
    scale = float(np.mean(np.diag(k_cc)))
    cov = conditional_covariance(frame_kernel(xl[0], xl, length), frame_kernel(xl[0], xc, length),
                                 k_cc, noise * scale)
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        weights = weights / max(float(weights.mean()), 1e-300)
    chosen, gains = greedy_integrated(cov, k, noise * scale, weights)
    return chosen, gains / max(float(np.trace(k_cc)), 1e-300)
