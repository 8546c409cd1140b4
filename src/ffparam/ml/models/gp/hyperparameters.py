"""Choice of the GP length scale and gradient noise on the validation set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError
from ffparam.ml.data import MLDataset
from ffparam.ml.models.gp.data import frames
from ffparam.ml.models.gp.kernel import symmetric_kernel
from ffparam.ml.models.gp.model import GaussianProcessPotential
from ffparam.ml.models.gp.settings import GPSettings
from ffparam.ml.models.gp.solvers import frame_rows, solve_kernel


def select_hyperparameters(
    pos: torch.Tensor,
    y: torch.Tensor,
    perms: torch.Tensor,
    cfg: GPSettings,
    valid: MLDataset | None,
    refs: dict[int, float],
    numbers: np.ndarray,
    mean_energy: float,
) -> tuple[float, float, dict[str, float]]:
    """Pick (l, lambda_G) on the grid ``length_scales`` x ``force_noises`` by the validation
    force MAE of an exact GP on a seeded subset of ``n_select`` training frames.

    Returns:
        (l, lambda_G, scores) with scores {"l/lambda_G": MAE eV/Angstrom}.
    """
    n = pos.shape[0]
    if valid is None or len(valid) == 0:
        raise InputError(
            "the GP needs a validation set to choose its length scale (or a fixed length_scale)"
        )
    rng = np.random.default_rng(cfg.seed)
    subset = np.sort(rng.permutation(n)[: min(n, cfg.n_select)])
    g = 3 * pos.shape[1]
    y_sub = frame_rows(y, n, g, subset)
    vpos, _, vforces = frames(valid)
    noises = cfg.force_noises if cfg.select_noise else (cfg.force_noise,)
    scores, best, best_score = {}, None, float("inf")
    for length in cfg.length_scales:
        kernel = symmetric_kernel(pos[subset], pos[subset], length, perms)
        for noise in noises:
            trial = replace(cfg, force_noise=noise)
            try:
                alpha, signal, _ = solve_kernel(kernel, y_sub, len(subset), g, trial)
            except CalculationError:
                continue
            model = GaussianProcessPotential(
                numbers, pos[subset], alpha, pos[subset], perms.numpy(), length, signal,
                mean_energy, refs, trial, False,
            )
            score = _force_mae(model, vpos, vforces)
            scores[f"{length:g}/{noise:g}"] = score
            if score < best_score:
                best, best_score = (float(length), float(noise)), score
    if best is None:
        raise CalculationError("no GP length scale gave a positive definite kernel")
    return best[0], best[1], scores


def _force_mae(model: GaussianProcessPotential, vpos: torch.Tensor,
               vforces: torch.Tensor) -> float:
    """Mean absolute force error (eV/Angstrom) of ``model`` on frames ``vpos``."""
    vx = vpos.clone().requires_grad_(True)
    energy = model.energy_of_descriptor(model.descriptor(vx))
    (grad,) = torch.autograd.grad(energy.sum(), vx)
    return float((-grad - vforces).abs().mean())
