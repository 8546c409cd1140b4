"""Multi-state (MBAR) reweighting of finished liquid runs, against the runs themselves,
single-state exponential reweighting and the fluctuation-formula derivatives; and the
step that optimizes the objective on it (tetrachloromethane, 24 molecules, 24 ps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.fit.parameters import FitParameters
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.fit import free_vdw_parameters
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.mbar import MultiStateReweighter, reweighted_step
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.reweight import reweight_liquid
from ffparam.params.parameter_set import ParameterKey
from tests.liquid.conftest import tiny_settings

pytestmark = pytest.mark.xdist_group("mbar")

SIGMA = ParameterKey("vdW", "[#17:1]", "sigma")
EPSILON = ParameterKey("vdW", "[#17:1]", "epsilon")


@pytest.fixture(scope="module")
def ccl4_runs(tmp_path_factory):
    """Two runs, the second with the Cl sigma 0.03 A larger."""
    system = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    settings = tiny_settings(n_molecules=24, equilibration_ps=8.0, production_ps=24.0,
                             save_interval_ps=0.2, checkpoint_interval_ps=24.0,
                             gas_equilibration_ps=1.0, gas_production_ps=20.0,
                             gas_save_interval_ps=0.2, pack_density_factor=0.95, seed=1)
    root = tmp_path_factory.mktemp("ccl4")
    runs = []
    for k, shift in enumerate((0.0, 0.03)):
        values = system.parameters.vector()
        values[system.parameters.index(SIGMA)] += shift
        moved = system.with_parameters(system.parameters.with_vector(values))
        job = LiquidJob(f"ccl4_{k}", moved, 298.15, 1.0, root / f"run{k}", settings,
                        density_guess_g_ml=1.58, gradient_keys=[SIGMA, EPSILON])
        runs.append((job.directory, values, simulate_liquid(job)))
    return system, settings, runs


def test_one_run_reproduces_itself_and_exponential_reweighting(ccl4_runs):
    system, settings, runs = ccl4_runs
    directory, values, result = runs[0]
    rw = MultiStateReweighter(system, settings, 298.15, [(directory, values)])
    same = rw.predict(values)
    assert float(same["density"]) == pytest.approx(result.density.value, rel=1e-10)
    assert float(same["hvap"]) == pytest.approx(result.hvap.value, rel=1e-10)
    moved = values.copy()
    moved[system.parameters.index(EPSILON)] *= 1.02
    other = rw.predict(moved)
    single = reweight_liquid(directory, system.with_parameters(
        system.parameters.with_vector(values)), moved, settings, 298.15)
    assert float(other["density"]) == pytest.approx(single["density"], rel=1e-10)
    assert float(other["hvap"]) == pytest.approx(single["hvap"], rel=1e-10)
    assert float(other["n_eff_liquid"]) == pytest.approx(single["n_eff_liquid"], rel=1e-8)


def test_derivative_at_a_sampled_state_is_the_fluctuation_formula(ccl4_runs):
    system, settings, runs = ccl4_runs
    directory, values, result = runs[0]
    rw = MultiStateReweighter(system, settings, 298.15, [(directory, values)])
    theta = torch.as_tensor(values).requires_grad_()
    p = rw.predict(theta)
    for prop in ("density", "hvap"):
        (grad,) = torch.autograd.grad(p[prop], theta, retain_graph=True)
        expected = getattr(result, f"{prop}_gradient")
        for k, key in enumerate((SIGMA, EPSILON)):
            assert float(grad[system.parameters.index(key)]) == pytest.approx(
                expected[k], rel=1e-6), (prop, key)


def test_two_runs_cover_both_states_and_between(ccl4_runs):
    system, settings, runs = ccl4_runs
    rw = MultiStateReweighter(system, settings, 298.15, [(d, v) for d, v, _ in runs])
    assert rw.n_runs == 2
    for _, values, result in runs:
        p = rw.predict(values)
        assert abs(float(p["density"]) - result.density.value) < 3 * result.density.error
        assert abs(float(p["hvap"]) - result.hvap.value) < 3 * result.hvap.error
    middle = 0.5 * (runs[0][1] + runs[1][1])
    pooled = rw.predict(middle)
    alone = [MultiStateReweighter(system, settings, 298.15, [(d, v)]).predict(middle)
             for d, v, _ in runs]
    # the pooled frames cover the midpoint better than either run alone
    assert float(pooled["n_eff_liquid"]) > max(float(a["n_eff_liquid"]) for a in alone)
    lo, hi = sorted(r.density.value for *_, r in runs)
    assert lo - 0.02 < float(pooled["density"]) < hi + 0.02


def test_reweighted_step_lowers_the_objective_inside_its_limits(ccl4_runs):
    system, settings, runs = ccl4_runs
    master = SmirnoffForceField.load("sage").parameters.copy()
    free_vdw_parameters(master, ["vdw:[#17:1]"], {"[#17:1]"}, prior_sigma=0.1,
                        prior_epsilon=0.05)
    fit = FitParameters.from_free(master)
    # runs[0] is Sage itself: its x is 0; an "experiment" a little denser than Sage
    first = runs[0][2]
    ref = LiquidReference("ccl4", "ClC(Cl)(Cl)Cl", 298.15, 1.0, first.density.value + 0.01,
                          first.hvap.value + 0.1)
    ref_slug = ref.slug
    rw = MultiStateReweighter(system, settings, 298.15, [(d, v) for d, v, _ in runs])
    lower, upper = fit.bounds_x()
    x0 = np.zeros(fit.size)
    kwargs = dict(density_weight=1.0, hvap_weight=1.0, density_denominator=0.03,
                  hvap_denominator=0.717, use_priors=True, min_eff_fraction=0.3)
    x, value, start_value, preds = reweighted_step(fit, [ref], {ref_slug: rw}, x0, 0.5,
                                                   lower, upper, **kwargs)
    assert value < start_value
    assert np.linalg.norm(x - x0) <= 0.5 + 1e-6
    assert preds[ref_slug]["n_eff_liquid"] >= 0.3 * rw.phases["liquid"].n_frames / 2 - 1e-6
    # the prediction reported is the estimator at the returned parameters
    again = rw.predict(fit.system_values(system, torch.as_tensor(x)).detach())
    assert preds[ref_slug]["density"] == pytest.approx(float(again["density"]), rel=1e-12)
