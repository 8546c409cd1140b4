"""Statistics against processes with known answers: AR(1) statistical inefficiency and
standard error, pymbar equilibration detection on a transient, the fluctuation formula
on a Gaussian ensemble with an analytic derivative, and the trust-region step against
scipy's constrained minimizer."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from ffparam.liquid.objective import ObjectiveTerms, no_worse_step, trust_region_step
from ffparam.liquid.statistics import (
    derivative_estimate,
    equilibration_start,
    inefficiency,
    mean_estimate,
    reweighting_weights,
)


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=n) * np.sqrt(1 - phi**2)
    x = np.empty(n)
    x[0] = rng.normal()
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.stochastic
def test_ar1_inefficiency_and_standard_error(seed):
    # 40000 samples at g = 9: ~4400 independent ones, so g and the error are known to a
    # few per cent (rel = 0.25 is > 5 sigma); a white series of 4000 has g - 1 ~ 0.03
    phi, n = 0.8, 40000
    x = _ar1(n, phi, seed=seed) + 5.0
    g_exact = (1 + phi) / (1 - phi)  # = 9 for unit variance AR(1)
    assert inefficiency(x) == pytest.approx(g_exact, rel=0.25)
    estimate = mean_estimate(x)
    assert estimate.error == pytest.approx(np.sqrt(g_exact / n), rel=0.25)
    assert abs(estimate.value - 5.0) < 4 * estimate.error
    white = mean_estimate(np.random.default_rng([seed, 2]).normal(size=4000))
    assert white.inefficiency < 1.3
    assert white.error == pytest.approx(1 / np.sqrt(4000), rel=0.1)


@pytest.mark.stochastic
def test_equilibration_detection_drops_the_transient(seed):
    # the transient falls below the unit noise at t = 60 ln 8 = 125 and below its
    # standard error over the rest (~0.02) at t ~ 360: the detected start lies between,
    # for any noise draw
    rng = np.random.default_rng([seed, 4])
    t = np.arange(3000)
    x = 8.0 * np.exp(-t / 60.0) + rng.normal(size=t.size)
    start = equilibration_start(x, _ar1(3000, 0.5, seed + 5))
    assert 100 < start < 600


@pytest.mark.stochastic
def test_fluctuation_formula_on_a_gaussian_ensemble(seed):
    """U = theta x^2 / 2 at beta: x ~ N(0, 1/(beta theta)), <x^2> = 1/(beta theta), so
    d<x^2>/dtheta = -1/(beta theta^2); and <U> = 1/(2 beta) does not depend on theta."""
    beta, theta, n = 1.7, 2.5, 50000
    # 50000 independent samples: the estimate's relative error is sqrt(2 / n) ~ 0.9 %
    # (the 5 % bound is > 5 sigma), and the 4-sigma agreement fails for 6e-5 of the draws
    rng = np.random.default_rng([seed, 6])
    x = rng.normal(scale=1 / np.sqrt(beta * theta), size=n)
    du = (x**2 / 2)[:, None]
    value, error = derivative_estimate(x**2, du, beta)
    exact = -1 / (beta * theta**2)
    assert error[0] > 0
    assert abs(value[0] - exact) < 4 * error[0]
    assert error[0] < 0.05 * abs(exact)
    u = theta * x**2 / 2
    value_u, error_u = derivative_estimate(u, du, beta, da_dtheta=du)
    assert abs(value_u[0]) < 4 * error_u[0]


def test_reweighting_weights():
    w, n_eff = reweighting_weights(np.full(10, 3.0), beta_mol_kcal=1.0)
    assert np.allclose(w, 0.1) and n_eff == pytest.approx(10)
    w, n_eff = reweighting_weights(np.array([0.0, 50.0, 50.0]), beta_mol_kcal=1.0)
    assert n_eff == pytest.approx(1.0, abs=1e-6) and w[0] == pytest.approx(1.0)


@pytest.mark.parametrize("radius", [0.05, 0.3, 10.0])
def test_trust_region_step_solves_the_subproblem(radius):
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 4))
    hessian = a @ a.T + 0.1 * np.eye(4)
    gradient = rng.normal(size=4)
    dx, predicted = trust_region_step(gradient, hessian, radius)
    model = lambda d: gradient @ d + 0.5 * d @ hessian @ d  # noqa: E731
    ref = scipy.optimize.minimize(model, np.zeros(4), method="SLSQP", constraints=[
        {"type": "ineq", "fun": lambda d: radius**2 - d @ d}], options={"ftol": 1e-14})
    assert np.linalg.norm(dx) <= radius * (1 + 1e-9)
    assert predicted == pytest.approx(model(dx))
    assert model(dx) <= ref.fun + 1e-8
    if radius == 10.0:  # interior: the Newton step
        assert np.allclose(dx, -np.linalg.solve(hessian, gradient))


def test_trust_region_step_respects_bounds():
    dx, _ = trust_region_step(np.array([-1.0, 1.0]), np.eye(2), 1.0,
                              lower=np.array([-1.0, -0.1]), upper=np.array([0.2, 1.0]),
                              x=np.zeros(2))
    assert dx[0] <= 0.2 + 1e-12 and dx[1] >= -0.1 - 1e-12


def _two_liquids(d: np.ndarray, jac: np.ndarray, errors: np.ndarray) -> ObjectiveTerms:
    """Objective sum (d + J dx)^2 of two property rows, in the layout evaluate_objective
    fills."""
    return ObjectiveTerms(float(d @ d), 0.0, float(d @ d), 0.0, 2 * jac.T @ d, 2 * jac.T @ jac,
                          {}, d, jac, errors, [("a", "hvap"), ("b", "hvap")])


def test_no_worse_step_keeps_every_row_within_its_bound():
    """One parameter moves two liquids the same way; a is 1.0 from experiment, b 0.05.
    The plain step (x = 0.525) fixes half of a and throws b to -0.475; the guarded step
    stops where b reaches its bound |0.05 - s x| = 0.05 + margin * 0.05, i.e.
    x = (0.1 + margin * 0.05) / s."""
    d = np.array([1.0, 0.05])
    jac = np.array([[-1.0], [-1.0]])
    errors = np.array([0.05, 0.05])
    terms = _two_liquids(d, jac, errors)
    plain, _ = trust_region_step(terms.gradient, terms.hessian, 2.0)
    assert plain[0] == pytest.approx(0.525)
    for margin, safety in ((0.0, 1.0), (0.5, 1.0), (0.0, 1.5), (1.0, 2.0)):
        dx, predicted = no_worse_step(terms, 2.0, margin, safety)
        assert dx[0] == pytest.approx((0.1 + margin * 0.05) / safety, abs=1e-7)
        assert predicted == pytest.approx(terms.gradient @ dx + 0.5 * dx @ terms.hessian @ dx)
        assert predicted < 0.0
    # the radius still binds, and a margin wide enough to allow anything gives the plain
    # step back
    assert no_worse_step(terms, 0.05, 0.0)[0][0] == pytest.approx(0.05, abs=1e-7)
    assert no_worse_step(terms, 2.0, margin=1e3)[0][0] == pytest.approx(0.525, abs=1e-6)


def test_no_worse_step_with_several_parameters_matches_a_reference_solver():
    rng = np.random.default_rng(3)
    d = rng.normal(size=6) * np.array([1, 1, 1, 0.05, 0.05, 0.05])
    jac = rng.normal(size=(6, 4))
    errors = np.full(6, 0.05)
    terms = _two_liquids(d, jac, errors)
    terms.row_labels = [("x", "hvap")] * 6
    dx, predicted = no_worse_step(terms, 0.5, 0.5, 1.5)
    bound = np.abs(d) + 0.5 * errors
    assert np.all(np.abs(d + 1.5 * jac @ dx) <= bound + 1e-7)
    assert np.linalg.norm(dx) <= 0.5 + 1e-9
    model = lambda s: terms.gradient @ s + 0.5 * s @ terms.hessian @ s  # noqa: E731
    ref = scipy.optimize.minimize(model, np.zeros(4), method="trust-constr", constraints=[
        scipy.optimize.LinearConstraint(1.5 * jac, -bound - d, bound - d),
        scipy.optimize.NonlinearConstraint(lambda s: s @ s, -np.inf, 0.25)])
    assert predicted <= ref.fun + 1e-6
    assert predicted < 0.0


def test_reweighting_to_the_same_parameters_reproduces_the_run(methanol_am1bcc, tmp_path):
    """Reweighting a finished run to its own parameters gives back its own averages with
    every frame counting (n_eff = n)."""
    from ffparam.liquid.job import LiquidJob, simulate_liquid
    from ffparam.liquid.reweight import reweight_liquid
    from tests.liquid.conftest import tiny_settings

    settings = tiny_settings(production_ps=6.0, gas_production_ps=20.0)
    job = LiquidJob("methanol", methanol_am1bcc, 298.15, 1.0, tmp_path, settings, 0.79)
    result = simulate_liquid(job)
    same = reweight_liquid(tmp_path, methanol_am1bcc, methanol_am1bcc.parameters.vector(),
                           settings, 298.15)
    assert same["density"] == pytest.approx(result.density.value, rel=1e-10)
    assert same["hvap"] == pytest.approx(result.hvap.value, rel=1e-10)
    assert same["n_eff_liquid"] == pytest.approx(result.frames["liquid_used"])
    moved = methanol_am1bcc.parameters.vector()
    moved[methanol_am1bcc.parameters.index(("vdW", "[#6X4:1]", "epsilon"))] *= 1.3
    far = reweight_liquid(tmp_path, methanol_am1bcc, moved, settings, 298.15)
    assert far["n_eff_liquid"] < same["n_eff_liquid"]
    assert far["hvap"] > same["hvap"]  # deeper methyl well, stronger cohesion


@pytest.mark.stochastic
def test_gas_phase_keeps_every_frame_across_a_conformer_switch(seed):
    """A single gas molecule that switches conformer once (a step in its energy series, as
    1,2-dichloroethane's trans/gauche did in the benchmark) is cut at the step by the
    equilibration detector; the gas phase therefore keeps every production frame, and its
    mean is that of the whole series."""
    from ffparam.liquid.lj import FrameStatistics
    from ffparam.liquid.properties import select_equilibrated
    from ffparam.liquid.simulate import PhaseTrajectory

    # a step of 1.0 against noise 0.3 over 2000 frames each side: the detector sees it for
    # any noise draw, and the second half's mean is 5.0 +- 0.007
    rng = np.random.default_rng([seed, 3])
    n = 4000
    energies = np.where(np.arange(n) < n // 2, 6.0, 5.0) + rng.normal(0, 0.3, n)
    trajectory = PhaseTrajectory(energies, None, np.zeros((n, 1, 3), np.float32),
                                 np.arange(n), 1.0, 1.0)
    stats = FrameStatistics(np.zeros((n, 1)), np.zeros((n, 1)), np.zeros(n), 1)
    detected = select_equilibrated(trajectory, stats, None, np.zeros(0), [])
    assert detected.discarded > n // 4 and detected.energies.mean() < 5.3
    kept = select_equilibrated(trajectory, stats, None, np.zeros(0), [], detect=False)
    assert kept.discarded == 0 and kept.energies.mean() == pytest.approx(energies.mean())
