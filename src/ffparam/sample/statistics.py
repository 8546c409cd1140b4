"""Statistics of correlated samples: autocorrelation time, effective sample size, block
averages, and torsion (rotamer) states of sampled geometries.

The error of a mean of correlated samples is sqrt(var / N_eff) with N_eff = N / tau
(tau the integrated autocorrelation time, in samples). Block averaging gives the same
without estimating tau: the means of blocks much longer than tau are nearly independent,
so their spread over sqrt(n_blocks) is the standard error. Independent chains are the
cleanest case: the chain means are independent, whatever the correlation within a chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffparam.errors import InputError

STATE_LABELS = ("g+", "t", "g-")
"""Labels of the three torsion bins: (0, 120], (120, 240], (240, 360] degrees."""


def integrated_autocorrelation_time(series: np.ndarray, window_c: float = 5.0) -> float:
    """Integrated autocorrelation time tau (in samples, >= 1) of ``series`` (n,) or
    (n, n_chains) (chains averaged), with Sokal's automatic window (the first lag M with
    M >= ``window_c`` * tau(M)). A constant series gives 1."""
    x = np.asarray(series, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    n = x.shape[0]
    if n < 2:
        raise InputError(f"autocorrelation needs at least 2 samples, got {n}")
    x = x - x.mean(axis=0)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, n=size, axis=0)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:n].mean(axis=1)
    if acf[0] <= 0:
        return 1.0
    rho = acf / acf[0]
    taus = 2.0 * np.cumsum(rho) - 1.0
    lags = np.arange(n)
    inside = lags >= window_c * taus
    window = int(np.argmax(inside)) if inside.any() else n - 1
    return float(max(taus[window], 1.0))


def effective_sample_size(series: np.ndarray) -> float:
    """N / tau for ``series`` (n,) or (n, n_chains): samples in all chains over tau."""
    x = np.asarray(series, dtype=np.float64)
    return float(x.size / integrated_autocorrelation_time(x))


def block_average(series: np.ndarray, n_blocks: int = 20) -> tuple[float, float]:
    """Mean and standard error of a time series (n,) from ``n_blocks`` equal blocks
    (the tail that does not fill a block is dropped)."""
    x = np.asarray(series, dtype=np.float64).ravel()
    if n_blocks < 2 or x.size < n_blocks:
        raise InputError(f"block average: need n_blocks >= 2 and at least n_blocks samples, "
                         f"got {n_blocks} blocks for {x.size} samples")
    size = x.size // n_blocks
    means = x[: size * n_blocks].reshape(n_blocks, size).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


def chain_average(samples: np.ndarray) -> tuple[float, float]:
    """Mean and standard error over independent chains of ``samples`` (n_samples,
    n_chains): the spread of the chain means over sqrt(n_chains)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise InputError(f"chain average needs (n_samples, n_chains >= 2), got {x.shape}")
    means = x.mean(axis=0)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(x.shape[1]))


def dihedral_angles(positions: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Dihedral angles (..., n_quads) in degrees, [0, 360) (IUPAC sign, as RDKit), of
    ``positions`` (..., n_atoms, 3) for atom quadruples ``quads`` (n_quads, 4)."""
    x = np.asarray(positions, dtype=np.float64)
    q = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
    a, b, c, d = (x[..., q[:, i], :] for i in range(4))
    b1, b2, b3 = b - a, c - b, d - c
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * (b1 * n2).sum(-1)
    phi = np.degrees(np.arctan2(y, (n1 * n2).sum(-1)))
    return np.mod(phi, 360.0)


def torsion_states(angles_deg: np.ndarray) -> np.ndarray:
    """Bin index 0, 1, 2 (labels :data:`STATE_LABELS`: g+, t, g-) of each angle."""
    a = np.mod(np.asarray(angles_deg, dtype=np.float64), 360.0)
    return np.clip(np.ceil(a / 120.0).astype(np.int64) - 1, 0, 2)


@dataclass(frozen=True)
class Populations:
    """Fractions of sampled frames in each state, with standard errors.

    Attributes:
        labels: state names. fractions, errors: (n_states,) fractions and their standard
            errors (over independent chains, see :func:`chain_average`).
    """

    labels: tuple[str, ...]
    fractions: np.ndarray
    errors: np.ndarray

    def as_dict(self) -> dict[str, tuple[float, float]]:
        return {label: (float(f), float(e))
                for label, f, e in zip(self.labels, self.fractions, self.errors)}


def state_populations(states: np.ndarray, labels: tuple[str, ...]) -> Populations:
    """Populations of integer ``states`` (n_frames, n_chains) in 0..len(labels)-1."""
    s = np.asarray(states, dtype=np.int64)
    fractions, errors = [], []
    for i in range(len(labels)):
        mean, error = chain_average((s == i).astype(np.float64))
        fractions.append(mean)
        errors.append(error)
    return Populations(tuple(labels), np.array(fractions), np.array(errors))
