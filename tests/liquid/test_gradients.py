"""Fluctuation-formula derivative of the density against finite differences of two
independent simulations (tetrachloromethane, whose density is set by the Cl sigma; 24
molecules, 24 ps each). The default test checks the sign and agreement within three
combined standard errors; the slow test repeats it with longer runs for the density and
the heat of vaporization of methanol."""

from __future__ import annotations

import math

import pytest

from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.prepare import prepare_system
from ffparam.params.parameter_set import ParameterKey
from tests.liquid.conftest import tiny_settings


def _runs(system, key, step, settings, tmp_path, guess):
    i = system.parameters.index(key)
    out = {}
    for tag, shift in (("centre", 0.0), ("plus", step), ("minus", -step)):
        values = system.parameters.vector()
        values[i] += shift
        moved = system.with_parameters(system.parameters.with_vector(values))
        job = LiquidJob(tag, moved, 298.15, 1.0, tmp_path / tag, settings,
                        density_guess_g_ml=guess, gradient_keys=[key])
        out[tag] = simulate_liquid(job)
    return out


def _finite_difference(runs, prop, step):
    plus, minus = getattr(runs["plus"], prop), getattr(runs["minus"], prop)
    return (plus.value - minus.value) / (2 * step), math.hypot(plus.error, minus.error) / (
        2 * step)


def test_density_derivative_sign_matches_finite_difference(tmp_path):
    system = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    key = ParameterKey("vdW", "[#17:1]", "sigma")
    settings = tiny_settings(n_molecules=24, equilibration_ps=8.0, production_ps=24.0,
                             save_interval_ps=0.2, checkpoint_interval_ps=24.0,
                             gas_equilibration_ps=1.0, gas_production_ps=4.0,
                             gas_save_interval_ps=0.5, pack_density_factor=0.95, seed=1)
    runs = _runs(system, key, 0.05, settings, tmp_path, 1.7)
    analytic = runs["centre"].density_gradient[0]
    analytic_error = runs["centre"].density_gradient_error[0]
    numeric, numeric_error = _finite_difference(runs, "density", 0.05)
    # larger Cl atoms, lower density (about -1 g/mL per Angstrom here)
    assert numeric < -3 * numeric_error
    assert analytic < 0 < analytic_error
    assert abs(analytic - numeric) < 3 * math.hypot(analytic_error, numeric_error)


@pytest.mark.slow
def test_methanol_derivatives_within_statistical_error(methanol_am1bcc, tmp_path):
    """80 molecules, 300 ps per run: d density / d sigma(O) and d Hvap / d epsilon(C)."""
    settings = tiny_settings(n_molecules=80, cutoff_a=7.0, switch_a=6.0,
                             equilibration_ps=30.0, production_ps=300.0, save_interval_ps=0.5,
                             checkpoint_interval_ps=50.0, gas_production_ps=2000.0,
                             gas_save_interval_ps=0.5)
    for key, step, prop in ((ParameterKey("vdW", "[#8X2H1+0:1]", "sigma"), 0.06, "density"),
                            (ParameterKey("vdW", "[#6X4:1]", "epsilon"), 0.02, "hvap")):
        runs = _runs(methanol_am1bcc, key, step, settings, tmp_path / key.field, 0.79)
        gradient = getattr(runs["centre"], f"{prop}_gradient")[0]
        error = getattr(runs["centre"], f"{prop}_gradient_error")[0]
        numeric, numeric_error = _finite_difference(runs, prop, step)
        assert abs(gradient - numeric) < 3 * math.hypot(error, numeric_error), (prop, gradient,
                                                                                 numeric)
