"""Condensed phase: liquid density and heat of vaporization in OpenMM, their derivatives
with respect to Lennard-Jones parameters (fluctuation formula, PyTorch), and fits of LJ
parameters to experiment (ForceBalance-style trust region). See docs/liquid.md."""

from ffparam.liquid.data import LiquidReference, read_liquids_csv
from ffparam.liquid.fit import LiquidFitOptions, LiquidFitOutcome, fit_liquids
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.properties import LiquidResult
from ffparam.liquid.run import run_liquid
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.statistics import Estimate

__all__ = [
    "Estimate",
    "LiquidFitOptions",
    "LiquidFitOutcome",
    "LiquidJob",
    "LiquidReference",
    "LiquidResult",
    "LiquidSettings",
    "fit_liquids",
    "read_liquids_csv",
    "run_liquid",
    "simulate_liquid",
]
