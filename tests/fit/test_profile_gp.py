"""The periodic GP of HIGH - LOW along a torsion grid and its active point selection
(ffparam.fit.profile_gp), checked against direct numpy/scipy computations."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from ffparam.errors import InputError
from ffparam.fit.profile_gp import (
    AMPLITUDE_BOUNDS_KCAL_MOL,
    LENGTH_SCALE_BOUNDS,
    OFFSET_PRIOR_KCAL_MOL,
    PeriodicGP,
    active_delta,
    initial_points,
    next_point,
    periodic_kernel,
)

GRID = np.arange(-165.0, 181.0, 15.0)[:, None]  # 24 points, torsiondrive's convention
PHI = np.radians(GRID[:, 0])


def correction(indices):
    """A known correction, kcal/mol: 1-, 2- and 3-fold terms on a large constant offset
    (HIGH and LOW total energies differ by a lot; only the shape matters)."""
    return [-2.5e4 + 0.3 * np.cos(PHI[i]) + 0.8 * np.cos(2 * PHI[i])
            + 0.15 * np.sin(3 * PHI[i]) for i in indices]


def direct_kernel(a_deg, b_deg, amplitude, scales):
    """exp(-2 sin^2(d/2) / l^2) written as exp(-(1 - cos d) / l^2), per dimension."""
    a, b = np.radians(a_deg), np.radians(b_deg)
    out = np.ones((len(a), len(b)))
    for d, scale in enumerate(scales):
        out *= np.exp(-(1 - np.cos(a[:, None, d] - b[None, :, d])) / scale**2)
    return amplitude**2 * out


def test_posterior_mean_and_covariance_match_a_direct_solve():
    rows = [2, 7, 11, 16, 20]
    x, y = GRID[rows], np.array(correction(rows))
    gp = PeriodicGP(x, y, noise_kcal_mol=0.03, amplitude_kcal_mol=0.9, length_scales=[0.6])
    post = gp.predict(GRID)
    c2 = OFFSET_PRIOR_KCAL_MOL**2
    k = direct_kernel(x, x, 0.9, [0.6]) + c2 + 0.03**2 * np.eye(len(rows))
    ks = direct_kernel(GRID, x, 0.9, [0.6]) + c2
    kss = direct_kernel(GRID, GRID, 0.9, [0.6]) + c2
    centred = y - y.mean()
    mean = y.mean() + ks @ np.linalg.solve(k, centred)
    cov = kss - ks @ np.linalg.solve(k, ks.T)
    np.testing.assert_allclose(post.mean, mean, rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.cov, cov, rtol=0, atol=1e-7)
    # the variance of each point minus the grid mean, written out term by term
    n = len(GRID)
    rel_var = np.diag(cov) - 2 * cov.mean(axis=1) + cov.sum() / n**2
    np.testing.assert_allclose(post.relative_sigma, np.sqrt(rel_var), atol=1e-6)
    # observed points are the best known (relative to the grid mean, whose uncertainty
    # they share)
    assert post.relative_sigma[rows].max() < 0.5 * post.relative_sigma.max()


def test_log_marginal_likelihood_is_the_gaussian_density():
    rows = [0, 5, 9, 14, 18, 22]
    y = np.array(correction(rows))
    gp = PeriodicGP(GRID[rows], y, noise_kcal_mol=0.02, amplitude_kcal_mol=0.7,
                    length_scales=[0.5])
    cov = direct_kernel(GRID[rows], GRID[rows], 0.7, [0.5]) + OFFSET_PRIOR_KCAL_MOL**2 \
        + 0.02**2 * np.eye(len(rows))
    expected = multivariate_normal(np.zeros(len(rows)), cov).logpdf(y - y.mean())
    assert gp.log_marginal_likelihood(0.7, [0.5]) == pytest.approx(expected, abs=1e-8)


def test_optimized_hyperparameters_are_within_bounds_and_beat_the_start():
    rows = initial_points(GRID, 8, first=3)
    y = np.array(correction(rows))
    gp = PeriodicGP(GRID[rows], y)
    assert AMPLITUDE_BOUNDS_KCAL_MOL[0] <= gp.amplitude <= AMPLITUDE_BOUNDS_KCAL_MOL[1]
    assert LENGTH_SCALE_BOUNDS[0] <= gp.length_scales[0] <= LENGTH_SCALE_BOUNDS[1]
    best = gp.log_marginal_likelihood(gp.amplitude, gp.length_scales)
    for amplitude in (0.1, 0.5, 2.0):
        for scale in (0.4, 0.7, 1.0):
            assert best >= gp.log_marginal_likelihood(amplitude, [scale]) - 1e-6


def test_few_points_recover_a_known_periodic_correction():
    rows = initial_points(GRID, 8, first=0)
    gp = PeriodicGP(GRID[rows], np.array(correction(rows)))
    post = gp.predict(GRID)
    true = np.array(correction(range(len(GRID))))
    error = (post.mean - post.mean.mean()) - (true - true.mean())
    assert np.sqrt(np.mean(error**2)) < 0.05  # kcal/mol, on a 1.1 kcal/mol peak-to-peak
    assert np.all(np.abs(error) <= 3 * post.relative_sigma + 0.02)


def test_two_dimensional_kernel_is_the_product_of_one_dimensional_ones():
    a = np.array([[0.0, 30.0], [90.0, -60.0], [180.0, 150.0]])
    b = np.array([[15.0, 45.0], [-120.0, 0.0]])
    both = periodic_kernel(a, b, 1.3, [0.5, 0.8])
    one = periodic_kernel(a[:, :1], b[:, :1], 1.0, [0.5])
    two = periodic_kernel(a[:, 1:], b[:, 1:], 1.0, [0.8])
    np.testing.assert_allclose(both, 1.3**2 * one * two, rtol=1e-12)
    np.testing.assert_allclose(both, direct_kernel(a, b, 1.3, [0.5, 0.8]), rtol=1e-12)


def test_initial_points_are_spread():
    assert initial_points(GRID, 3, first=5) == [5, 13, 21]
    assert initial_points(GRID, 4, first=0) == [0, 6, 12, 18]
    grid2 = np.array([(a, b) for a in range(-150, 181, 30) for b in range(-150, 181, 30)],
                     dtype=float)
    picks = initial_points(grid2, 5, first=0)
    assert len(set(picks)) == 5 and picks[0] == 0
    # the second point is diametrically opposite on the torus
    assert np.allclose(np.abs(grid2[picks[1]] - grid2[0]), 180.0)


def test_next_point_is_the_largest_relative_sigma_not_asked():
    rows = [0, 8, 16]
    gp = PeriodicGP(GRID[rows], np.array(correction(rows)), amplitude_kcal_mol=0.8,
                    length_scales=[0.5])
    post = gp.predict(GRID)
    asked = set(rows)
    chosen = next_point(post, asked)
    others = [i for i in range(len(GRID)) if i not in asked]
    assert chosen == others[int(np.argmax(post.relative_sigma[others]))]
    assert next_point(post, set(range(len(GRID)))) is None


def test_active_loop_asks_for_the_max_variance_point_after_the_start():
    asked_batches = []

    def evaluate(indices):
        asked_batches.append(list(indices))
        return correction(indices)

    result = active_delta(GRID, evaluate, budget=4, threshold_kcal_mol=1e-6, first=2)
    start = initial_points(GRID, 3, first=2)
    assert asked_batches[0] == start
    gp = PeriodicGP(GRID[sorted(start)], np.array(correction(sorted(start))))
    expected = next_point(gp.predict(GRID), set(start))
    assert asked_batches[1] == [expected]
    assert result.computed == [*start, expected] and result.stop == "budget"


def test_budget_is_respected_and_the_threshold_stops_early():
    calls = []

    def evaluate(indices):
        calls.extend(indices)
        return correction(indices)

    tight = active_delta(GRID, evaluate, budget=6, threshold_kcal_mol=1e-3)
    assert len(calls) == tight.n_asked == 6 and tight.stop == "budget"
    assert len(set(calls)) == 6  # never the same point twice
    calls.clear()
    loose = active_delta(GRID, evaluate, budget=24, threshold_kcal_mol=0.1)
    assert loose.stop == "threshold" and 3 < loose.n_asked < 24
    assert loose.posterior.relative_sigma.max() < 0.1
    assert loose.history == sorted(loose.history, reverse=True) or loose.history[-1] < 0.1


def test_start_points_alone_never_satisfy_the_threshold():
    # three points 120 degrees apart cannot see a 3-fold correction: with the start points
    # alone the GP is confident (all three values equal); the active point shows the term
    values = lambda idx: [0.5 * np.cos(3 * PHI[i]) for i in idx]  # noqa: E731
    result = active_delta(GRID, values, budget=24, threshold_kcal_mol=0.1, first=11)
    assert result.n_asked > 3
    true = np.array(values(range(24)))
    error = (result.posterior.mean - result.posterior.mean.mean()) - (true - true.mean())
    assert np.abs(error).max() < 0.15


def test_failed_points_are_skipped_and_counted():
    bad = {7, 19}

    def evaluate(indices):
        return [np.nan if i in bad else v for i, v in zip(indices, correction(indices))]

    result = active_delta(GRID, evaluate, budget=8, threshold_kcal_mol=1e-3, first=7)
    assert 7 in result.failed and not set(result.failed) & set(result.computed)
    assert result.n_asked == 8 and result.posterior is not None
    assert 7 not in result.values
    none = active_delta(GRID, lambda idx: [np.nan] * len(idx), budget=4)
    assert none.stop == "no_data" and none.posterior is None and none.n_asked == 4


def test_two_dimensional_drive():
    grid2 = np.array([(a, b) for a in range(-120, 181, 60) for b in range(-120, 181, 60)],
                     dtype=float)
    rad = np.radians(grid2)
    f = lambda idx: [0.6 * np.cos(2 * rad[i, 0]) + 0.3 * np.cos(rad[i, 1])  # noqa: E731
                     for i in idx]
    result = active_delta(grid2, f, budget=20, threshold_kcal_mol=0.1)
    assert result.n_asked <= 20 and len(result.length_scales) == 2
    true = np.array(f(range(len(grid2))))
    error = (result.posterior.mean - result.posterior.mean.mean()) - (true - true.mean())
    assert np.sqrt(np.mean(error**2)) < 0.1


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="at least 1"):
        active_delta(GRID, correction, budget=0)
    with pytest.raises(InputError, match="threshold"):
        active_delta(GRID, correction, budget=3, threshold_kcal_mol=0.0)
    with pytest.raises(InputError, match="finite"):
        PeriodicGP(GRID[:2], [1.0, np.nan])


def test_time_limit_stops_before_a_round_that_would_end_past_it():
    """A fake clock: every HIGH point costs 100 s. No round starts when the elapsed time
    plus one point at the last round's time per point would pass the limit; the rounds'
    times are recorded."""
    now = [0.0]

    def evaluate(indices):
        now[0] += 100.0 * len(indices)
        return correction(indices)

    def clock():
        return now[0]

    start_only = active_delta(GRID, evaluate, budget=8, threshold_kcal_mol=1e-3,
                              time_limit_s=350.0, clock=clock)  # 3 start points: 300 s
    assert start_only.stop == "time" and start_only.n_asked == 3
    assert start_only.round_seconds == [300.0]
    now[0] = 0.0
    longer = active_delta(GRID, evaluate, budget=12, threshold_kcal_mol=1e-3,
                          time_limit_s=950.0, clock=clock)
    # one point at a time while elapsed + 100 <= 950: 6 more, ending at 900 s
    assert longer.stop == "time" and longer.n_asked == 3 + 6
    assert longer.round_seconds == [300.0] + [100.0] * 6
    now[0] = 0.0
    unlimited = active_delta(GRID, evaluate, budget=12, threshold_kcal_mol=1e-3, clock=clock)
    assert unlimited.stop == "budget" and unlimited.n_asked == 12
    with pytest.raises(InputError, match="time limit"):
        active_delta(GRID, evaluate, budget=8, time_limit_s=0.0)
