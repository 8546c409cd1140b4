"""Workflows: thin layers that chain the boxes into one command each.

* :func:`run_bespoke` with :class:`BespokeSettings` -> :class:`BespokeResult` (its
  ``metrics`` a :class:`~ffparam.report.bespoke_metrics.BespokeMetrics`): ``ffparam bespoke``;
* :func:`run_fit` of a spec from :func:`load_fit_spec` -> :class:`FitOutcome`:
  ``ffparam fit SPEC.yaml``;
* :func:`fit_liquids` with :class:`~ffparam.liquid.settings.LiquidFitSettings` ->
  :class:`LiquidFitOutcome` (a resumable :class:`LiquidFit`): ``ffparam liquid fit``;
* :func:`train_model` (any model of :data:`ffparam.ml.registry.MODELS`), :func:`evaluate`,
  :func:`md_from_files`: ``ffparam mlp train|evaluate|md``.

The names are imported on first use (PEP 562), so importing one workflow module does not
load the others (the liquid and ML stacks are heavy).
"""

from ffparam import lazy_exports

_WHERE = {
    "BespokeResult": "ffparam.workflows.bespoke",
    "BespokeSettings": "ffparam.workflows.bespoke",
    "run_bespoke": "ffparam.workflows.bespoke",
    "FitOutcome": "ffparam.workflows.fit",
    "run_fit": "ffparam.workflows.fit",
    "FitSettings": "ffparam.fit.spec",
    "load_fit_spec": "ffparam.fit.spec",
    "LiquidFit": "ffparam.workflows.liquid_fit",
    "LiquidFitOutcome": "ffparam.workflows.liquid_fit",
    "fit_liquids": "ffparam.workflows.liquid_fit",
    "train_model": "ffparam.workflows.mlp",
    "evaluate": "ffparam.workflows.mlp",
    "md_from_files": "ffparam.workflows.mlp",
}

__all__ = [
    "BespokeResult",
    "BespokeSettings",
    "FitOutcome",
    "FitSettings",
    "LiquidFit",
    "LiquidFitOutcome",
    "evaluate",
    "fit_liquids",
    "load_fit_spec",
    "md_from_files",
    "run_bespoke",
    "run_fit",
    "train_model",
]

__getattr__ = lazy_exports(__name__, _WHERE)
