"""Multi-state (MBAR) reweighting of finished liquid runs, against the runs themselves,
single-state exponential reweighting and the fluctuation-formula derivatives; and the
step that optimizes the objective on it (tetrachloromethane, 24 molecules, 24 ps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.fit.parameters import FitParameters
from ffparam.liquid.box import molar_mass
from ffparam.liquid.data import LiquidReference
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.mbar import MultiStateReweighter, reweighted_step
from ffparam.liquid.parameters import free_vdw_parameters
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.reweight import reweight_liquid
from ffparam.params.parameter_set import ParameterKey
from tests.liquid.conftest import conservative_errors, tiny_settings

pytestmark = [pytest.mark.xdist_group("mbar"), pytest.mark.stochastic]

SIGMA = ParameterKey("vdW", "[#17:1]", "sigma")
EPSILON = ParameterKey("vdW", "[#17:1]", "epsilon")


@pytest.fixture(scope="module")
def ccl4_runs(tmp_path_factory, seed):
    """Two runs (seeded by the session seed), the second with the Cl sigma 0.03 A larger."""
    system = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    settings = tiny_settings(n_molecules=24, equilibration_ps=8.0, production_ps=24.0,
                             save_interval_ps=0.2, checkpoint_interval_ps=24.0,
                             gas_equilibration_ps=1.0, gas_production_ps=20.0,
                             gas_save_interval_ps=0.2, pack_density_factor=0.95, seed=seed)
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
    """At each sampled state the pooled (MBAR) estimate agrees with the run itself.

    Exact, for any trajectory: MBAR's weights at the sampled states satisfy
    sum_k N_k w_nk = 1 for every frame n, so sum_k N_k <rho>_k = sum_n rho_n.

    Statistical: at state k the estimate is a weighted mean of both runs' frames, whose
    weights sum to a <= 1 on run k's own frames and 1 - a on the other's, so its difference
    d_k from run k's own mean is, to first order, (1 - a) (other run reweighted - own mean):
    a combination of the two runs' averages with coefficients of magnitude <= 1, so
    sigma(d_k) <= sigma_0 + sigma_1 (whatever their correlation), with conservative errors
    (:func:`tests.liquid.conftest.conservative_errors`). The bound 4 (sigma_0 + sigma_1)
    is >= 4 sigma(d_k); the errors themselves come from ~10 independent blocks (+-25 %),
    so a valid run fails it with probability < 1e-3.
    """
    system, settings, runs = ccl4_runs
    rw = MultiStateReweighter(system, settings, 298.15, [(d, v) for d, v, _ in runs])
    assert rw.n_runs == 2
    mass = molar_mass(system.molecule)
    errors = [conservative_errors(Path(d), settings, r, mass) for d, _, r in runs]
    density_tol = 4.0 * sum(e[0] for e in errors)
    hvap_tol = 4.0 * sum(e[1] for e in errors)
    n_k = [r.density.n_samples for *_, r in runs]
    pooled_sum = 0.0
    for (_, values, result), n in zip(runs, n_k):
        p = rw.predict(values)
        pooled_sum += n * float(p["density"])
        d_density = float(p["density"]) - result.density.value
        d_hvap = float(p["hvap"]) - result.hvap.value
        assert abs(d_density) < density_tol, (d_density, density_tol, errors)
        assert abs(d_hvap) < hvap_tol, (d_hvap, hvap_tol, errors)
    frames = rw.phases["liquid"].observable
    assert rw.phases["liquid"].n_frames == sum(n_k)
    assert pooled_sum == pytest.approx(float(frames.sum()), rel=1e-8)
    middle = 0.5 * (runs[0][1] + runs[1][1])
    pooled = rw.predict(middle)
    alone = [MultiStateReweighter(system, settings, 298.15, [(d, v)]).predict(middle)
             for d, v, _ in runs]
    # the pooled frames cover the midpoint better than either run alone: the pooled Kish
    # size is about the sum of the two runs' (each run's frames keep their weight shape)
    assert float(pooled["n_eff_liquid"]) > max(float(a["n_eff_liquid"]) for a in alone)
    # between the states: a weighted mean of the two runs' frames, each run reweighted
    # half-way; it leaves [lo, hi] of the own means only by the reweighting shift times
    # the imbalance of the weights plus noise, both inside the density tolerance
    lo, hi = sorted(r.density.value for *_, r in runs)
    assert lo - density_tol < float(pooled["density"]) < hi + density_tol


def test_reweighted_step_lowers_the_objective_inside_its_limits(ccl4_runs):
    system, settings, runs = ccl4_runs
    master = SmirnoffForceField.load("sage").parameters.copy()
    free_vdw_parameters(master, ["vdw:[#17:1]"], {"[#17:1]"}, prior_sigma_a=0.1,
                        prior_epsilon_kcal_mol=0.05)
    fit = FitParameters.from_free(master)
    # runs[0] is Sage itself: its x is 0; an "experiment" a little denser than Sage
    first = runs[0][2]
    ref = LiquidReference("ccl4", "ClC(Cl)(Cl)Cl", 298.15, 1.0, first.density.value + 0.01,
                          first.hvap.value + 0.1)
    ref_slug = ref.slug
    rw = MultiStateReweighter(system, settings, 298.15, [(d, v) for d, v, _ in runs])
    lower, upper = fit.bounds_x()
    x0 = np.zeros(fit.size)
    kwargs = dict(density_weight=1.0, hvap_weight=1.0, density_denominator_g_ml=0.03,
                  hvap_denominator_kcal_mol=0.717, use_priors=True, min_eff_fraction=0.3)
    x, value, start_value, preds = reweighted_step(fit, [ref], {ref_slug: rw}, x0, 0.5,
                                                   lower, upper, **kwargs)
    assert value < start_value
    assert np.linalg.norm(x - x0) <= 0.5 + 1e-6
    assert preds[ref_slug]["n_eff_liquid"] >= 0.3 * rw.phases["liquid"].n_frames / 2 - 1e-6
    # the prediction reported is the estimator at the returned parameters
    again = rw.predict(fit.system_values(system, torch.as_tensor(x)).detach())
    assert preds[ref_slug]["density"] == pytest.approx(float(again["density"]), rel=1e-12)
