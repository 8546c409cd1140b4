"""The torsion-profile plot draws the +/-1 sigma band of a curve: the PNG with a band
differs from the one without, and the pixels that differ carry the band's (red) tint."""

import numpy as np
from matplotlib.image import imread

from ffparam.report.plots import torsion_profile_plot


def test_band_is_drawn_around_its_curve(tmp_path):
    angles = np.arange(-180.0, 180.0, 15.0)
    fitted = 1.5 * (1 + np.cos(np.radians(2 * angles)))
    curves = {"reference": fitted + 0.05, "bespoke": fitted}
    plain = imread(torsion_profile_plot(tmp_path / "plain.png", angles, curves, "t"))
    banded = imread(torsion_profile_plot(tmp_path / "band.png", angles, curves, "t",
                                         bands={"bespoke": np.full_like(angles, 0.3)}))
    assert plain.shape == banded.shape
    changed = np.abs(plain - banded)[..., :3].sum(-1) > 0.05
    assert changed.sum() > 1000  # a band 0.6 kcal/mol wide over the whole range
    rgb = banded[changed][:, :3]
    assert np.median(rgb[:, 0] - rgb[:, 2]) > 0.05  # tinted like the red bespoke curve


def test_overfit_warning_only_beyond_twice():
    from ffparam.report.bespoke_metrics import RotorResult
    from ffparam.workflows.bespoke_results import overfit_warnings

    rotors = [RotorResult([0, 1], rmse_fitted=0.1, rmse_cv=0.19),
              RotorResult([1, 2], rmse_fitted=0.1, rmse_cv=0.25),
              RotorResult([2, 3], rmse_fitted=0.3, rmse_cv=0.1),
              RotorResult([3, 4], rmse_fitted=0.1)]
    warnings = overfit_warnings(rotors)
    assert len(warnings) == 2
    assert warnings[0].startswith("bond 1-2: cross-validated RMSE 0.250")
    assert warnings[1].startswith("bond 2-3:")
