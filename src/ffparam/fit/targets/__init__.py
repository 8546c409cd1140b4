"""Fitting targets: weighted, differentiable residuals against reference data."""

from ffparam.fit.targets.base import Target

__all__ = ["Target"]
