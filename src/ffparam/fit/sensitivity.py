"""Which fitted parameter moves which target: sensitivities from the Jacobian at the optimum.

For target t with unweighted residuals c_t - ref_t (n_t values, in the target's unit) and
parameter k, the objective's residual block is r_t = sqrt(w_t / n_t) (c_t - ref_t) / d_t
(:mod:`ffparam.fit.objective`), so its autograd Jacobian J_t = d r_t / d x gives, for a
step of the parameter by ``scale_k`` (in the optimizer's space: s_k = dx_k per step):

* shift[t, k] = sqrt(mean_i (d c_t,i / d x_k)^2) * s_k = ||J_t[:, k]|| d_t / sqrt(w_t) * s_k:
  how far the target's computed values move (RMS, target unit) when the parameter moves by
  one step. This is what "parameter k moves target t" means, and it does not vanish at the
  optimum;
* rmse_change[t, k] = d RMSE_t / d x_k * s_k, signed, RMSE_t = sqrt(mean (c_t - ref_t)^2)
  = ||r_t|| d_t / sqrt(w_t): whether moving the parameter up by a step would make the
  target better (< 0) or worse (> 0). At an optimum the weighted sum over targets and
  priors of the objective gradients is zero, so opposite signs show targets pulling the
  parameter in opposite directions;
* objective_change[t, k] = d (sum r_t^2) / d x_k * s_k = 2 r_t . J_t[:, k] * s_k (objective
  units, dimensionless).

The step is the parameter's Laplace posterior standard deviation
(:func:`~ffparam.fit.uncertainty.laplace_uncertainty`) when given, else its prior width,
else one internal unit of the parameter (kcal/mol, Angstrom, radian...); ``step_kind``
says which. A target of weight 0 has no residual scale in the objective and gets NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ffparam.fit.objective import Objective
from ffparam.fit.uncertainty import ParameterUncertainty


@dataclass
class Sensitivity:
    """Sensitivities of the targets to the fitted parameters (see the module doc).

    Attributes:
        parameters: one label per fitted parameter (group), as FitParameters.labels.
        targets: target names; units: each target's residual unit.
        step: (n,) the step of each parameter in its internal unit (kcal/mol, rad...).
        step_kind: "posterior sigma", "prior width" or "unit" per parameter.
        shift: (n_targets, n) RMS shift of the target's values per step (target unit).
        rmse_change: (n_targets, n) signed change of the target's RMSE per step.
        objective_change: (n_targets, n) change of the target's objective term per step.
        rmse: (n_targets,) RMSE of each target at the optimum (target unit).
    """

    parameters: list[str]
    targets: list[str]
    units: list[str]
    step: np.ndarray
    step_kind: list[str]
    shift: np.ndarray
    rmse_change: np.ndarray
    objective_change: np.ndarray
    rmse: np.ndarray

    def to_json(self, digits: int = 6) -> dict:
        """Plain data (NaN as None), rounded to ``digits`` significant digits."""
        def clean(values):
            return [None if not np.isfinite(v) else float(f"{v:.{digits}g}")
                    for v in np.ravel(values)]

        return {
            "parameters": list(self.parameters), "targets": list(self.targets),
            "units": list(self.units), "step": clean(self.step),
            "step_kind": list(self.step_kind), "rmse": clean(self.rmse),
            **{name: [clean(row) for row in getattr(self, name)]
               for name in ("shift", "rmse_change", "objective_change")},
        }


def _steps(objective: Objective, x: np.ndarray, uncertainty: ParameterUncertainty | None
           ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per parameter: the step in ``x`` and in physical units, and its kind."""
    fit = objective.fit
    xt = torch.as_tensor(x, dtype=torch.float64)
    dp_dx = np.diag(torch.autograd.functional.jacobian(fit.physical, xt).numpy())
    if uncertainty is not None:
        step_x = np.sqrt(np.clip(np.diag(uncertainty.covariance_x), 0.0, None))
        return step_x, np.abs(dp_dx) * step_x, ["posterior sigma"] * len(x)
    widths = [fit.parameters.free[g[0]].prior_width if g[0] in fit.parameters.free else None
              for g in fit.groups]
    step_p = np.array([w if w else 1.0 for w in widths], dtype=float)
    kinds = ["prior width" if w else "unit" for w in widths]
    return step_p / np.abs(dp_dx), step_p, kinds


def fit_sensitivity(objective: Objective, x: np.ndarray,
                    uncertainty: ParameterUncertainty | None = None) -> Sensitivity:
    """The :class:`Sensitivity` of ``objective``'s targets at ``x`` (the optimum), steps
    from ``uncertainty`` (a Laplace posterior at ``x``) when given."""
    x = np.asarray(x, dtype=float)
    _, jac = objective.residuals_and_jacobian(x)
    with torch.no_grad():
        blocks = objective.residual_blocks(torch.as_tensor(x, dtype=torch.float64))
    step_x, step_p, kinds = _steps(objective, x, uncertainty)
    n_t, n = len(objective.targets), len(x)
    shift, change, obj_change = (np.full((n_t, n), np.nan) for _ in range(3))
    rmse = np.full(n_t, np.nan)
    start = 0
    for t, target in enumerate(objective.targets):
        r = blocks[target.name].numpy()
        j = jac[start:start + len(r)]
        start += len(r)
        obj_change[t] = 2.0 * (r @ j) * step_x
        if target.weight <= 0:
            continue
        to_unit = target.denominator / np.sqrt(target.weight)  # ||r_t|| -> RMSE_t
        norm = float(np.linalg.norm(r))
        rmse[t] = norm * to_unit
        shift[t] = np.linalg.norm(j, axis=0) * to_unit * step_x
        change[t] = (r @ j) / max(norm, np.finfo(float).tiny) * to_unit * step_x
    return Sensitivity(list(objective.fit.labels), [t.name for t in objective.targets],
                       [t.unit for t in objective.targets], step_p, kinds, shift, change,
                       obj_change, rmse)


__all__ = ["Sensitivity", "fit_sensitivity"]
