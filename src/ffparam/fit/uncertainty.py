"""Parameter uncertainty of a fit: the Laplace approximation at the optimum.

The objective (:class:`~ffparam.fit.objective.Objective`) is
sum(r_data^2) + sum(r_prior^2), with data residuals r = sqrt(w_t / n_t) (c - ref) / d_t and
prior residuals (p - p0) / width. Its data weights are *relative* (a target's mean squared
error times its weight), not a likelihood: nothing in them says how large the misfit of a
torsion profile is expected to be. So the data block is read as a Gaussian likelihood with
one unknown noise variance s^2, estimated at the optimum from the misfit itself (as
``scipy.optimize.curve_fit`` does with ``absolute_sigma=False``):

    s^2 = sum(r_data^2) / (m_data - n)          (m_data data residuals, n parameters)

while the priors stay what they say (Gaussian, widths in physical units, not rescaled). The
posterior covariance in the optimizer's space ``x`` is then the inverse Gauss-Newton
Hessian of -log posterior:

    Sigma_x = (J_d^T J_d / s^2 + J_p^T J_p)^-1

J_d, J_p the autograd Jacobians of the data and prior residuals (J_p^T J_p is the prior
precision in ``x``). Why not the plain (J^T J)^-1: it would make sigma depend on the
arbitrary target weight and on the number of scan points through the 1/n_t of the mean,
and would not shrink when the model fits the data better. Pass ``residual_variance=1`` when
the residuals are already in units of their noise (a true likelihood).

Physical units: Sigma_p = D Sigma_x D^T with D = dp/dx the transform's Jacobian (diagonal:
the prior width for ``linear``, p for ``log``; the delta method). A parameter at a bound
gets the same formula (the band is then an approximation on the open side only).

A model quantity f(x) (a torsion profile, kcal/mol) gets the propagated variance
diag(J_f Sigma_x J_f^T), J_f by autograd (:func:`propagated_sigma`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.params.parameter_set import ParameterKey

Tensor = torch.Tensor


@dataclass
class ParameterUncertainty:
    """Laplace posterior of a fit.

    Attributes:
        labels: one per entry of ``x`` (as :attr:`FitParameters.labels`); groups: the
            parameter keys each entry drives (:attr:`FitParameters.groups`).
        x: the optimum in the optimizer's space.
        covariance_x: (n, n) posterior covariance of ``x``.
        values: (n,) physical values at the optimum (internal units: kcal/mol, rad, ...).
        covariance: (n, n) posterior covariance of the physical values.
        residual_variance: s^2 used to scale the data block (dimensionless, objective units).
        n_data: number of data residuals; n_parameters: size of ``x``.
    """

    labels: list[str]
    groups: list[list[ParameterKey]]
    x: np.ndarray
    covariance_x: np.ndarray
    values: np.ndarray
    covariance: np.ndarray
    residual_variance: float
    n_data: int

    @property
    def n_parameters(self) -> int:
        return len(self.x)

    @property
    def sigma(self) -> np.ndarray:
        """Posterior standard deviation of each physical value (its internal unit)."""
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))


def _split_jacobian(objective: Objective, x: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Data residuals, data Jacobian, prior residuals, prior Jacobian at ``x``."""
    r, jac = objective.residuals_and_jacobian(x)
    xt = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
    with torch.no_grad():
        blocks = objective.residual_blocks(xt)
    n_prior = int(blocks["priors"].numel()) if "priors" in blocks else 0
    m = len(r) - n_prior
    return r[:m], jac[:m], r[m:], jac[m:]


def laplace_uncertainty(objective: Objective, x: np.ndarray,
                        residual_variance: float | None = None) -> ParameterUncertainty:
    """Posterior covariance of the parameters at the optimum ``x`` (see the module
    docstring). ``residual_variance``: s^2 (None: estimated from the misfit).

    Raises InputError when the noise variance cannot be estimated (no more data residuals
    than parameters) or the posterior precision is singular (a parameter the data and the
    priors leave undetermined)."""
    x = np.asarray(x, dtype=float)
    r_d, j_d, _, j_p = _split_jacobian(objective, x)
    n = len(x)
    if residual_variance is None:
        dof = len(r_d) - n
        if dof <= 0:
            raise InputError(f"cannot estimate the residual variance: {len(r_d)} data "
                             f"residual(s) for {n} parameter(s)")
        residual_variance = max(float(r_d @ r_d) / dof, np.finfo(float).tiny)
    elif not residual_variance > 0:
        raise InputError(f"residual_variance must be positive, got {residual_variance}")
    precision = j_d.T @ j_d / residual_variance + j_p.T @ j_p
    try:
        cov_x = np.linalg.inv(precision)
    except np.linalg.LinAlgError:
        raise InputError("the posterior precision is singular: some fitted parameter is "
                         "determined neither by the data nor by a prior") from None
    cov_x = 0.5 * (cov_x + cov_x.T)
    fit = objective.fit
    xt = torch.as_tensor(x, dtype=torch.float64)
    d = torch.autograd.functional.jacobian(fit.physical, xt).numpy()
    values = fit.physical(xt).detach().numpy()
    return ParameterUncertainty(fit.labels, [list(g) for g in fit.groups], x, cov_x, values,
                                d @ cov_x @ d.T, float(residual_variance), len(r_d))


def propagated_sigma(function: Callable[[Tensor], Tensor], uncertainty: ParameterUncertainty
                     ) -> np.ndarray:
    """Standard deviation of each output of ``function(x)`` (differentiable in ``x``):
    sqrt(diag(J Sigma_x J^T)) with J the autograd Jacobian at the optimum (same units as
    the outputs)."""
    xt = torch.as_tensor(uncertainty.x, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(function, xt).detach().numpy()
    jac = jac.reshape(-1, len(uncertainty.x))
    var = np.einsum("ij,jk,ik->i", jac, uncertainty.covariance_x, jac)
    return np.sqrt(np.clip(var, 0.0, None))


__all__ = ["ParameterUncertainty", "laplace_uncertainty", "propagated_sigma"]
