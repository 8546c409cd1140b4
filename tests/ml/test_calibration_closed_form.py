"""Calibration figures against closed forms: errors placed exactly at the quantiles of a
Gaussian (a deterministic sample of it), whose calibration curve and area are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import ndtr, ndtri

from ffparam.ml.calibration import (
    area_scale,
    miscalibration_area,
    observed_fractions,
    sigma_scale,
    spearman,
)


def _gaussian_quantiles(n: int) -> np.ndarray:
    """n standard-normal errors at the mid-quantiles (i + 1/2)/n."""
    return ndtri((np.arange(n) + 0.5) / n)


def _area_of_scaled_gaussian(scale: float) -> float:
    """integral_0^1 |P(|z| <= q_p / scale) - p| dp for z ~ N(0, 1), q_p = Phi^-1((1+p)/2):
    the area of sigmas that are ``scale`` times too small (exact calibration at 1)."""
    def gap(p: float) -> float:
        return abs(2.0 * ndtr(ndtri(0.5 * (1.0 + p)) / scale) - 1.0 - p)

    return integrate.quad(gap, 0.0, 1.0, limit=200)[0]


@pytest.mark.parametrize("scale", [1.0, 0.5, 2.0])
def test_area_of_gaussian_errors_equals_the_closed_form(scale):
    errors = _gaussian_quantiles(20000)
    sigmas = np.full(errors.size, 1.0 / scale)  # sigma = 1/scale: errors are scale sigmas
    expected = _area_of_scaled_gaussian(scale)
    assert miscalibration_area(errors, sigmas, n_points=401) == pytest.approx(expected,
                                                                                abs=2e-3)
    if scale == 1.0:
        assert expected < 1e-9


def test_area_limits_and_observed_fractions():
    errors = _gaussian_quantiles(1000)
    # sigmas far too large: every error inside every interval, area = integral (1 - p) = 1/2
    assert miscalibration_area(errors, np.full(1000, 1e9)) == pytest.approx(0.5, abs=3e-3)
    # sigmas far too small: no error inside any interval, area = integral p = 1/2
    assert miscalibration_area(errors, np.full(1000, 1e-9)) == pytest.approx(0.5, abs=3e-3)
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(observed_fractions(errors, np.ones(1000), p), p, atol=2e-3)


def test_sigma_and_area_scale_of_gaussian_errors():
    errors = 3.0 * _gaussian_quantiles(20000)
    sigmas = np.ones(20000)
    # mean z^2 of the mid-quantile sample is 1 to O(log n / n)
    assert sigma_scale(errors, sigmas) == pytest.approx(3.0, rel=2e-3)
    assert area_scale(errors, sigmas) == pytest.approx(3.0, rel=1e-2)


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 10, 200).astype(float)  # many ties
    b = a + rng.normal(size=200) * 3.0
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.ones(5), np.arange(5.0)))
