"""Per-atom view, the HTML report of `mlp eval`, and `mlp eval --compare FF`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ffparam.ml.interpret import atom_view, calibration_curve
from ffparam.units import EV_KCAL_MOL


@pytest.fixture(scope="module")
def test_frames(ethanol):
    return ethanol.subset(np.arange(40, 60))


def test_atom_view_of_gp(tiny_gp, test_frames):
    pred = tiny_gp.predict(test_frames, uncertainty=True)
    view = atom_view(pred, test_frames)
    numbers = test_frames.frame_numbers(0)
    assert len(view.frames) == len(test_frames)
    for z in np.unique(numbers):  # relative to the element's mean: zero sum per element
        assert abs(view.energy_mev[numbers == z].sum()) < 1e-6
    atom_e = pred.atom_energies.reshape(len(test_frames), -1)
    carbon = atom_e[:, 0] - atom_e[:, numbers == 6].mean()
    assert view.energy_mev[0] == pytest.approx(1000 * carbon.mean(), abs=1e-9)
    sigma = pred.forces_sigma.reshape(len(test_frames), -1, 3)
    np.testing.assert_allclose(view.sigma_mev_a, 1000 * np.linalg.norm(sigma, axis=2).mean(0))
    error = (pred.forces - test_frames.forces).reshape(len(test_frames), -1, 3)
    np.testing.assert_allclose(view.error_mev_a, 1000 * np.linalg.norm(error, axis=2).mean(0))


def test_atom_view_of_committee_and_mixed_frames(tiny_committee, ethanol, bpa):
    from ffparam.ml.data import MLDataset

    pred = tiny_committee.predict(ethanol.subset([0, 1]), uncertainty=True)
    view = atom_view(pred, ethanol.subset([0, 1]))
    assert view.sigma_mev_a.shape == (9,) and np.all(view.sigma_mev_a > 0)
    # frames of another molecule are left out of the view
    mixed = MLDataset(np.concatenate([ethanol.numbers[:9], bpa.numbers[:27]]),
                      np.concatenate([ethanol.positions[:9], bpa.positions[:27]]),
                      np.array([9, 27]))
    fake = type(pred)(np.zeros(2), None, np.zeros(36))
    assert atom_view(fake, mixed).frames.tolist() == [0]


def test_calibration_curve_of_gaussian_errors():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.5, 2.0, 20000)
    expected, observed = calibration_curve(rng.normal(0, sigma), sigma)
    assert observed[0] == 0 and observed[-1] == 1
    assert np.abs(observed - expected).max() < 0.02
    _, wide = calibration_curve(rng.normal(0, 2 * sigma), sigma)  # overconfident sigma
    assert np.all(wide[1:-1] < expected[1:-1])


def test_eval_report_and_compare(tiny_gp, test_frames, tmp_path, capsys):
    from ffparam.cli.main import main

    tiny_gp.save(tmp_path / "gp")
    test_frames.write_extxyz(tmp_path / "test.xyz")
    assert main(["mlp", "eval", str(tmp_path / "gp"), str(tmp_path / "test.xyz"), "--compare",
                 "sage", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    html = (tmp_path / "gp" / "report_test.html").read_text()
    assert metrics["report"].endswith("report_test.html")
    assert html.count("<svg") == 3  # atomic energy, uncertainty, force error
    assert "per-atom uncertainty" in html and "force uncertainty calibration" in html
    assert "distribution of force-component errors" in html
    assert len(re.findall(r"data:image/png;base64,", html)) >= 6
    scores = metrics["comparison"]["models"]
    assert set(scores) == {"sage", "gpr"}
    # the ML row of the comparison is the same model on the same frames as the metrics
    assert scores["gpr"]["force_mae_kcal_mol_a"] == pytest.approx(
        metrics["forces_mae_mev_a"] / 1000 * EV_KCAL_MOL, rel=1e-3)
    assert scores["sage"]["force_mae_kcal_mol_a"] > scores["gpr"]["force_mae_kcal_mol_a"]
    assert "sage" in html and "force field vs ML vs reference" in html


def test_eval_report_without_uncertainty(tiny_committee, test_frames, tmp_path):
    from ffparam.workflows.mlp import evaluate

    member = tiny_committee.members[0]
    member.save(tmp_path / "ani")
    test_frames.write_extxyz(tmp_path / "test.xyz")
    metrics = evaluate(tmp_path / "ani", tmp_path / "test.xyz", report=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert metrics["report"] == str(tmp_path / "r.html")
    assert html.count("<svg") == 2 and "has no uncertainty" in html


def test_compare_with_a_force_field_of_another_molecule_fails(tiny_gp, test_frames, tmp_path,
                                                              capsys):
    from ffparam.cli.main import main
    from ffparam.ml.delta import resolve_baseline

    xml = resolve_baseline("sage", test_frames).xml  # then atom 0 made a hydrogen
    (tmp_path / "bad.system.xml").write_text(xml.replace('<Particle mass="12.011"',
                                                         '<Particle mass="1.008"', 1))
    tiny_gp.save(tmp_path / "gp")
    test_frames.write_extxyz(tmp_path / "test.xyz")
    code = main(["mlp", "eval", str(tmp_path / "gp"), str(tmp_path / "test.xyz"),
                 "--compare", str(tmp_path / "bad.system.xml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "particle 0 has mass 1.008" in err
    assert not (tmp_path / "gp" / "report_test.html").exists()
