"""Time-series statistics of correlated MD samples (pymbar.timeseries) and the
fluctuation formula for parameter derivatives of ensemble averages.

* Equilibration: :func:`equilibration_start` is the largest of pymbar's
  ``detect_equilibration`` starts over the given series (e.g. liquid energy and density),
  so every property uses the same frames.
* Standard error of a mean: s / sqrt(n / g), s the sample standard deviation and g the
  statistical inefficiency (pymbar ``statistical_inefficiency``; g >= 1).
* Derivative of an average in the ensemble of U (NVT or NPT; PV does not depend on the
  parameters):  d<A>/dtheta = <dA/dtheta> - beta (<A dU/dtheta> - <A><dU/dtheta>),
  beta = 1/(k_B T) in mol/kcal. Its standard error comes from a blocked jackknife
  (contiguous blocks, so correlation inside blocks is kept).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ffparam.errors import InputError

logging.getLogger("pymbar").setLevel(logging.ERROR)  # import-time JAX / timeseries notices


@dataclass(frozen=True)
class Estimate:
    """A mean and its standard error.

    Attributes:
        value, error: in the unit of the series.
        n_samples: frames used; inefficiency: statistical inefficiency g (1 when not
            estimated, e.g. for derived quantities).
    """

    value: float
    error: float
    n_samples: int = 0
    inefficiency: float = 1.0

    def to_json(self) -> dict:
        return {"value": self.value, "error": self.error, "n_samples": self.n_samples,
                "statistical_inefficiency": self.inefficiency}

    @classmethod
    def from_json(cls, data: dict) -> Estimate:
        """The inverse of :meth:`to_json` (every field required)."""
        return cls(data["value"], data["error"], data["n_samples"],
                   data["statistical_inefficiency"])


def _timeseries():
    from pymbar import timeseries

    return timeseries


def equilibration_start(*series: np.ndarray) -> int:
    """First frame to keep: the latest pymbar ``detect_equilibration`` start over
    ``series`` (each (n,), same length), never leaving fewer than 4 frames."""
    if not series:
        raise InputError("no time series given")
    n = len(series[0])
    if n < 4:
        raise InputError(f"{n} frames are too few for statistics (need at least 4)")
    ts = _timeseries()
    start = 0
    for values in series:
        values = np.asarray(values, dtype=np.float64)
        if len(values) != n:
            raise InputError("time series of different lengths")
        if np.ptp(values) == 0:
            continue
        t0, _, _ = ts.detect_equilibration(values, fast=True)
        start = max(start, int(t0))
    return min(start, n - 4)


def inefficiency(values: np.ndarray) -> float:
    """pymbar statistical inefficiency g (>= 1) of a series (1 for a constant one)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 4 or np.ptp(values) == 0:
        return 1.0
    return max(1.0, float(_timeseries().statistical_inefficiency(values, fast=False)))


def mean_estimate(values: np.ndarray) -> Estimate:
    """Mean of a correlated series with standard error s / sqrt(n / g)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        raise InputError("a mean with an error needs at least 2 samples")
    g = inefficiency(values)
    error = float(np.std(values, ddof=1) / math.sqrt(n / g))
    return Estimate(float(values.mean()), error, n, g)


def fluctuation_derivative(observable: np.ndarray, du_dtheta: np.ndarray, beta_mol_kcal: float,
                           da_dtheta: np.ndarray | None = None) -> np.ndarray:
    """d<A>/dtheta (P,) from samples A (n,), dU/dtheta (n, P) and optionally dA/dtheta
    (n, P), by the fluctuation formula of the module docstring."""
    a = np.asarray(observable, dtype=np.float64)
    du = np.asarray(du_dtheta, dtype=np.float64)
    covariance = ((a - a.mean())[:, None] * (du - du.mean(axis=0))).mean(axis=0)
    explicit = 0.0 if da_dtheta is None else np.asarray(da_dtheta).mean(axis=0)
    return explicit - beta_mol_kcal * covariance


def jackknife_error(estimator, arrays: tuple[np.ndarray, ...], n_blocks: int = 10
                    ) -> np.ndarray:
    """Blocked-jackknife standard error of ``estimator(*arrays)`` (arrays share their
    first axis, the frames): sqrt((B - 1)/B sum_b (theta_-b - mean)^2) over B contiguous
    blocks left out one at a time."""
    n = len(arrays[0])
    blocks = min(n_blocks, n // 2)
    if blocks < 2:
        raise InputError(f"{n} frames are too few for a jackknife error")
    edges = np.linspace(0, n, blocks + 1).astype(int)
    estimates = []
    for b in range(blocks):
        keep = np.r_[0:edges[b], edges[b + 1]:n]
        estimates.append(np.asarray(estimator(*(x[keep] for x in arrays)), dtype=np.float64))
    estimates = np.array(estimates)
    return np.sqrt((blocks - 1) / blocks * ((estimates - estimates.mean(axis=0)) ** 2).sum(0))


def derivative_estimate(observable: np.ndarray, du_dtheta: np.ndarray, beta_mol_kcal: float,
                        da_dtheta: np.ndarray | None = None, n_blocks: int = 10
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(d<A>/dtheta, standard error), both (P,), see :func:`fluctuation_derivative`."""
    value = fluctuation_derivative(observable, du_dtheta, beta_mol_kcal, da_dtheta)
    if da_dtheta is None:
        error = jackknife_error(lambda a, du: fluctuation_derivative(a, du, beta_mol_kcal),
                                (np.asarray(observable), np.asarray(du_dtheta)), n_blocks)
    else:
        error = jackknife_error(lambda a, du, da: fluctuation_derivative(a, du, beta_mol_kcal, da),
                                (np.asarray(observable), np.asarray(du_dtheta),
                                 np.asarray(da_dtheta)), n_blocks)
    return value, error


def reweighting_weights(delta_u: np.ndarray, beta_mol_kcal: float) -> tuple[np.ndarray, float]:
    """Normalized exponential-reweighting weights w_f ~ exp(-beta dU_f) for frames of one
    state moved to new parameters (dU_f = U_new - U_old, kcal/mol) and the effective
    sample size (sum w)^2 / sum w^2 (Kish)."""
    x = -beta_mol_kcal * np.asarray(delta_u, dtype=np.float64)
    w = np.exp(x - x.max())
    w /= w.sum()
    return w, float(1.0 / np.sum(w**2))
