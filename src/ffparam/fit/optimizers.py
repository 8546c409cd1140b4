"""Optimizers over the mathematical parameter vector ``x`` of an :class:`Objective`.

* ``least_squares`` (default): trust-region least squares (scipy ``trf``, or ``lm`` when
  unbounded and asked for) driven by the exact autograd Jacobian.
* ``lbfgs``: L-BFGS-B on sum(r^2) with the autograd gradient, respecting bounds.
* ``cmaes`` and ``tpe``: derivative-free, through optuna, for noisy objectives; they need
  finite bounds on ``x`` (the physical bounds, else +/- ``search_radius`` in ``x``).

Every run returns a :class:`FitResult` whose ``history`` has the objective at each
iteration (and the parameters), plus per-target metrics before and after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import torch

from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.parameters import FitParameters
from ffparam.params.parameter_set import ParameterSet


@dataclass
class FitResult:
    """Outcome of an optimization.

    Attributes:
        x: final mathematical vector; ``parameters``: the master ParameterSet with fitted
        values; ``history``: one dict per iteration {iteration, objective, x, physical};
        ``metrics_before`` / ``metrics_after``: per-target metrics; ``wall_time`` in s.
    """

    x: np.ndarray
    parameters: ParameterSet
    objective_before: float
    objective_after: float
    history: list[dict] = field(default_factory=list)
    metrics_before: dict = field(default_factory=dict)
    metrics_after: dict = field(default_factory=dict)
    optimizer: str = ""
    message: str = ""
    n_evaluations: int = 0
    wall_time: float = 0.0
    fit: FitParameters | None = None

    def to_json(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "message": self.message,
            "objective_before": self.objective_before,
            "objective_after": self.objective_after,
            "n_evaluations": self.n_evaluations,
            "wall_time_s": self.wall_time,
            "metrics_before": self.metrics_before,
            "metrics_after": self.metrics_after,
            "history": self.history,
        }


class _Recorder:
    def __init__(self, objective: Objective, progress: Callable[[int, float], None] | None):
        self.objective = objective
        self.history: list[dict] = []
        self.progress = progress
        self.evaluations = 0

    def record(self, x: np.ndarray, value: float) -> None:
        physical = self.objective.fit.physical(torch.as_tensor(x, dtype=torch.float64))
        self.history.append({"iteration": len(self.history), "objective": float(value),
                             "x": [float(v) for v in x],
                             "physical": [float(v) for v in physical]})
        if self.progress:
            self.progress(len(self.history) - 1, float(value))


def _finish(objective: Objective, x0: np.ndarray, x: np.ndarray, recorder: _Recorder,
            name: str, message: str, start: float, before: dict, value0: float) -> FitResult:
    value = objective.value(x)
    if not recorder.history or recorder.history[-1]["objective"] != value:
        recorder.record(x, value)
    return FitResult(
        x=np.asarray(x, dtype=float),
        parameters=objective.fit.updated_parameters(x),
        objective_before=value0,
        objective_after=value,
        history=recorder.history,
        metrics_before=before,
        metrics_after=objective.target_metrics(x),
        optimizer=name,
        message=message,
        n_evaluations=recorder.evaluations,
        wall_time=time.perf_counter() - start,
        fit=objective.fit,
    )


def least_squares(objective: Objective, x0: np.ndarray | None = None, method: str = "trf",
                  max_iterations: int = 100, tolerance: float = 1e-8,
                  progress: Callable[[int, float], None] | None = None) -> FitResult:
    """Trust-region / Levenberg-Marquardt least squares with the autograd Jacobian.

    ``tolerance`` is scipy's relative ``ftol``/``xtol`` (stop when an accepted step changes
    the objective or the parameters by less than that fraction): 1e-8 stops a relaxed
    torsion fit once the change is below what the MM relaxation itself resolves, and still
    recovers noise-free synthetic parameters to better than 1e-6 relative."""
    start = time.perf_counter()
    x0 = np.zeros(objective.fit.size) if x0 is None else np.asarray(x0, float)
    lower, upper = objective.fit.bounds_x()
    bounded = np.isfinite(lower).any() or np.isfinite(upper).any()
    if method == "lm" and bounded:
        raise InputError("method 'lm' cannot handle bounds; use 'trf'")
    recorder = _Recorder(objective, progress)
    before = objective.target_metrics(x0)
    value0 = objective.value(x0)
    recorder.record(x0, value0)
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.asarray(x, float).tobytes()
        if key not in cache:
            cache.clear()
            recorder.evaluations += 1
            cache[key] = objective.residuals_and_jacobian(x)
        return cache[key]

    def jac(x: np.ndarray) -> np.ndarray:
        r, j = evaluate(x)
        recorder.record(x, float(r @ r))  # one Jacobian per accepted iterate
        return j

    x_start = np.clip(x0, lower, upper)
    result = scipy.optimize.least_squares(
        lambda x: evaluate(x)[0], x_start, jac=jac, method=method,
        bounds=(lower, upper) if method != "lm" else (-np.inf, np.inf),
        max_nfev=max_iterations * (1 if method != "lm" else 10), xtol=tolerance,
        ftol=tolerance, gtol=tolerance * 1e-2, x_scale=1.0,
    )
    return _finish(objective, x0, result.x, recorder, f"least_squares/{method}",
                   result.message, start, before, value0)


def lbfgs(objective: Objective, x0: np.ndarray | None = None, max_iterations: int = 500,
          tolerance: float = 1e-12, progress: Callable[[int, float], None] | None = None
          ) -> FitResult:
    """L-BFGS-B on the objective with its autograd gradient and the bounds of ``x``."""
    start = time.perf_counter()
    x0 = np.zeros(objective.fit.size) if x0 is None else np.asarray(x0, float)
    lower, upper = objective.fit.bounds_x()
    recorder = _Recorder(objective, progress)
    before = objective.target_metrics(x0)
    value0 = objective.value(x0)
    recorder.record(x0, value0)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        recorder.evaluations += 1
        return objective.value_and_gradient(x)

    result = scipy.optimize.minimize(
        fun, np.clip(x0, lower, upper), jac=True, method="L-BFGS-B",
        bounds=list(zip(lower, upper)),
        callback=lambda xk: recorder.record(xk, objective.value(xk)),
        options={"maxiter": max_iterations, "ftol": tolerance, "gtol": tolerance * 1e2},
    )
    return _finish(objective, x0, result.x, recorder, "lbfgs", str(result.message), start,
                   before, value0)


def derivative_free(objective: Objective, sampler: str = "cmaes", n_trials: int = 300,
                    search_radius: float = 3.0, seed: int = 0,
                    progress: Callable[[int, float], None] | None = None) -> FitResult:
    """CMA-ES (``cmaes``) or TPE (``tpe``) through optuna over bounded ``x``.

    Unbounded directions are searched within +/- ``search_radius`` (in ``x`` units: prior
    widths for linear parameters, e-folds for log parameters).
    """
    import optuna

    start = time.perf_counter()
    n = objective.fit.size
    lower, upper = objective.fit.bounds_x()
    lower = np.where(np.isfinite(lower), lower, -search_radius)
    upper = np.where(np.isfinite(upper), upper, search_radius)
    x0 = np.clip(np.zeros(n), lower, upper)
    recorder = _Recorder(objective, progress)
    before = objective.target_metrics(x0)
    value0 = objective.value(x0)
    recorder.record(x0, value0)
    if sampler == "cmaes":
        chosen = optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=1)
    elif sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    else:
        raise InputError(f"unknown derivative-free sampler {sampler!r}; use 'cmaes' or 'tpe'")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=chosen)
    study.enqueue_trial({f"x{i}": float(x0[i]) for i in range(n)})
    best = [value0]

    def trial_objective(trial: optuna.Trial) -> float:
        x = np.array([trial.suggest_float(f"x{i}", lower[i], upper[i]) for i in range(n)])
        recorder.evaluations += 1
        try:
            value = objective.value(x)
        except Exception:  # a failed evaluation is a bad point for a sampler, not a crash
            return float("inf")
        if value < best[0]:
            best[0] = value
            recorder.record(x, value)
        return value

    study.optimize(trial_objective, n_trials=n_trials)
    x_best = np.array([study.best_params[f"x{i}"] for i in range(n)])
    return _finish(objective, x0, x_best, recorder, f"derivative_free/{sampler}",
                   f"{n_trials} trials", start, before, value0)


OPTIMIZERS: dict[str, Callable[..., FitResult]] = {
    "least_squares": least_squares,
    "lm": lambda objective, **kw: least_squares(objective, method="lm", **kw),
    "lbfgs": lbfgs,
    "cmaes": lambda objective, **kw: derivative_free(objective, sampler="cmaes", **kw),
    "tpe": lambda objective, **kw: derivative_free(objective, sampler="tpe", **kw),
}
"""Name -> optimizer function (objective, **options) -> FitResult."""


def optimize(objective: Objective, optimizer: str = "least_squares", **options) -> FitResult:
    """Run the named optimizer (see :data:`OPTIMIZERS`)."""
    try:
        function = OPTIMIZERS[optimizer]
    except KeyError:
        raise InputError(f"unknown optimizer {optimizer!r}; use one of "
                         f"{', '.join(OPTIMIZERS)}") from None
    return function(objective, **options)
