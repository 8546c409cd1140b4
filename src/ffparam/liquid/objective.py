"""The liquid objective (ForceBalance's Liquid target) and its trust-region step.

For liquids i with computed density rho_i and heat of vaporization H_i (standard errors
s_rho,i and s_H,i) and experiment rho_i^exp, H_i^exp, in the mathematical parameter
vector x of :class:`~ffparam.fit.parameters.FitParameters`:

    r = [ sqrt(w_rho / n) (rho_i - rho_i^exp) / d_rho,  sqrt(w_H / n) (H_i - H_i^exp) / d_H,
          (p - p0) / prior_width ]
    X(x) = sum r^2,   G = 2 J^T r,   H ~ 2 J^T J (Gauss-Newton),

with n the number of liquids, J = dr/dx from the fluctuation-formula derivatives d rho/dp
and dH/dp times dp/dx, and ForceBalance's default denominators d_rho = 0.03 g/mL
(30 kg/m^3) and d_H = 3 kJ/mol. The statistical error of X follows by propagation,
s_X^2 = sum (2 r_i s_r,i)^2.

The step minimizes the quadratic model G.dx + dx.H.dx/2 inside a ball of radius R
(the trust region, in x units) and inside the bounds of x: the exact trust-region
subproblem via the eigen-decomposition of H and a bisection on the Levenberg shift.
A simulated step is judged by :func:`judge_step`: accepted when X did not rise, and the
radius resized by how well the model predicted the change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ffparam.fit.parameters import FitParameters
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.settings import DENSITY_DENOMINATOR_G_ML, HVAP_DENOMINATOR_KCAL_MOL


@dataclass
class ObjectiveTerms:
    """The objective at one x.

    Attributes:
        value: X (including priors); error: its propagated statistical error.
        data_value, prior_value: the two parts of X.
        gradient: G (n_x,); hessian: Gauss-Newton H (n_x, n_x).
        residuals: per liquid (density, hvap) scaled residuals.
        deviations: (n_rows,) computed - experiment of every property row, unscaled
            (g/mL for density rows, kcal/mol for Hvap rows), rows in ``row_labels`` order.
        deviation_jacobian: (n_rows, n_x) d(computed)/dx of those rows.
        deviation_errors: (n_rows,) standard error of each computed value.
        row_labels: (liquid slug, "density" | "hvap") of each row.
    """

    value: float
    error: float
    data_value: float
    prior_value: float
    gradient: np.ndarray
    hessian: np.ndarray
    residuals: dict[str, tuple[float, float]]
    deviations: np.ndarray = field(default_factory=lambda: np.zeros(0))
    deviation_jacobian: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    deviation_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    row_labels: list[tuple[str, str]] = field(default_factory=list)


def physical_jacobian(fit: FitParameters, x: np.ndarray) -> np.ndarray:
    """dp/dx (n_x,) of each group's physical value (diagonal transform)."""
    xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64).requires_grad_()
    (grad,) = torch.autograd.grad(fit.physical(xt).sum(), xt)
    return grad.numpy()


def evaluate_objective(fit: FitParameters, x: np.ndarray, references: Sequence[LiquidReference],
                       results: dict[str, LiquidResult], density_weight: float = 1.0,
                       hvap_weight: float = 1.0,
                       density_denominator_g_ml: float = DENSITY_DENOMINATOR_G_ML,
                       hvap_denominator_kcal_mol: float = HVAP_DENOMINATOR_KCAL_MOL,
                       use_priors: bool = True) -> ObjectiveTerms:
    """X, G, H at ``x`` from the results of ``references`` (keyed by slug)."""
    n = len(references)
    labels = [str(g[0]) for g in fit.groups]
    dpdx = physical_jacobian(fit, x)
    rows, jac, errors = [], [], []
    deviations, raw_jac, raw_errors, row_labels = [], [], [], []
    residuals = {}
    for ref in references:
        res = results[ref.slug]
        pair = []
        for prop, value, error, exp, weight, denom, gradient in (
                ("density", res.density.value, res.density.error, ref.density_g_ml,
                 density_weight, density_denominator_g_ml, res.density_gradient),
                ("hvap", res.hvap.value, res.hvap.error, ref.hvap_kcal_mol, hvap_weight,
                 hvap_denominator_kcal_mol, res.hvap_gradient)):
            scale = math.sqrt(weight / n) / denom
            grad = np.array([gradient[res.keys.index(k)] if k in res.keys else 0.0
                             for k in labels])
            rows.append(scale * (value - exp))
            jac.append(scale * grad * dpdx)
            errors.append(scale * error)
            pair.append(scale * (value - exp))
            deviations.append(value - exp)
            raw_jac.append(grad * dpdx)
            raw_errors.append(error)
            row_labels.append((ref.slug, prop))
        residuals[ref.slug] = (pair[0], pair[1])
    r = np.array(rows)
    j = np.array(jac).reshape(len(rows), fit.size)
    data_value = float(r @ r)
    gradient = 2.0 * j.T @ r
    hessian = 2.0 * j.T @ j
    prior_value = 0.0
    if use_priors:
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        pr = fit.prior_residuals(xt).numpy()
        if pr.size:
            pj = torch.autograd.functional.jacobian(fit.prior_residuals, xt).numpy()
            prior_value = float(pr @ pr)
            gradient = gradient + 2.0 * pj.T @ pr
            hessian = hessian + 2.0 * pj.T @ pj
    error = float(np.sqrt(np.sum((2.0 * r * np.array(errors)) ** 2)))
    return ObjectiveTerms(data_value + prior_value, error, data_value, prior_value, gradient,
                          hessian, residuals, np.array(deviations),
                          np.array(raw_jac).reshape(len(rows), fit.size), np.array(raw_errors),
                          row_labels)


