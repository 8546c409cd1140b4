"""Per-frame calibration figures and the committee's validation sigma scale."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.ml.calibration import (
    area_scale,
    calibration_report,
    frame_rms,
    miscalibration_area,
    sigma_scale,
    spearman,
)


def test_frame_rms_groups_rows_by_frame():
    values = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(frame_rms(values, np.array([0, 0, 1])),
                               [np.sqrt(25.0 / 6.0), 1.0])


@pytest.mark.stochastic
def test_frame_spearman_sees_which_frames_are_uncertain(seed):
    # 200 frames of 5 atoms; each frame's force errors have one common sigma: per-frame
    # RMS error and sigma are strongly rank-correlated though single components are noisy
    rng = np.random.default_rng([seed, 2])
    frame_sigma = rng.uniform(0.05, 1.0, 200)
    index = np.repeat(np.arange(200), 5)
    sigmas = np.repeat(frame_sigma, 5)[:, None] * np.ones((1, 3))
    errors = rng.normal(size=sigmas.shape) * sigmas
    report = calibration_report(errors, sigmas, index)
    assert report["frame_spearman"] > 0.8 > report["spearman"]
    assert report["frame_spearman"] == pytest.approx(
        spearman(frame_rms(errors, index), frame_sigma))
    assert report["sigma_scale"] == pytest.approx(sigma_scale(errors, sigmas))
    assert "frame_spearman" not in calibration_report(errors, sigmas)


@pytest.mark.stochastic
def test_area_scale_recovers_the_scale_of_gaussian_errors(seed):
    rng = np.random.default_rng([seed, 3])
    sigma = rng.uniform(0.1, 2.0, 20000)
    errors = rng.normal(size=sigma.size) * sigma
    # 20000 draws: the area's minimum is known to a few percent in the scale
    assert area_scale(errors, sigma / 3.0) == pytest.approx(3.0, rel=0.06)
    heavy = rng.standard_t(2, size=sigma.size) * sigma  # heavy tails: area != variance fit
    s_area, s_rms = area_scale(heavy, sigma), sigma_scale(heavy, sigma)
    assert miscalibration_area(heavy, s_area * sigma) < miscalibration_area(heavy, s_rms * sigma)


def test_committee_spread_is_calibrated_on_validation(tiny_committee, ethanol):
    valid = ethanol.subset(np.arange(30, 40))  # the committee's validation frames
    pred = tiny_committee.predict(valid)
    err, sigma = pred.forces - valid.forces, pred.forces_sigma
    best = miscalibration_area(err, sigma, n_points=101)
    for factor in (0.7, 1.4):  # scaled spreads are no better calibrated on validation
        assert miscalibration_area(err, factor * sigma, n_points=101) >= best - 1e-12
    assert tiny_committee.metadata["forces_sigma_scale"] == tiny_committee.forces_sigma_scale
