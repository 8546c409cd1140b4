"""A Gaussian process on torsion grid angles: the HIGH - LOW correction along a drive,
and the choice of where to compute the next HIGH point.

The correction dE = E_HIGH - E_LOW (kcal/mol) on the LOW geometries of a torsion drive is
modelled as a function of the scanned dihedral(s) with a periodic kernel (a product of one
periodic kernel per dihedral for 2-D drives)::

    k(a, b) = s^2 prod_d exp(-2 sin^2((a_d - b_d) / 2) / l_d^2) + c^2 + noise^2 [a == b]

``s`` (kcal/mol) and the length scales ``l_d`` (dimensionless: l = 1 makes points 60
degrees apart correlate by exp(-0.5)) are chosen by maximizing the log marginal likelihood
within :data:`AMPLITUDE_BOUNDS_KCAL_MOL` and :data:`LENGTH_SCALE_BOUNDS`; ``c`` (a constant
offset, :data:`OFFSET_PRIOR_KCAL_MOL`) absorbs the unknown mean of dE after the observed
mean has been subtracted; ``noise`` is fixed (SCF convergence and the relaxed geometries'
small departures from a smooth function of the dihedral).

Only relative energies matter in a torsion fit (profiles are compared relative to their
mean), so the uncertainty that decides where to compute next and when to stop is that of
the *relative* corrected profile: the posterior covariance of dE on the grid, centred
(``P Sigma P`` with ``P = I - 11^T / n``), whose diagonal gives the per-point sigma. A
constant error in dE costs nothing and is not counted.

:func:`active_delta` runs the loop: a few spread start points (:func:`initial_points`),
then one HIGH point at a time at the grid point of largest relative sigma, until every
point's sigma is below the threshold or the budget is spent; the threshold is only
trusted after at least one actively chosen point (evenly spaced start points alias a
correction of their own period, e.g. three points 120 degrees apart see nothing of a 3-fold
term, and the GP fitted to them would be confidently wrong). The HIGH calculation is a
callback, so the loop is independent of how energies are computed; a failed point
(callback returns NaN) counts against the budget and is never asked again. With a time
limit the loop also stops (``stop = "time"``) before a round that would end past the
limit, judged by the wall time per point of the round before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

from ffparam.errors import InputError

AMPLITUDE_BOUNDS_KCAL_MOL = (0.01, 20.0)
"""Bounds of the kernel amplitude s, kcal/mol."""
LENGTH_SCALE_BOUNDS = (0.35, 1.0)
"""Bounds of each length scale l (dimensionless). Above 1 the kernel holds little beyond
the 1-fold term, so three points would fix a whole profile and the loop would stop on a
2-fold correction it has not seen; below 0.35 neighbouring 15-degree points barely
correlate and no budget below the grid size could cover a profile."""
OFFSET_PRIOR_KCAL_MOL = 10.0
"""Prior width c of the constant offset of dE (after the observed mean is removed)."""
DEFAULT_NOISE_KCAL_MOL = 0.02
"""Fixed noise of a HIGH - LOW difference, kcal/mol."""
BRANCH_SHARED_FRACTION = 0.75
"""With conformer branches (:mod:`ffparam.fit.profile_gp_branches`): the fraction of the
periodic part of dE that two branches share (the rest is their own)."""
BRANCH_OFFSET_PRIOR_KCAL_MOL = 1.0
"""Prior width of a branch's own constant offset of dE, kcal/mol (LOW's error in the
energy of one side-chain rotamer relative to another: 0.5-1 kcal/mol measured)."""


def periodic_kernel(a_deg: np.ndarray, b_deg: np.ndarray, amplitude_kcal_mol: float,
                    length_scales: Sequence[float]) -> np.ndarray:
    """Product periodic kernel (kcal/mol)^2 between angle rows ``a_deg`` (n, d) and
    ``b_deg`` (m, d), degrees; one length scale per dihedral."""
    a = np.radians(np.asarray(a_deg, dtype=float)).reshape(len(a_deg), -1)
    b = np.radians(np.asarray(b_deg, dtype=float)).reshape(len(b_deg), -1)
    exponent = np.zeros((len(a), len(b)))
    for d, scale in enumerate(length_scales):
        half = np.sin((a[:, None, d] - b[None, :, d]) / 2.0)
        exponent -= 2.0 * half**2 / scale**2
    return amplitude_kcal_mol**2 * np.exp(exponent)


def branch_kernel(a_deg: np.ndarray, a_branch: np.ndarray, b_deg: np.ndarray,
                  b_branch: np.ndarray, amplitude_kcal_mol: float,
                  length_scales: Sequence[float]) -> np.ndarray:
    """:func:`periodic_kernel` between points on conformer branches (integer labels
    ``a_branch`` (n,), ``b_branch`` (m,)): the periodic part is shared by
    :data:`BRANCH_SHARED_FRACTION` across branches, and each branch adds its own constant
    offset of prior width :data:`BRANCH_OFFSET_PRIOR_KCAL_MOL`; (kcal/mol)^2."""
    same = np.asarray(a_branch)[:, None] == np.asarray(b_branch)[None, :]
    periodic = periodic_kernel(a_deg, b_deg, amplitude_kcal_mol, length_scales)
    return periodic * np.where(same, 1.0, BRANCH_SHARED_FRACTION) \
        + BRANCH_OFFSET_PRIOR_KCAL_MOL**2 * same


@dataclass(frozen=True)
class GPPosterior:
    """The GP's prediction on a grid: ``mean`` (n,) kcal/mol (absolute dE), ``cov`` (n, n)
    (kcal/mol)^2, and ``relative_sigma`` (n,) kcal/mol, the standard deviation of each
    point relative to the grid mean (see the module docstring)."""

    mean: np.ndarray
    cov: np.ndarray
    relative_sigma: np.ndarray


class PeriodicGP:
    """GP regression of values (kcal/mol) on torsion angles (degrees), periodic kernel.

    Args:
        angles_deg: (n, d) observed grid angles, degrees (d = 1 or 2 dihedrals).
        values_kcal_mol: (n,) observed values.
        noise_kcal_mol: fixed observation noise.
        amplitude_kcal_mol, length_scales: fixed hyperparameters; None = chosen by
            :meth:`optimize` (called on construction).
        branches: optional (n,) conformer-branch label of each observation
            (:func:`branch_kernel`); :meth:`predict` then takes the labels of its points.
    """

    def __init__(self, angles_deg: np.ndarray, values_kcal_mol: np.ndarray,
                 noise_kcal_mol: float = DEFAULT_NOISE_KCAL_MOL,
                 amplitude_kcal_mol: float | None = None,
                 length_scales: Sequence[float] | None = None,
                 branches: np.ndarray | None = None) -> None:
        values = np.asarray(values_kcal_mol, dtype=float).reshape(-1)
        angles = np.asarray(angles_deg, dtype=float).reshape(len(values), -1)
        if len(values) < 1 or not np.all(np.isfinite(values)):
            raise InputError("the GP needs at least one finite observed value")
        if noise_kcal_mol <= 0:
            raise InputError(f"noise_kcal_mol must be positive, got {noise_kcal_mol}")
        self.angles, self.noise = angles, float(noise_kcal_mol)
        self.branches = None if branches is None else np.asarray(branches).reshape(-1)
        self.shift = float(values.mean())
        self.y = values - self.shift
        self.amplitude = amplitude_kcal_mol
        self.length_scales = None if length_scales is None else tuple(map(float, length_scales))
        if self.amplitude is None or self.length_scales is None:
            self.optimize()

    @property
    def n_dims(self) -> int:
        return self.angles.shape[1]

    def _kernel(self, a: np.ndarray, a_branch, b: np.ndarray, b_branch, amplitude: float,
                scales: Sequence[float]) -> np.ndarray:
        if self.branches is None:
            return periodic_kernel(a, b, amplitude, scales)
        return branch_kernel(a, a_branch, b, b_branch, amplitude, scales)

    def _train_kernel(self, amplitude: float, scales: Sequence[float]) -> np.ndarray:
        k = self._kernel(self.angles, self.branches, self.angles, self.branches, amplitude,
                         scales)
        return k + OFFSET_PRIOR_KCAL_MOL**2 + self.noise**2 * np.eye(len(self.y))

    def log_marginal_likelihood(self, amplitude_kcal_mol: float,
                                length_scales: Sequence[float]) -> float:
        """log p(y | hyperparameters) of the centred observations."""
        factor = cho_factor(self._train_kernel(amplitude_kcal_mol, length_scales), lower=True)
        alpha = cho_solve(factor, self.y)
        return float(-0.5 * self.y @ alpha - np.log(np.diag(factor[0])).sum()
                     - 0.5 * len(self.y) * np.log(2 * np.pi))

    def optimize(self) -> None:
        """Amplitude and length scales of largest marginal likelihood within the bounds
        (L-BFGS-B in log space from a few fixed starts: deterministic)."""
        bounds = [tuple(np.log(AMPLITUDE_BOUNDS_KCAL_MOL))] + \
            [tuple(np.log(LENGTH_SCALE_BOUNDS))] * self.n_dims
        spread = max(float(np.std(self.y)), 0.05)
        best = None
        for scale in (0.4, 0.7, 1.0):
            x0 = np.clip([np.log(spread)] + [np.log(scale)] * self.n_dims,
                         [b[0] for b in bounds], [b[1] for b in bounds])
            found = minimize(lambda p: -self.log_marginal_likelihood(np.exp(p[0]),
                                                                     np.exp(p[1:])),
                             x0, method="L-BFGS-B", bounds=bounds)
            if best is None or found.fun < best.fun:
                best = found
        self.amplitude = float(np.exp(best.x[0]))
        self.length_scales = tuple(float(v) for v in np.exp(best.x[1:]))

    def predict(self, grid_deg: np.ndarray, branches: np.ndarray | None = None
                ) -> GPPosterior:
        """Posterior mean, covariance and relative sigma (kcal/mol) on ``grid_deg`` (m, d)
        (on conformer branches ``branches`` (m,) if the GP was given branches)."""
        grid = np.asarray(grid_deg, dtype=float).reshape(-1, self.n_dims)
        if self.branches is not None and branches is None:
            raise InputError("this GP has conformer branches: predict() needs their labels")
        factor = cho_factor(self._train_kernel(self.amplitude, self.length_scales), lower=True)
        hyper = (self.amplitude, self.length_scales)
        cross = self._kernel(grid, branches, self.angles, self.branches, *hyper) \
            + OFFSET_PRIOR_KCAL_MOL**2
        prior = self._kernel(grid, branches, grid, branches, *hyper) + OFFSET_PRIOR_KCAL_MOL**2
        mean = cross @ cho_solve(factor, self.y) + self.shift
        cov = prior - cross @ cho_solve(factor, cross.T)
        return GPPosterior(mean, cov, relative_sigma(cov))


def relative_sigma(cov: np.ndarray) -> np.ndarray:
    """Standard deviation (kcal/mol) of each value minus the mean of all, from their
    covariance ``cov`` (n, n)."""
    n = len(cov)
    centre = np.eye(n) - np.full((n, n), 1.0 / n)
    return np.sqrt(np.clip(np.diag(centre @ cov @ centre), 0.0, None))


def initial_points(grid_deg: np.ndarray, n_points: int, first: int = 0) -> list[int]:
    """``n_points`` spread grid indices starting at ``first``: evenly spaced along a 1-D
    grid (sorted by angle), farthest-point on the torus for 2-D grids."""
    grid = np.asarray(grid_deg, dtype=float).reshape(len(grid_deg), -1)
    n_points = min(n_points, len(grid))
    if grid.shape[1] == 1:
        order = list(np.argsort(grid[:, 0], kind="stable"))
        start = order.index(first)
        picks = [order[(start + round(i * len(grid) / n_points)) % len(grid)]
                 for i in range(n_points)]
        return [int(i) for i in dict.fromkeys(picks)]
    chosen = [int(first)]
    while len(chosen) < n_points:
        gap = np.radians(np.abs(grid[:, None, :] - grid[None, chosen, :]))
        distance = np.sqrt((2 * np.sin(gap / 2) ** 2).sum(-1)).min(axis=1)
        chosen.append(int(np.argmax(distance)))
    return chosen


def default_initial_count(n_dims: int) -> int:
    """Start points of the active loop: 3 for a 1-D drive, 5 for a 2-D one."""
    return 3 if n_dims == 1 else 5


@dataclass
class ActiveDeltaResult:
    """What the active loop did along one drive.

    Attributes:
        computed: grid indices with a HIGH value, in the order they were asked for.
        failed: grid indices whose HIGH calculation failed (asked, no value).
        values: grid index -> dE, kcal/mol.
        posterior: the final prediction on the grid (None if no point succeeded).
        amplitude_kcal_mol, length_scales: the final GP hyperparameters.
        stop: ``threshold`` (every relative sigma below it), ``budget`` (all HIGH
            calculations spent), ``time`` (the next round would pass the time limit),
            ``grid`` (every grid point asked) or ``no_data``.
        history: max relative sigma (kcal/mol) after each GP update.
    """

    computed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    values: dict[int, float] = field(default_factory=dict)
    posterior: GPPosterior | None = None
    amplitude_kcal_mol: float | None = None
    length_scales: tuple[float, ...] = ()
    stop: str = "no_data"
    history: list[float] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    """Wall time of each round of HIGH calculations (start batch, then one point each)."""

    @property
    def n_asked(self) -> int:
        return len(self.computed) + len(self.failed)


def next_point(posterior: GPPosterior, asked: set[int]) -> int | None:
    """Grid index of largest relative sigma among those not asked yet (None: all asked)."""
    sigma = np.where([i in asked for i in range(len(posterior.relative_sigma))], -np.inf,
                     posterior.relative_sigma)
    return None if not np.isfinite(sigma).any() else int(np.argmax(sigma))


def active_delta(grid_deg: np.ndarray, evaluate: Callable[[list[int]], Sequence[float]],
                 budget: int, threshold_kcal_mol: float = 0.1, first: int = 0,
                 n_initial: int | None = None,
                 noise_kcal_mol: float = DEFAULT_NOISE_KCAL_MOL,
                 time_limit_s: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> ActiveDeltaResult:
    """Learn dE on ``grid_deg`` (n, d) degrees with at most ``budget`` calls of HIGH.

    ``evaluate(indices)`` returns dE (kcal/mol) at those grid indices, NaN for a failed
    calculation. Start points: :func:`initial_points` from ``first`` (``n_initial``,
    default :func:`default_initial_count`); then one point at a time by
    :func:`next_point` until the max relative sigma is below ``threshold_kcal_mol`` (checked
    from the first actively chosen point on: module docstring) or, with ``time_limit_s``
    (wall seconds by ``clock``), until the next round would end past it."""
    grid = np.asarray(grid_deg, dtype=float).reshape(len(grid_deg), -1)
    if budget < 1:
        raise InputError(f"the HIGH budget must be at least 1, got {budget}")
    if threshold_kcal_mol <= 0:
        raise InputError(f"threshold_kcal_mol must be positive, got {threshold_kcal_mol}")
    out = ActiveDeltaResult()
    n_initial = n_initial or default_initial_count(grid.shape[1])
    start = initial_points(grid, min(n_initial, budget), first)

    def refit() -> None:
        _update(out, grid, noise_kcal_mol)

    def choose(asked: set[int]) -> int | None:
        return next_point(out.posterior, asked)

    return run_active_loop(out, start, evaluate, budget, threshold_kcal_mol, len(grid),
                           refit, choose, time_limit_s, clock)


def run_active_loop(out: ActiveDeltaResult, start: list[int],
                    evaluate: Callable[[list[int]], Sequence[float]], budget: int,
                    threshold_kcal_mol: float, n_points: int, refit: Callable[[], None],
                    choose: Callable[[set[int]], int | None],
                    time_limit_s: float | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> ActiveDeltaResult:
    """The active loop shared by :func:`active_delta` and the loop over conformer
    branches: evaluate the ``start`` points, then ``refit`` (which sets ``out.posterior``
    and appends the max relative sigma to ``out.history``) and ask ``choose(asked)`` for one
    point at a time, until the threshold (after at least one chosen point), the budget or
    the ``n_points`` candidates are spent, or (``time_limit_s``) until the elapsed wall
    time plus one point at the last round's time per point would pass the limit; fills
    ``out`` in place and returns it."""
    if time_limit_s is not None and time_limit_s <= 0:
        raise InputError(f"the HIGH time limit must be positive, got {time_limit_s} s")
    batch, n_start = list(start), len(start)
    begin = clock()
    while batch:
        round_start = clock()
        values = evaluate(batch)
        out.round_seconds.append(clock() - round_start)
        for index, value in zip(batch, values):
            if np.isfinite(value):
                out.computed.append(index)
                out.values[index] = float(value)
            else:
                out.failed.append(index)
        if out.values:
            refit()
            if out.history[-1] < threshold_kcal_mol and out.n_asked > n_start:
                out.stop = "threshold"
                return out
        asked = set(out.computed) | set(out.failed)
        if out.n_asked >= budget:
            out.stop = "budget" if out.values else "no_data"
            return out
        if time_limit_s is not None and \
                clock() - begin + out.round_seconds[-1] / len(batch) > time_limit_s:
            out.stop = "time" if out.values else "no_data"
            return out
        if not out.values:  # nothing succeeded yet: the next point not asked
            batch = sorted(set(range(n_points)) - asked)[:1]
        else:
            following = choose(asked)
            batch = [] if following is None else [following]
    out.stop = "grid" if out.values else "no_data"
    return out


def _update(out: ActiveDeltaResult, grid: np.ndarray, noise: float) -> None:
    indices = sorted(out.values)
    gp = PeriodicGP(grid[indices], np.array([out.values[i] for i in indices]), noise)
    out.posterior = gp.predict(grid)
    out.amplitude_kcal_mol, out.length_scales = gp.amplitude, gp.length_scales
    out.history.append(float(out.posterior.relative_sigma.max()))


__all__ = [
    "ActiveDeltaResult",
    "GPPosterior",
    "PeriodicGP",
    "active_delta",
    "branch_kernel",
    "default_initial_count",
    "initial_points",
    "next_point",
    "periodic_kernel",
    "relative_sigma",
    "run_active_loop",
]
