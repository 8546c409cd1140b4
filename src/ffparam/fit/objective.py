"""Objective = sum of weighted target residuals + priors, with an autograd Jacobian.

The residual vector is r(x) = [sqrt(w_t / n_t) (computed - reference)_t / d_t for each
target t] followed by the prior residuals (p - p0)/width, so the objective is
sum(r^2) = sum_t w_t mean(((c - ref)/d)^2) + sum_priors ((p - p0)/width)^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import InputError, NonFiniteError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target

Tensor = torch.Tensor


class Objective:
    """Weighted least-squares objective over targets plus Gaussian priors."""

    def __init__(self, targets: Sequence[Target], fit: FitParameters,
                 use_priors: bool = True) -> None:
        if not targets:
            raise InputError("the objective has no targets")
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise InputError(f"target names must be unique: {names}")
        self.targets = list(targets)
        self.fit = fit
        self.use_priors = use_priors
        fit.check_used([s for t in self.targets for s in t.systems])

    def prepare(self, x: np.ndarray | Tensor) -> None:
        xt = torch.as_tensor(x, dtype=torch.float64).detach()
        for target in self.targets:
            target.prepare(self.fit, xt)

    def residual_blocks(self, x: Tensor) -> dict[str, Tensor]:
        """Scaled residuals per target (and ``priors``), differentiable in ``x``."""
        blocks = {}
        for target in self.targets:
            r = target.residuals(self.fit, x)
            if r.numel() == 0:
                raise InputError(f"target {target.name} has no data points")
            blocks[target.name] = r * (math.sqrt(target.weight / r.numel())
                                       / target.denominator)
        if self.use_priors:
            blocks["priors"] = self.fit.prior_residuals(x)
        return blocks

    def residuals(self, x: Tensor) -> Tensor:
        """The whole scaled residual vector (m,)."""
        r = torch.cat(list(self.residual_blocks(x).values()))
        if not torch.all(torch.isfinite(r)):
            bad = self.fit.updated_parameters(x.detach().numpy())
            raise NonFiniteError(
                "objective is NaN/inf at parameters "
                + ", ".join(f"{lab}={bad.sections[g[0].section][g[0].id].values[g[0].field]:.6g}"
                            for lab, g in zip(self.fit.labels, self.fit.groups))
            )
        return r

    def value(self, x: np.ndarray | Tensor) -> float:
        xt = torch.as_tensor(x, dtype=torch.float64)
        with torch.no_grad():
            return float((self.residuals(xt) ** 2).sum())

    def residuals_and_jacobian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (m,) and exact Jacobian (m, n) by reverse-mode autograd."""
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
        try:  # vmap over the backward passes: same numbers, several times faster
            jac = torch.autograd.functional.jacobian(self.residuals, xt, vectorize=True)
        except RuntimeError:  # an op without a batching rule: one backward pass per row
            jac = torch.autograd.functional.jacobian(self.residuals, xt, vectorize=False)
        with torch.no_grad():
            r = self.residuals(xt)
        return r.numpy(), jac.detach().numpy()

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64).requires_grad_()
        value = (self.residuals(xt) ** 2).sum()
        (grad,) = torch.autograd.grad(value, xt)
        return value.item(), grad.numpy()

    def target_metrics(self, x: np.ndarray | Tensor) -> dict[str, dict[str, float]]:
        xt = torch.as_tensor(x, dtype=torch.float64).detach()
        out = {t.name: t.metrics(self.fit, xt) for t in self.targets}
        blocks = self.residual_blocks(xt)
        for t in self.targets:
            out[t.name]["objective"] = float((blocks[t.name].detach() ** 2).sum())
        if self.use_priors:
            out["priors"] = {"objective": float((blocks["priors"].detach() ** 2).sum())}
        return out
