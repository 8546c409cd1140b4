"""Cross-validated RMSE of a fit without refitting: held-out residuals from the hat matrix.

For a least-squares objective linear in its parameters (rows A, quadratic priors P), the
residuals of the rows S predicted by a fit to all the other rows are exactly

    e_S(held out) = (I - H_SS)^-1 e_S,      H = A (A^T A + P)^-1 A^T

with e the residuals of the fit to all rows (the prior rows are never held out). A fit that
is nonlinear in x (relaxed torsion profiles) gets the same formula with A its Jacobian at
the optimum: one Gauss-Newton step from the full fit, exact for single-point profiles.

Each target's residuals are relative energies whose offset the fit removes (the mean of the
profile), so every target gets one free offset column (no prior): the held-out points are
predicted with the offset of the points kept, as a refit would. The held-out fit keeps each
remaining point's weight (the priors weigh as in the full fit). Points are held out in
``n_folds`` interleaved folds along the grid (torsion targets sorted by angle: 2 folds =
fit every other grid point, predict the rest). Exact for uniform point weights (no
``attenuate``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.targets.torsion import TorsionProfileTarget


def interleaved_folds(target, n_points: int, n_folds: int) -> np.ndarray:
    """Fold index (0..n_folds-1) of each of the target's points: every ``n_folds``-th
    point along the grid (torsion targets sorted by angle, others in their order)."""
    order = np.arange(n_points)
    if isinstance(target, TorsionProfileTarget):
        angles = target.profile.angles[target.keep]
        order = np.lexsort(angles.T[::-1])
    fold = np.empty(n_points, dtype=np.int64)
    fold[order] = np.arange(n_points) % n_folds
    return fold


def cross_validated_rmse(objective: Objective, x: np.ndarray, n_folds: int = 2
                         ) -> dict[str, float]:
    """Target name -> RMSE (the target's unit, kcal/mol for torsion profiles) of its
    points predicted by fits that left them out (see the module docstring).

    Raises InputError for fewer than 2 folds or a target with fewer points than folds, and
    when the held-out problem is singular (a parameter only the held-out points determine,
    with no prior)."""
    if n_folds < 2:
        raise InputError(f"n_folds must be at least 2, got {n_folds}")
    x = np.asarray(x, dtype=float)
    r, jac = objective.residuals_and_jacobian(x)
    with torch.no_grad():
        blocks = objective.residual_blocks(torch.as_tensor(x, dtype=torch.float64))
    sizes = [int(blocks[t.name].numel()) for t in objective.targets]
    scales = [math.sqrt(t.weight / n) / t.denominator for t, n in zip(objective.targets, sizes)]
    m, n = sum(sizes), len(x)
    offsets = np.zeros((m, len(sizes)))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for i, scale in enumerate(scales):
        offsets[starts[i]:starts[i + 1], i] = scale
    design = np.hstack([jac[:m], offsets])
    penalty = np.zeros((design.shape[1],) * 2)
    penalty[:n, :n] = jac[m:].T @ jac[m:]
    try:
        hat = design @ np.linalg.solve(design.T @ design + penalty, design.T)
    except np.linalg.LinAlgError:
        raise InputError("cross-validation: the fit's normal equations are singular") from None
    out = {}
    for i, target in enumerate(objective.targets):
        if sizes[i] < n_folds:
            raise InputError(f"{target.name}: {sizes[i]} point(s) for {n_folds} folds")
        fold = interleaved_folds(target, sizes[i], n_folds)
        held_out = np.empty(sizes[i])
        for f in range(n_folds):
            local = np.flatnonzero(fold == f)
            rows = starts[i] + local
            block = np.eye(len(rows)) - hat[np.ix_(rows, rows)]
            try:
                held_out[local] = np.linalg.solve(block, r[rows])
            except np.linalg.LinAlgError:
                raise InputError(f"{target.name}: fold {f} cannot be predicted from the "
                                 "other points") from None
        out[target.name] = float(np.sqrt(np.mean((held_out / scales[i]) ** 2)))
    return out


__all__ = ["cross_validated_rmse", "interleaved_folds"]