def trust_region_step(gradient: np.ndarray, hessian: np.ndarray, radius: float,
                      lower: np.ndarray | None = None, upper: np.ndarray | None = None,
                      x: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Step dx minimizing G.dx + dx.H.dx/2 with |dx| <= radius, then clipped so that
    x + dx stays inside [lower, upper]; returns (dx, predicted change of X)."""
    g = np.asarray(gradient, dtype=float)
    h = 0.5 * (np.asarray(hessian, dtype=float) + np.asarray(hessian, dtype=float).T)
    evals, evecs = np.linalg.eigh(h)
    gq = evecs.T @ g
    floor = max(0.0, -evals.min()) + 1e-12 * max(1.0, abs(evals).max())

    def step(shift: float) -> np.ndarray:
        return -evecs @ (gq / (evals + shift))

    dx = step(floor)
    if np.linalg.norm(dx) > radius:
        lo, hi = floor, floor + np.linalg.norm(g) / radius + abs(evals).max() + 1.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if np.linalg.norm(step(mid)) > radius:
                lo = mid
            else:
                hi = mid
        dx = step(hi)
    if x is not None and lower is not None and upper is not None:
        dx = np.clip(x + dx, lower, upper) - x
    predicted = float(g @ dx + 0.5 * dx @ h @ dx)
    return dx, predicted


def no_worse_step(terms: ObjectiveTerms, radius: float, margin: float = 0.0,
                  safety: float = 1.0, lower: np.ndarray | None = None,
                  upper: np.ndarray | None = None,
                  x: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """The trust-region step with a guard: no property may get worse in the linear model.

    Minimizes the same quadratic model as :func:`trust_region_step` inside the same ball
    and bounds, subject to, for every property row i (deviation d_i = computed - exp,
    standard error s_i, derivative row J_i),

        |d_i + safety * J_i.dx| <= |d_i| + margin * s_i,

    i.e. no liquid's density or Hvap is predicted to move away from experiment by more than
    ``margin`` of its own error bar (0: not at all), even if the true change is ``safety``
    times the linear prediction (the fluctuation-formula model underestimates large steps:
    the first Sage round moved benzene's Hvap 1.3x further than predicted; see
    benchmarks/RESULTS.md). The constraints are linear pairs, so the problem stays convex;
    SLSQP is started from dx = 0 (always feasible), half the plain trust-region step and
    the plain step, and the best feasible result is kept (dx = 0 if none is better).
    Returns (dx, predicted change of X).
    """
    from scipy.optimize import minimize

    g = np.asarray(terms.gradient, dtype=float)
    h = 0.5 * (terms.hessian + terms.hessian.T)

    def model(dx: np.ndarray) -> float:
        return float(g @ dx + 0.5 * dx @ h @ dx)

    d, jac = terms.deviations, safety * terms.deviation_jacobian
    bound = np.abs(d) + margin * terms.deviation_errors
    n = g.size
    lo = np.full(n, -np.inf) if lower is None or x is None else np.asarray(lower) - x
    hi = np.full(n, np.inf) if upper is None or x is None else np.asarray(upper) - x
    constraints = [
        {"type": "ineq", "fun": lambda dx: bound - (d + jac @ dx), "jac": lambda dx: -jac},
        {"type": "ineq", "fun": lambda dx: bound + (d + jac @ dx), "jac": lambda dx: jac},
        {"type": "ineq", "fun": lambda dx: radius**2 - dx @ dx,
         "jac": lambda dx: -2.0 * dx[None, :]},
    ]
    start, _ = trust_region_step(g, h, radius, lower, upper, x)
    scale = max(1.0, float(np.abs(g).max()))
    best = np.zeros(n)
    best_value = 0.0
    for guess in (np.zeros(n), 0.5 * start, start):
        out = minimize(lambda dx: model(dx) / scale, guess,
                       jac=lambda dx: (g + h @ dx) / scale, method="SLSQP",
                       bounds=list(zip(lo, hi)), constraints=constraints,
                       options={"maxiter": 500, "ftol": 1e-12})
        dx = out.x
        feasible = (np.all(np.abs(d + jac @ dx) <= bound + 1e-9)
                    and dx @ dx <= radius**2 * (1 + 1e-9))
        value = model(dx)
        if feasible and value < best_value:
            best, best_value = dx, value
    return best, best_value


@dataclass(frozen=True)
class StepVerdict:
    """How a simulated trust-region step went.

    Attributes:
        accepted: the objective did not rise (the step becomes the new centre).
        actual_change: simulated X minus the centre's X.
        model_ratio: actual / predicted change (0 when nothing was predicted).
        next_trust_radius: radius of the next step, x units.
    """

    accepted: bool
    actual_change: float
    model_ratio: float
    next_trust_radius: float


def judge_step(actual_change: float, predicted_change: float, step_norm: float,
               radius: float, min_radius: float, max_radius: float) -> StepVerdict:
    """Accept a step whose simulated objective did not rise; halve the radius after a
    rejected step or a poor model (ratio below 0.25), grow it 1.5x after a good model
    (ratio above 0.5) on a step that reached the radius; radii stay in
    [``min_radius``, ``max_radius``]."""
    accepted = actual_change <= 0.0
    ratio = actual_change / predicted_change if predicted_change else 0.0
    if not accepted or ratio < 0.25:
        radius = max(radius / 2, min_radius)
    elif ratio > 0.5 and step_norm >= 0.9 * radius:
        radius = min(radius * 1.5, max_radius)
    return StepVerdict(accepted, actual_change, ratio, radius)
