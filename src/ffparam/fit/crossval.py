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
fit every other grid point, predict the rest). Per-point weights (``sqrt_w``: the sigma
weights of Delta-learned profiles, ``attenuate``) weigh the held-out fit and its free
offset (the full fit is first moved to the optimum of the offsets, which differs from the
profile's unweighted mean only with non-uniform weights); the held-out residuals are then
divided by them, so the RMSE is an unweighted one in the target's unit, comparable with the
training RMSE.

:func:`choose_prior_width` uses it to pick the regularization: the fit is repeated with each
candidate prior width on the free parameters, and each group of parameters (a rotor's
bespoke torsions) gets the width whose fit best predicts its target's held-out points; the
final fit uses those widths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.params.parameter_set import ParameterKey, ParameterSet


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
    scales = [math.sqrt(t.weight / n) / t.denominator * _point_weights(t, n)
              for t, n in zip(objective.targets, sizes)]
    m, n = sum(sizes), len(x)
    offsets = np.zeros((m, len(sizes)))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for i, scale in enumerate(scales):
        offsets[starts[i]:starts[i + 1], i] = scale
    design = np.hstack([jac[:m], offsets])
    penalty = np.zeros((design.shape[1],) * 2)
    penalty[:n, :n] = jac[m:].T @ jac[m:]
    gradient = design.T @ r[:m]
    gradient[:n] += jac[m:].T @ r[m:]
    try:
        normal = design.T @ design + penalty
        hat = design @ np.linalg.solve(normal, design.T)
        # residuals at the optimum with the free offsets (a step away from x only when
        # per-point weights make the weighted offset differ from the profile's mean)
        r = r[:m] - design @ np.linalg.solve(normal, gradient)
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


def _point_weights(target, n_points: int) -> np.ndarray:
    """(n_points,) square roots of the target's per-point weights (``sqrt_w``: Delta sigma
    weights, ``attenuate``), ones for a target without them. Held-out residuals are divided
    by them, so the cross-validated RMSE is in the target's unit like the training RMSE."""
    sqrt_w = getattr(target, "sqrt_w", None)
    if sqrt_w is None:
        return np.ones(n_points)
    sqrt_w = np.asarray(sqrt_w, dtype=float).reshape(-1)
    if sqrt_w.shape != (n_points,) or np.any(sqrt_w <= 0.0):
        raise InputError(f"{target.name}: per-point weights must be positive, one per point")
    return sqrt_w


@dataclass
class PriorChoice:
    """The prior widths chosen by :func:`choose_prior_width`.

    Attributes:
        widths: target name -> chosen prior width (the parameters' internal units,
            kcal/mol for torsion barriers).
        rmse_cv: target name -> {candidate width: cross-validated RMSE (target unit)}.
        result: the final fit (every group at its chosen width), a FitResult.
        objective: its objective.
    """

    widths: dict[str, float]
    rmse_cv: dict[str, dict[float, float]] = field(default_factory=dict)
    result: object = None
    objective: Objective | None = None


def with_prior_widths(parameters: ParameterSet, widths: Mapping[ParameterKey, float]
                      ) -> ParameterSet:
    """A copy of ``parameters`` whose free keys in ``widths`` get that prior width (bounds
    and transform kept)."""
    out = parameters.copy()
    for key, width in widths.items():
        out.free[key] = dataclasses.replace(out.free[key], prior_width=float(width))
    return out


def choose_prior_width(targets: Sequence, parameters: ParameterSet,
                       groups: Mapping[str, Sequence[ParameterKey]],
                       candidates: Sequence[float], fit: Callable[[Objective], object],
                       n_folds: int = 2) -> PriorChoice:
    """Prior width per target by cross-validation (module docstring).

    ``groups``: target name -> the free keys its width applies to (e.g. a rotor's bespoke
    torsion k's); ``fit(objective)`` returns a FitResult (``.x``). One fit per candidate
    (all groups at that width), then the final fit with each group at the width of its
    target's smallest cross-validated RMSE (ties: the widest). InputError for no
    candidates, a non-positive one, or a group naming an unknown target or key."""
    candidates = sorted({float(w) for w in candidates}, reverse=True)
    if not candidates or candidates[-1] <= 0:
        raise InputError(f"prior width candidates must be positive, got {candidates}")
    names = {t.name for t in targets}
    for name, keys in groups.items():
        missing = [k for k in keys if k not in parameters.free]
        if name not in names or missing:
            raise InputError(f"prior width group {name!r}: unknown target or free key(s) "
                             f"{missing}")
    scores: dict[str, dict[float, float]] = {name: {} for name in groups}
    for width in candidates:
        trial = with_prior_widths(parameters, {k: width for ks in groups.values() for k in ks})
        objective = Objective(list(targets), FitParameters.from_free(trial))
        cv = cross_validated_rmse(objective, fit(objective).x, n_folds)
        for name in groups:
            scores[name][width] = cv[name]
    chosen = {name: min(candidates, key=lambda w, s=s: (s[w], -w)) for name, s in scores.items()}
    final = with_prior_widths(parameters, {k: chosen[name] for name, keys in groups.items()
                                           for k in keys})
    objective = Objective(list(targets), FitParameters.from_free(final))
    return PriorChoice(chosen, scores, fit(objective), objective)


__all__ = ["PriorChoice", "choose_prior_width", "cross_validated_rmse", "interleaved_folds",
           "with_prior_widths"]
