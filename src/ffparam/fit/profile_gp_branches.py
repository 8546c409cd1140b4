"""The active HIGH - LOW loop of :mod:`ffparam.fit.profile_gp` over conformer branches: HIGH
decides which branch the corrected profile follows at each grid angle.

Candidates are LOW geometries at the grid angles, each on a branch
(:mod:`ffparam.reference.drive_branches`; branch 0 is the drive's own profile, one
candidate per grid point). dE = E_HIGH - E_LOW is one GP over (angle, branch) with
:func:`~ffparam.fit.profile_gp.branch_kernel`: the periodic part is mostly shared, each
branch has its own offset. The corrected energy of a candidate is E_LOW + the GP mean.
At each grid angle the candidate of lowest corrected energy wins, as in a relaxed HIGH
drive, with one exception: a run of one or two grid points on another branch than the
points on both sides of it takes their branch where that is within one standard deviation
of the run's winners (a near tie). The fit relaxes each point with MM from its geometry, so
a point on the wrong branch puts MM's relaxation in another rotamer there: on the sulfinate
of :mod:`ffparam.reference.drive_branches`, two such points, tied within 0.1 kcal/mol,
alone moved the fit fed exact DFT energies from 0.04 to 0.37 kcal/mol RMSE.

Uncertainty is that of the relative profile, as in :mod:`ffparam.fit.profile_gp`: each
candidate's variance relative to the mean over the profile's candidates. The next HIGH
point is the candidate of largest relative sigma among the profile's candidates and the
*contenders*, candidates whose corrected energy is within two standard deviations (of
their difference) of the profile's candidate at their grid angle, or below it: a branch
that cannot win is never computed. The loop stops when
every winner's and contender's relative sigma is below the threshold (after at least one
actively chosen point) or the budget is spent; start points are the usual spread points
on the drive's own profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ffparam.errors import InputError
from ffparam.fit.profile_gp import (
    DEFAULT_NOISE_KCAL_MOL,
    ActiveDeltaResult,
    GPPosterior,
    PeriodicGP,
    default_initial_count,
    initial_points,
    relative_sigma,
    run_active_loop,
)

MAX_ISLAND = 2
"""A run of at most this many grid points on another branch than both its neighbours is
put on the neighbours' branch when that is within one sigma there."""
CONTENDER_SIGMAS = 2.0
"""A candidate contends for its grid point while its corrected energy is within this many
standard deviations (of the difference) of the winner's."""


@dataclass
class BranchDeltaResult(ActiveDeltaResult):
    """The loop over candidates: the fields of
    :class:`~ffparam.fit.profile_gp.ActiveDeltaResult` over candidate indices (``posterior``
    unused), and

    Attributes:
        winners: (n_grid,) candidate index the profile takes at each grid point (module
            docstring).
        mean, cov: posterior dE over all candidates, kcal/mol and (kcal/mol)^2.
        relative: (m,) each candidate's sigma relative to the mean over the winners.
    """

    winners: np.ndarray | None = None
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    relative: np.ndarray | None = None

    def on_grid(self, grid_index: np.ndarray) -> ActiveDeltaResult:
        """The result as an :class:`~ffparam.fit.profile_gp.ActiveDeltaResult` on the
        grid: the winners' posterior; ``computed``/``failed`` as grid indices (every HIGH
        calculation, on any branch), ``values`` those of computed winners."""
        out = ActiveDeltaResult(
            computed=[int(grid_index[c]) for c in self.computed],
            failed=[int(grid_index[c]) for c in self.failed],
            values={int(grid_index[c]): v for c, v in self.values.items()
                    if c in set(self.winners.tolist())} if self.winners is not None else {},
            amplitude_kcal_mol=self.amplitude_kcal_mol, length_scales=self.length_scales,
            stop=self.stop, history=list(self.history),
            round_seconds=list(self.round_seconds))
        if self.winners is not None:
            w = self.winners
            cov = self.cov[np.ix_(w, w)]
            out.posterior = GPPosterior(self.mean[w], cov, relative_sigma(cov))
        return out


