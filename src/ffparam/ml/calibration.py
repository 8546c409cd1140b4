"""Is the predicted uncertainty any good? Rank correlation and miscalibration area.

* Spearman rank correlation between |error| and predicted sigma: does a larger sigma mean a
  larger error? (ties get average ranks).
* Miscalibration area (Tran et al., Mach. Learn.: Sci. Technol. 1, 025006 (2020)): for each
  expected probability p in (0, 1), the observed fraction of errors inside the central
  Gaussian interval |error| <= sigma * Phi^-1((1 + p)/2); the area between observed and
  expected, integral_0^1 |observed(p) - p| dp. 0 is perfect, 0.5 the worst.
* The factor s = sqrt(mean((error/sigma)^2)) that would rescale sigma to unit variance.
* Per frame (forces): Spearman between a frame's RMS force error and its predicted frame
  sigma (the RMS sqrt(mean sigma^2) of its force sigmas, or the model's own frame sigma:
  the GP's scaled energy sigma): does the model know which *frames* it gets wrong (what
  active learning selects by)?
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    values = np.asarray(values, dtype=float).ravel()
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long arrays."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def observed_fractions(errors: np.ndarray, sigmas: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Fraction of |errors| within the central Gaussian intervals of probabilities ``expected``."""
    z = np.abs(np.ravel(errors)) / np.maximum(np.ravel(sigmas), 1e-300)
    limits = ndtri(0.5 * (1.0 + np.asarray(expected)))
    return (z[None, :] <= limits[:, None]).mean(1)


def miscalibration_area(errors: np.ndarray, sigmas: np.ndarray, n_points: int = 201) -> float:
    """Area between the observed and the expected calibration curves (0 = calibrated)."""
    expected = np.linspace(0.0, 1.0, n_points)
    observed = observed_fractions(errors, sigmas, expected[:-1])
    observed = np.append(observed, 1.0)
    return float(np.trapezoid(np.abs(observed - expected), expected))


def frame_rms(values: np.ndarray, frame_index: np.ndarray) -> np.ndarray:
    """(n_frames,) root mean square of per-atom rows ``values`` (A, ...) of each frame;
    ``frame_index`` (A,) is the frame of each row (0 .. n_frames-1)."""
    frame_index = np.asarray(frame_index)
    squares = np.asarray(values, dtype=float).reshape(len(frame_index), -1) ** 2
    sums = np.bincount(frame_index, weights=squares.sum(1))
    counts = np.bincount(frame_index) * squares.shape[1]
    return np.sqrt(sums / counts)


def calibration_report(errors: np.ndarray, sigmas: np.ndarray,
                       frame_index: np.ndarray | None = None,
                       frame_sigma: np.ndarray | None = None) -> dict:
    """Spearman(|error|, sigma), miscalibration area and sigma rescaling factor; with
    ``frame_index`` (the frame of each row of per-atom ``errors``), also the per-frame
    Spearman of RMS error against the model's frame sigma (``frame_spearman``):
    ``frame_sigma`` (n_frames,) where the model gives one
    (:attr:`ffparam.ml.potential.Prediction.frame_sigma`), else the RMS sigma; with
    ``frame_sigma``, the RMS sigma's own figure is ``frame_spearman_rms_sigma``."""
    report = {
        "n": int(np.size(errors)),
        "spearman": spearman(np.abs(np.ravel(errors)), np.ravel(sigmas)),
        "miscalibration_area": miscalibration_area(np.ravel(errors), np.ravel(sigmas)),
        "sigma_scale": sigma_scale(errors, sigmas),
    }
    if frame_index is not None:
        error, rms_sigma = frame_rms(errors, frame_index), frame_rms(sigmas, frame_index)
        report["frame_spearman"] = spearman(error, rms_sigma if frame_sigma is None
                                            else frame_sigma)
        if frame_sigma is not None:
            report["frame_spearman_rms_sigma"] = spearman(error, rms_sigma)
    return report


def sigma_scale(errors: np.ndarray, sigmas: np.ndarray) -> float:
    """s = sqrt(mean((error/sigma)^2)): multiplying sigma by s gives unit variance."""
    z = np.ravel(errors) / np.maximum(np.ravel(sigmas), 1e-300)
    return float(np.sqrt(np.mean(z**2)))


def area_scale(errors: np.ndarray, sigmas: np.ndarray) -> float:
    """The factor s that minimizes the miscalibration area of ``s * sigmas`` (a grid in
    log s around the unit-variance factor, then refined), for sigmas whose errors are not
    Gaussian: with heavy tails the unit-variance factor over-covers the central intervals."""
    rms = max(sigma_scale(errors, sigmas), 1e-300)
    grid = rms * np.exp(np.linspace(np.log(1e-3), np.log(3.0), 121))
    areas = [miscalibration_area(errors, g * np.ravel(sigmas), n_points=101) for g in grid]
    best = int(np.argmin(areas))
    fine = grid[best] * np.exp(np.linspace(-0.06, 0.06, 13))
    areas = [miscalibration_area(errors, g * np.ravel(sigmas), n_points=101) for g in fine]
    return float(fine[int(np.argmin(areas))])
