"""Committees and calibration metrics against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from ffparam.ml.calibration import calibration_report, miscalibration_area, spearman
from ffparam.ml.committee import Committee
from ffparam.ml.potential import load_potential


def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 8, 300).astype(float)  # many ties
    b = a + rng.normal(size=300)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)


@pytest.mark.stochastic
def test_miscalibration_area_of_calibrated_and_overconfident_sigmas(seed):
    # 40000 draws: the empirical coverage at each p is off by sqrt(p (1 - p) / n) <= 0.0025,
    # so a calibrated sigma's area is ~0.002 (bound 0.01) and the areas and the scale are
    # known to ~0.003 (bounds 0.01, 0.02)
    rng = np.random.default_rng([seed, 1])
    sigma = rng.uniform(0.1, 2.0, 40000)
    errors = rng.normal(size=sigma.size) * sigma
    assert miscalibration_area(errors, sigma) < 0.01

    # sigma three times too small: observed(p) = P(|Z| <= 3 z_p) = 2 Phi(3 z_p) - 1
    def gap(p):
        return abs(2 * stats.norm.cdf(3 * stats.norm.ppf(0.5 * (1 + p))) - 1 - p)

    expected, _ = integrate.quad(gap, 0, 1, limit=200)
    assert miscalibration_area(errors, sigma / 3) == pytest.approx(expected, abs=0.01)
    report = calibration_report(errors, sigma)
    assert report["sigma_scale"] == pytest.approx(1.0, abs=0.02)
    assert report["spearman"] > 0.3


def test_committee_mean_spread_and_round_trip(tiny_committee, ethanol, tmp_path):
    data = ethanol.subset(np.arange(40, 45))
    a, b = (m.predict(data) for m in tiny_committee.members)
    pred = tiny_committee.predict(data)
    np.testing.assert_allclose(pred.energy, 0.5 * (a.energy + b.energy), rtol=1e-12)
    # the spread, rescaled by the factors calibrated on the validation frames
    e_scale, f_scale = tiny_committee.energy_sigma_scale, tiny_committee.forces_sigma_scale
    np.testing.assert_allclose(pred.energy_sigma, e_scale * 0.5 * np.abs(a.energy - b.energy),
                               atol=1e-12)
    np.testing.assert_allclose(pred.forces_sigma, f_scale * 0.5 * np.abs(a.forces - b.forces),
                               atol=1e-12)
    assert np.all(pred.energy_sigma > 0)
    tiny_committee.save(tmp_path)
    loaded = load_potential(tmp_path)
    assert isinstance(loaded, Committee) and len(loaded.members) == 2
    np.testing.assert_allclose(loaded.predict(data).forces, pred.forces, rtol=0, atol=0)
    np.testing.assert_allclose(loaded.predict(data).forces_sigma, pred.forces_sigma, rtol=1e-12)