def active_delta_branches(grid_index: np.ndarray, branch: np.ndarray,
                          angles_deg: np.ndarray, low_kcal_mol: np.ndarray,
                          evaluate: Callable[[list[int]], Sequence[float]], budget: int,
                          threshold_kcal_mol: float = 0.1, first: int = 0,
                          n_initial: int | None = None,
                          noise_kcal_mol: float = DEFAULT_NOISE_KCAL_MOL,
                          time_limit_s: float | None = None) -> BranchDeltaResult:
    """Learn dE over candidates with at most ``budget`` HIGH calls (module docstring).

    Args:
        grid_index, branch: (m,) grid point and branch label of each candidate; the
            branch-0 candidates are one per grid point, candidate ``i`` at grid point ``i``.
        angles_deg: (m, d) each candidate's grid angles, degrees.
        low_kcal_mol: (m,) LOW energies.
        evaluate: dE (kcal/mol, NaN: failed) at candidate indices.
        first: the grid point (a branch-0 candidate) the start points spread from.
        time_limit_s: wall seconds the loop may spend (:func:`run_active_loop`).
    """
    grid_index = np.asarray(grid_index, dtype=np.int64)
    branch = np.asarray(branch, dtype=np.int64)
    angles = np.asarray(angles_deg, dtype=float).reshape(len(grid_index), -1)
    low = np.asarray(low_kcal_mol, dtype=float)
    n_grid = int(np.sum(branch == 0))
    if budget < 1:
        raise InputError(f"the HIGH budget must be at least 1, got {budget}")
    if threshold_kcal_mol <= 0:
        raise InputError(f"threshold_kcal_mol must be positive, got {threshold_kcal_mol}")
    if not np.array_equal(grid_index[:n_grid], np.arange(n_grid)) or \
            np.any(branch[:n_grid] != 0):
        raise InputError("the first candidates must be the drive's own profile, in grid "
                         "order (branch 0)")
    out = BranchDeltaResult()
    n_initial = n_initial or default_initial_count(angles.shape[1])
    start = initial_points(angles[:n_grid], min(n_initial, budget), first)
    open_set: list[int] = []

    def refit() -> None:
        open_set[:] = _update(out, grid_index, branch, angles, low, n_grid, noise_kcal_mol)

    def choose(asked: set[int]) -> int | None:
        choices = [c for c in open_set if c not in asked]
        return max(choices, key=lambda c: out.relative[c]) if choices else None

    return run_active_loop(out, start, evaluate, budget, threshold_kcal_mol, n_grid, refit,
                           choose, time_limit_s)


def _update(out: BranchDeltaResult, grid_index: np.ndarray, branch: np.ndarray,
            angles: np.ndarray, low: np.ndarray, n_grid: int, noise: float) -> list[int]:
    """Refit the GP on the computed candidates; set winners, posterior and history; return
    the winners and contenders (candidate indices)."""
    seen = sorted(out.values)
    gp = PeriodicGP(angles[seen], np.array([out.values[c] for c in seen]), noise,
                    branches=branch[seen])
    post = gp.predict(angles, branch)
    mean, cov = post.mean, post.cov
    corrected = low + mean
    winners = _profile(grid_index, branch, corrected, cov, n_grid)
    # variance of each candidate relative to the mean over the winners
    n = len(winners)
    cov_w = cov[:, winners].mean(axis=1)
    var_bar = cov[np.ix_(winners, winners)].sum() / n**2
    relative = np.sqrt(np.clip(np.diag(cov) - 2.0 * cov_w + var_bar, 0.0, None))
    open_set = [int(c) for c in winners]
    for c in range(len(low)):
        w = winners[grid_index[c]]
        if c == w:
            continue
        if corrected[c] - corrected[w] < CONTENDER_SIGMAS * _difference_sd(cov, c, w):
            open_set.append(c)
    out.winners, out.mean, out.cov = winners, mean, cov
    out.amplitude_kcal_mol, out.length_scales = gp.amplitude, gp.length_scales
    out.relative = relative
    out.history.append(float(relative[open_set].max()))
    return open_set


def _profile(grid_index: np.ndarray, branch: np.ndarray, corrected: np.ndarray,
             cov: np.ndarray, n_grid: int) -> np.ndarray:
    """(n_grid,) candidate per grid point: the lowest corrected energy, except that a run of
    at most :data:`MAX_ISLAND` grid points on another branch than the points on both sides
    of it takes their branch wherever that is within one standard deviation (of the
    difference) of the run's winners (module docstring)."""
    winners = []
    for g in range(n_grid):
        at = np.flatnonzero(grid_index == g)
        winners.append(int(at[np.argmin(corrected[at])]))
    candidate = {(int(grid_index[c]), int(branch[c])): int(c) for c in range(len(branch))}
    labels = [int(branch[w]) for w in winners]
    for start in range(n_grid):
        for length in range(1, MAX_ISLAND + 1):
            run = [(start + k) % n_grid for k in range(length)]
            before, after = (start - 1) % n_grid, (start + length) % n_grid
            outer = labels[before]
            if (before in run or after in run or labels[after] != outer
                    or any(labels[g] == outer for g in run)):
                continue
            swaps = [candidate.get((g, outer)) for g in run]
            if all(c is not None and _within_one_sigma(c, winners[g], corrected, cov)
                   for c, g in zip(swaps, run)):
                for c, g in zip(swaps, run):
                    winners[g], labels[g] = c, outer
    return np.array(winners)


def _within_one_sigma(c: int, w: int, corrected: np.ndarray, cov: np.ndarray) -> bool:
    return bool(corrected[c] - corrected[w] <= _difference_sd(cov, c, w))


def _difference_sd(cov: np.ndarray, c: int, w: int) -> float:
    """Standard deviation (kcal/mol) of dE_c - dE_w from the posterior covariance."""
    return float(np.sqrt(max(cov[c, c] + cov[w, w] - 2.0 * cov[c, w], 0.0)))


__all__ = ["CONTENDER_SIGMAS", "BranchDeltaResult", "active_delta_branches"]
