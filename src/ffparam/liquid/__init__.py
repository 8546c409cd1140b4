"""Condensed phase: liquid density and heat of vaporization in OpenMM, their derivatives
with respect to Lennard-Jones parameters (fluctuation formula, PyTorch), and fits of LJ
parameters to experiment (ForceBalance-style trust region; the resumable fit workflow is
:mod:`ffparam.workflows.liquid_fit`). See docs/liquid.md."""

from ffparam.liquid.data import LiquidReference, read_liquids_csv
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.run import run_liquid
from ffparam.liquid.settings import LiquidFitSettings, LiquidSettings
from ffparam.liquid.statistics import Estimate

__all__ = [
    "Estimate",
    "LiquidFitSettings",
    "LiquidJob",
    "LiquidReference",
    "LiquidResult",
    "LiquidSettings",
    "read_liquids_csv",
    "run_liquid",
    "simulate_liquid",
]
