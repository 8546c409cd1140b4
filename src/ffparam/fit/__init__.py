"""Fitting engine: targets, priors and optimizers that turn reference data into parameters.

What a user calls (the ``ffparam fit SPEC.yaml`` workflow itself is
:func:`ffparam.workflows.run_fit`):

* :func:`load_fit_spec` -> :class:`FitSettings` (the YAML spec, validated);
* :class:`Objective` of :class:`~ffparam.fit.targets.Target` objects over
  :class:`FitParameters`, minimized by :func:`optimize` -> :class:`FitResult`;
* :func:`laplace_uncertainty` (posterior covariance of the fitted parameters at the
  optimum) -> :class:`ParameterUncertainty`, :func:`propagated_sigma` (its band on any
  model output);
* :func:`make_bespoke_torsions` (SMIRKS torsions that match one bond) ->
  :class:`BespokeTorsions`;
* :func:`resp` (two-stage RESP charges) and :func:`modified_seminario` (bond and angle force
  constants from a Hessian).
"""

from __future__ import annotations

from ffparam.fit.bespoke_torsions import BespokeTorsions, make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import OPTIMIZERS, FitResult, optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.resp import RESPResult, resp
from ffparam.fit.seminario import SeminarioResult, modified_seminario
from ffparam.fit.spec import FitSettings, load_fit_spec
from ffparam.fit.targets import Target
from ffparam.fit.uncertainty import ParameterUncertainty, laplace_uncertainty, propagated_sigma

__all__ = [
    "OPTIMIZERS",
    "BespokeTorsions",
    "FitParameters",
    "FitResult",
    "FitSettings",
    "Objective",
    "ParameterUncertainty",
    "RESPResult",
    "SeminarioResult",
    "Target",
    "laplace_uncertainty",
    "load_fit_spec",
    "make_bespoke_torsions",
    "modified_seminario",
    "optimize",
    "propagated_sigma",
    "resp",
]
