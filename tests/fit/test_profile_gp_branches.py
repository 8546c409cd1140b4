"""The HIGH - LOW loop over conformer branches (ffparam.fit.profile_gp_branches) and the
branch kernel of ffparam.fit.profile_gp, on profiles whose answer is known."""

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.fit.profile_gp import (
    BRANCH_OFFSET_PRIOR_KCAL_MOL,
    BRANCH_SHARED_FRACTION,
    OFFSET_PRIOR_KCAL_MOL,
    PeriodicGP,
    active_delta,
    branch_kernel,
    periodic_kernel,
)
from ffparam.fit.profile_gp_branches import active_delta_branches

GRID = np.arange(-165.0, 181.0, 15.0)  # 24 points
PHI = np.radians(GRID)
N = len(GRID)


def two_branches(alt_low_above: float, alt_high_shift: float):
    """Candidates: the drive's own branch (0) and one alternative (1) at every grid point.
    LOW puts the alternative ``alt_low_above`` kcal/mol above, with a profile of another
    shape; the true correction of the alternative is that of branch 0 shifted by
    ``alt_high_shift`` plus a small 1-fold part of its own. Returns grid index, branch, LOW
    energies and the true dE."""
    grid_index = np.concatenate([np.arange(N), np.arange(N)])
    branch = np.repeat([0, 1], N)
    low_main = 2.0 * (1 - np.cos(PHI)) + 0.5 * np.cos(3 * PHI)
    low_alt = low_main + alt_low_above + 0.4 * np.cos(2 * PHI + 0.5)
    low = np.concatenate([low_main, low_alt])
    shared = -3.0e4 + 0.6 * np.cos(2 * PHI) + 0.2 * np.sin(PHI)
    true = np.concatenate([shared, shared + alt_high_shift + 0.1 * np.cos(PHI)])
    return grid_index, branch, low, true


def run(grid_index, branch, low, true, budget=8):
    asked = []

    def evaluate(indices):
        asked.extend(indices)
        return [true[i] for i in indices]

    result = active_delta_branches(grid_index, branch, GRID[grid_index], low, evaluate,
                                   budget, 0.1, first=int(np.argmin(low[:N])))
    return result, asked


def test_branch_kernel_is_the_periodic_kernel_shared_by_a_fraction_plus_offsets():
    a, b = GRID[:7, None], GRID[3:12, None]
    la, lb = np.array([0, 1, 1, 0, 2, 0, 1]), np.array([1, 0, 0, 2, 1, 1, 0, 0, 2])
    k = branch_kernel(a, la, b, lb, 0.8, [0.6])
    periodic = periodic_kernel(a, b, 0.8, [0.6])
    same = la[:, None] == lb[None, :]
    expected = np.where(same, periodic + BRANCH_OFFSET_PRIOR_KCAL_MOL**2,
                        BRANCH_SHARED_FRACTION * periodic)
    np.testing.assert_allclose(k, expected, rtol=1e-12)
    # a covariance: positive semi-definite on any set of labelled points
    labels = np.arange(N) % 3
    full = branch_kernel(GRID[:, None], labels, GRID[:, None], labels, 0.8, [0.6])
    assert np.linalg.eigvalsh(full).min() > -1e-9


def test_one_branch_predicts_the_same_relative_profile_as_the_plain_gp():
    rows = [1, 6, 10, 15, 21]
    y = -3.0e4 + 0.6 * np.cos(2 * PHI[rows])
    plain = PeriodicGP(GRID[rows, None], y, amplitude_kcal_mol=0.7, length_scales=[0.5])
    labelled = PeriodicGP(GRID[rows, None], y, amplitude_kcal_mol=0.7, length_scales=[0.5],
                          branches=np.zeros(len(rows), dtype=int))
    p, q = plain.predict(GRID[:, None]), labelled.predict(GRID[:, None], np.zeros(N, int))
    # one branch only adds its offset to the constant part of the prior
    assert BRANCH_OFFSET_PRIOR_KCAL_MOL < OFFSET_PRIOR_KCAL_MOL
    np.testing.assert_allclose(q.relative_sigma, p.relative_sigma, atol=1e-6)
    np.testing.assert_allclose(q.mean - q.mean.mean(), p.mean - p.mean.mean(), atol=1e-6)
    with pytest.raises(InputError, match="branches"):
        labelled.predict(GRID[:, None])


def test_high_moves_the_profile_to_the_branch_low_ranks_second():
    # LOW: alternative 0.4 above everywhere; HIGH: it is 0.6 below (shift -1.0)
    grid_index, branch, low, true = two_branches(0.4, -1.0)
    result, asked = run(grid_index, branch, low, true)
    assert len(asked) == len(set(asked)) == 8
    assert any(branch[c] == 1 for c in asked)  # HIGH was asked on the alternative
    assert np.all(branch[result.winners] == 1)
    truth = low[N:] + true[N:]
    profile = result.on_grid(grid_index)
    np.testing.assert_allclose(profile.posterior.mean, result.mean[result.winners])

    def rmse(corrected):
        error = (corrected - corrected.mean()) - (truth - truth.mean())
        return np.sqrt(np.mean(error**2))

    # the one-branch loop with the same budget learns its own branch well and misses
    # the shape of the profile HIGH prefers
    plain = active_delta(GRID[:, None], lambda idx: [true[i] for i in idx], 8, 0.1,
                         first=int(np.argmin(low[:N])))
    theirs = rmse(low[:N] + plain.posterior.mean)
    mine = rmse(low[result.winners] + profile.posterior.mean)
    assert mine < 0.5 * theirs
    assert mine < profile.posterior.relative_sigma.max()  # inside its own band


def test_a_branch_that_cannot_win_is_never_computed():
    # 4 kcal/mol above in LOW, same correction: not a contender, never asked; the loop
    # then asks exactly what the one-branch loop asks
    grid_index, branch, low, true = two_branches(4.0, 0.0)
    result, asked = run(grid_index, branch, low, true)
    assert all(branch[c] == 0 for c in asked)
    assert np.all(branch[result.winners] == 0)
    plain = active_delta(GRID[:, None], lambda idx: [true[i] for i in idx], 8, 0.1,
                         first=int(np.argmin(low[:N])))
    # same start points and budget; later picks may break ties of equal sigma otherwise
    assert asked[:3] == plain.computed[:3] and len(asked) == len(plain.computed)
    mine = result.on_grid(grid_index).posterior.relative_sigma.max()
    assert mine == pytest.approx(plain.posterior.relative_sigma.max(), rel=0.25)


def test_bad_candidate_order_and_budget_are_one_line_errors():
    grid_index, branch, low, _ = two_branches(0.4, -1.0)
    with pytest.raises(InputError, match="branch 0"):
        active_delta_branches(grid_index[::-1], branch[::-1], GRID[grid_index[::-1]],
                              low[::-1], lambda idx: [0.0] * len(idx), 8)
    with pytest.raises(InputError, match="budget"):
        active_delta_branches(grid_index, branch, GRID[grid_index], low,
                              lambda idx: [0.0] * len(idx), 0)
