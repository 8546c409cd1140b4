"""The Target contract: reference data + a way to compute it -> weighted residuals.

A target evaluates one or more :class:`~ffparam.params.ParameterizedSystem` with parameter
values produced by :class:`~ffparam.fit.parameters.FitParameters` from the optimizer's
vector ``x``. Its :meth:`Target.residuals` returns the *unweighted* residuals
(computed - reference) in :attr:`Target.unit`; the objective scales them by
``sqrt(weight / n) / denominator`` so each target contributes ``weight * mean((r/d)^2)``.
Data loading happens outside ``__init__`` (constructors take arrays, not file names).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ffparam.fit.parameters import FitParameters
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor


class Target(ABC):
    """Base class of every fitting target.

    Attributes:
        name: label used in histories, reports and error messages.
        weight: relative weight in the objective (dimensionless).
        denominator: residual scale in :attr:`unit` (like ForceBalance's denominators):
            a residual of one denominator costs ``weight`` in the objective.
        unit: unit of the residuals, e.g. ``kcal/mol``.
    """

    unit: str = ""

    def __init__(self, name: str, weight: float = 1.0, denominator: float = 1.0) -> None:
        from ffparam.errors import InputError

        if not weight >= 0:
            raise InputError(f"target {name}: weight must be >= 0, got {weight}")
        if not denominator > 0:
            raise InputError(f"target {name}: denominator must be > 0, got {denominator}")
        self.name = name
        self.weight = float(weight)
        self.denominator = float(denominator)

    @property
    @abstractmethod
    def systems(self) -> list[ParameterizedSystem]:
        """The systems whose parameters this target reads."""

    @abstractmethod
    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Unweighted residuals (computed - reference), shape (m,), in :attr:`unit`."""

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        """Human-facing numbers for reports; by default the RMSE of the residuals."""
        with torch.no_grad():
            r = self.residuals(fit, x)
        return {f"rmse [{self.unit}]": float(torch.sqrt(torch.mean(r**2)))}

    def prepare(self, fit: FitParameters, x: Tensor) -> None:  # noqa: B027 - optional hook
        """Called once per optimizer iteration before residuals/Jacobian (e.g. to relax
        geometries); the default does nothing."""
