"""Workflows: thin layers that chain the boxes into one command each.

* :func:`run_bespoke` with :class:`BespokeSettings` -> :class:`BespokeResult` (its
  ``metrics`` a :class:`~ffparam.report.bespoke_metrics.BespokeMetrics`): ``ffparam bespoke``;
* :func:`run_fit` of a spec from :func:`load_fit_spec` -> :class:`FitOutcome`:
  ``ffparam fit SPEC.yaml``.
"""

from __future__ import annotations

from ffparam.fit.spec import FitSettings, load_fit_spec
from ffparam.workflows.bespoke import BespokeResult, BespokeSettings, run_bespoke
from ffparam.workflows.fit import FitOutcome, run_fit

__all__ = [
    "BespokeResult",
    "BespokeSettings",
    "FitOutcome",
    "FitSettings",
    "load_fit_spec",
    "run_bespoke",
    "run_fit",
]
