"""The ffparam side of ``bench_fit.py``: ffparam's objective fitted with ffparam's
trust-region least squares (autograd Jacobian) or with scipy ``least_squares`` on the same
residuals (2-point finite differences), counting residual evaluations and relaxations."""

from __future__ import annotations

import os
import time

import numpy as np

from fit_bench.problem import FD_STEP, K_DIHEDRAL, K_POSITION, REFERENCE, FitRun, Problem


class _Counter:
    def __init__(self, function):
        self.function = function
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def ffparam_fit(problem: Problem, mode: str, jacobian: str) -> FitRun:
    """Fit with ffparam's objective: ``jacobian`` "autograd" (ffparam's least_squares) or
    "fd" (scipy least_squares, 2-point finite differences on the same residuals)."""
    import scipy.optimize
    import torch

    from ffparam.fit.objective import Objective
    from ffparam.fit.optimizers import least_squares
    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.targets import torsion as torsion_module
    from ffparam.fit.targets.torsion import TorsionProfileTarget

    relax = torsion_module.relax
    relax_counter = _Counter(relax)
    torsion_module.relax = relax_counter
    load0 = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        target = TorsionProfileTarget(
            "torsion",
            problem.system,
            problem.profile,
            mode=mode,
            reference=REFERENCE[mode],
            k_dihedral=K_DIHEDRAL,
            k_position=K_POSITION,
        )
        fit = FitParameters.from_free(problem.system.parameters)
        objective = Objective([target], fit, use_priors=False)
        residuals = _Counter(objective.residuals)
        objective.residuals = residuals
        if jacobian == "autograd":
            result = least_squares(objective)
            x, iterations = result.x, len(result.history) - 1
            value0, value = result.objective_before, result.objective_after
        else:
            x0 = np.zeros(fit.size)

            def function(x: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return residuals(torch.as_tensor(x, dtype=torch.float64)).numpy()

            value0 = float(function(x0) @ function(x0))
            out = scipy.optimize.least_squares(
                function,
                x0,
                jac="2-point",
                method="trf",
                diff_step=FD_STEP,
                xtol=1e-10,
                ftol=1e-10,
                gtol=1e-10,
            )
            x, iterations, value = out.x, int(out.njev), float(2 * out.cost)
        seconds = time.perf_counter() - start
    finally:
        torsion_module.relax = relax
    k = fit.physical(torch.as_tensor(x, dtype=torch.float64)).numpy()
    return FitRun(
        k,
        seconds,
        iterations,
        residuals.calls,
        relax_counter.calls,
        value0,
        value,
        (load0, os.getloadavg()[0]),
    )
