"""Linear algebra of the GP fit: observation vectors, noise, Cholesky factors, the exact
and the sparse (inducing-frame) solutions, and the choice of inducing frames.

Observations of N frames of n atoms are laid out as in :mod:`.kernel`: the N energies
first, then the N * 3n gradients (= -forces), frame-major.
"""

from __future__ import annotations

import numpy as np
import torch

from ffparam.errors import CalculationError
from ffparam.ml.models.gp.kernel import symmetric_kernel
from ffparam.ml.models.gp.settings import GPSettings
from ffparam.ml.models.gp.variance import VarianceBasis


def farthest_point_sampling(x: torch.Tensor, m: int, first: int = 0) -> np.ndarray:
    """Indices of ``m`` rows of ``x`` (N, D) chosen greedily far from each other."""
    chosen = [first]
    dist = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, min(m, x.shape[0])):
        nxt = int(torch.argmax(dist))
        chosen.append(nxt)
        dist = torch.minimum(dist, ((x - x[nxt]) ** 2).sum(1))
    return np.sort(np.asarray(chosen))


def observations(energies: torch.Tensor, forces: torch.Tensor) -> torch.Tensor:
    """[energies (N,), gradients (N*3n,)] with gradients = -forces (eV, eV/Angstrom)."""
    return torch.cat([energies, -forces.reshape(-1)])


def frame_rows(y: torch.Tensor, n_frames: int, n_grad: int,
               subset: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The observations of frames ``subset`` of ``y`` (``n_frames`` frames, ``n_grad``
    gradient components each), in the same energies-then-gradients layout."""
    return torch.cat([y[subset], y[n_frames:].view(n_frames, n_grad)[subset].reshape(-1)])


def noise_diagonal(n_frames: int, n_grad: int, cfg: GPSettings,
                   dtype: torch.dtype) -> torch.Tensor:
    """Lambda: lambda_E^2 for the energy rows, lambda_G^2 for the gradient rows."""
    return torch.cat(
        [
            torch.full((n_frames,), cfg.energy_noise**2, dtype=dtype),
            torch.full((n_frames * n_grad,), cfg.force_noise**2, dtype=dtype),
        ]
    )


def cholesky_jittered(matrix: torch.Tensor, what: str, min_jitter: float = 0.0) -> torch.Tensor:
    """Cholesky factor, adding the smallest sufficient diagonal jitter (relative to the mean
    diagonal) when the matrix is numerically singular."""
    jitter = min_jitter
    scale = float(matrix.diagonal().mean())
    for _ in range(6):
        eye = torch.eye(matrix.shape[0], dtype=matrix.dtype)
        factor, info = torch.linalg.cholesky_ex(matrix + jitter * scale * eye)
        if int(info) == 0:
            return factor
        jitter = 1e-10 if jitter == 0.0 else jitter * 10
    raise CalculationError(f"GP {what} matrix is not positive definite; increase the noise")


class KernelBasis:
    """What :func:`accumulate_sparse` needs: inducing (basis) frames, length scale,
    permutations, settings and descriptor weights (the fitted model has the same
    attributes)."""

    def __init__(self, basis_positions: torch.Tensor, length_scale: float,
                 permutations: torch.Tensor, cfg: GPSettings,
                 weights: torch.Tensor | None = None) -> None:
        self.basis_positions = basis_positions
        self.length_scale = length_scale
        self.permutations = permutations
        self.cfg = cfg
        self.descriptor_weights = weights


def accumulate_sparse(
    model_like: KernelBasis, positions: torch.Tensor, y: torch.Tensor | None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Whitened sparse normal equations over chunks of training frames.

    With L L^T = K_mm and V = L^-1 K_mn: B = I + V Lambda^-1 V^T (eigenvalues >= 1, well
    conditioned even for tiny noise) and c = V Lambda^-1 y. Then A = L B L^T.

    Returns:
        (L, L_B, c) with L_B the Cholesky factor of B.
    """
    basis = model_like.basis_positions
    fast = VarianceBasis(basis, model_like.permutations, model_like.length_scale,
                         model_like.descriptor_weights)
    chol_mm = cholesky_jittered(fast.cross(basis), "inducing", min_jitter=1e-10)
    b_matrix = torch.eye(chol_mm.shape[0], dtype=chol_mm.dtype)
    c = torch.zeros(chol_mm.shape[0], dtype=chol_mm.dtype)
    n, g = positions.shape[0], 3 * positions.shape[1]
    step = model_like.cfg.chunk_frames
    starts = range(0, n, step)
    if progress:
        from rich.progress import track

        starts = track(starts, description="GP sparse fit", transient=True)
    for start in starts:
        chunk = positions[start : start + step]
        v = torch.linalg.solve_triangular(chol_mm, fast.cross(chunk), upper=False)
        inv_noise = 1.0 / noise_diagonal(chunk.shape[0], g, model_like.cfg, v.dtype)
        b_matrix += (v * inv_noise) @ v.T
        if y is not None:
            k = chunk.shape[0]
            y_chunk = torch.cat([y[start : start + k], y[n + start * g : n + (start + k) * g]])
            c += v @ (inv_noise * y_chunk)
    return chol_mm, cholesky_jittered(b_matrix, "posterior"), c


Solution = tuple[torch.Tensor, float, dict[str, torch.Tensor]]
"""alpha (observations,), the maximum-likelihood signal variance sigma_f^2 (eV^2) and the
Cholesky factors the predictive variances reuse."""


def solve_exact(positions: torch.Tensor, y: torch.Tensor, length: float,
                perms: torch.Tensor, cfg: GPSettings,
                weights: torch.Tensor | None = None) -> Solution:
    """alpha, signal variance and factors of the exact GP on all ``positions``."""
    k = symmetric_kernel(positions, positions, length, perms, weights=weights)
    return solve_kernel(k, y, positions.shape[0], 3 * positions.shape[1], cfg)


def solve_kernel(k: torch.Tensor, y: torch.Tensor, n_frames: int, n_grad: int,
                 cfg: GPSettings) -> Solution:
    """alpha = (K + Lambda)^-1 y, the ML signal variance and the Cholesky factor."""
    noise = noise_diagonal(n_frames, n_grad, cfg, k.dtype)
    factor = cholesky_jittered(k + torch.diag(noise), "training")
    alpha = torch.cholesky_solve(y.unsqueeze(1), factor).squeeze(1)
    signal = float(y @ alpha) / y.numel()
    return alpha, signal, {"k": factor}


def solve_sparse(positions: torch.Tensor, basis_idx: np.ndarray, y: torch.Tensor,
                 length: float, perms: torch.Tensor, cfg: GPSettings, progress: bool = False,
                 weights: torch.Tensor | None = None) -> Solution:
    """alpha, signal variance (Woodbury form) and factors of the sparse GP whose inducing
    frames are ``positions[basis_idx]``."""
    fitter = KernelBasis(positions[basis_idx], length, perms, cfg, weights)
    chol_mm, chol_b, c = accumulate_sparse(fitter, positions, y, progress)
    beta = torch.cholesky_solve(c.unsqueeze(1), chol_b)
    alpha = torch.linalg.solve_triangular(chol_mm.T, beta, upper=True).squeeze(1)
    inv_noise = 1.0 / noise_diagonal(positions.shape[0], 3 * positions.shape[1], cfg, y.dtype)
    signal = float((y * inv_noise) @ y - c @ beta.squeeze(1)) / y.numel()
    return alpha, signal, {"kmm": chol_mm, "b": chol_b}
