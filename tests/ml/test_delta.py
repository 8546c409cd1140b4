"""Δ-learning: a GP correction on top of a GFN1-xTB or Sage (OpenMM System) baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.errors import FFParamError, InputError, UnsupportedChemistryError
from ffparam.ml.data import MLDataset, fit_reference_energies
from ffparam.ml.delta import (
    BASELINE_XML,
    DeltaPotential,
    baseline_labels,
    resolve_baseline,
    train_delta,
)
from ffparam.ml.potential import load_potential
from ffparam.ml.registry import TrainingJob
from ffparam.units import EV_KCAL_MOL

GP_OPTIONS = {"length_scale": 1.6, "learn_weights": False}


def _train(data: MLDataset, baseline, out, n_train=12):
    job = TrainingJob("gpr", data.subset(range(n_train)), data.subset(range(n_train, 20)),
                      out, {}, options=dict(GP_OPTIONS))
    return train_delta(job, baseline)


@pytest.fixture(scope="module")
def gfn1(ethanol):
    return resolve_baseline("gfn1-xtb", ethanol)


@pytest.fixture(scope="module")
def sage(ethanol):
    return resolve_baseline("sage", ethanol)


@pytest.fixture(scope="module")
def delta_gfn1(ethanol, gfn1, tmp_path_factory):
    out = tmp_path_factory.mktemp("delta") / "model"
    return _train(ethanol, gfn1, out), out


def _baseline_ev(baseline, positions, numbers):
    out = baseline.model(numbers).evaluate(positions)
    return out.energy_kcal_mol / EV_KCAL_MOL, out.forces_kcal_mol_a / EV_KCAL_MOL


def test_prediction_is_baseline_plus_correction(ethanol, delta_gfn1, gfn1):
    trained, _ = delta_gfn1
    test = ethanol.subset(range(30, 40))
    pred = trained.potential.predict(test, uncertainty=True)
    correction = trained.potential.correction.predict(test, uncertainty=True)
    pos = test.positions.reshape(len(test), -1, 3)
    e_base, f_base = _baseline_ev(gfn1, pos, test.frame_numbers(0))
    assert np.abs(pred.energy - (e_base + correction.energy)).max() < 1e-10
    assert np.abs(pred.forces - (f_base.reshape(-1, 3) + correction.forces)).max() < 1e-10
    np.testing.assert_allclose(pred.forces_sigma, correction.forces_sigma, rtol=1e-12)
    per_frame = np.add.reduceat(pred.atom_energies, test.offsets[:-1])
    np.testing.assert_allclose(per_frame, pred.energy, atol=1e-10)


def test_correction_learns_the_difference(ethanol, delta_gfn1, gfn1):
    trained, _ = delta_gfn1
    train = ethanol.subset(range(12))
    e_base, f_base, ok = baseline_labels(gfn1, train)
    assert ok.all()
    np.testing.assert_allclose(trained.train.energies, train.energies - e_base)
    np.testing.assert_allclose(trained.train.forces, train.forces - f_base)


def test_save_load_round_trip(ethanol, delta_gfn1, tmp_path):
    trained, out = delta_gfn1
    info = json.loads((out / "model.json").read_text())
    assert info["model_type"] == "delta"
    assert info["config"]["baseline"]["method"] == "gfn1-xtb"
    loaded = load_potential(out)
    assert isinstance(loaded, DeltaPotential)
    test = ethanol.subset(range(40, 45))
    a, b = trained.potential.predict(test), loaded.predict(test)
    np.testing.assert_allclose(a.energy, b.energy, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.forces, b.forces, rtol=0, atol=1e-10)
    assert (out / "baseline.db").is_file()  # the baseline labels are cached in a Store


def test_system_baseline_copied_with_hash(ethanol, sage, tmp_path):
    trained = _train(ethanol, sage, tmp_path / "m", n_train=8)
    test = ethanol.subset(range(30, 34))
    pred = load_potential(tmp_path / "m").predict(test)
    e_base, f_base = _baseline_ev(sage, test.positions.reshape(4, -1, 3), test.frame_numbers(0))
    correction = trained.potential.correction.predict(test)
    assert np.abs(pred.energy - (e_base + correction.energy)).max() < 1e-10
    assert np.abs(pred.forces - (f_base.reshape(-1, 3) + correction.forces)).max() < 1e-10
    record = json.loads((tmp_path / "m" / "model.json").read_text())["config"]["baseline"]
    assert record["kind"] == "openmm" and len(record["sha256"]) == 64
    xml = tmp_path / "m" / BASELINE_XML
    xml.write_text(xml.read_text().replace("<Particle mass=", "<Particle  mass=", 1))
    with pytest.raises(InputError, match="modified after training"):
        load_potential(tmp_path / "m")


def test_system_xml_file_as_baseline(ethanol, sage, tmp_path):
    path = tmp_path / "ethanol.system.xml"
    path.write_text(sage.xml)
    from_file = resolve_baseline(str(path), ethanol)
    assert from_file.xml == sage.xml and from_file.kind == "openmm"


def test_delta_gp_beats_direct_gp_on_gfn2_labels(ethanol, gfn1):
    """GFN2-xTB labels; a Δ-GP on a GFN1-xTB baseline beats the direct GP at 10 frames."""
    from ffparam.ml.models.gp import GPSettings, fit_gp

    gfn2 = resolve_baseline("gfn2-xtb", ethanol)
    e2, f2, _ = baseline_labels(gfn2, ethanol)
    labelled = MLDataset(ethanol.numbers, ethanol.positions, ethanol.n_atoms, e2, f2)
    train, test = labelled.subset(range(10)), labelled.subset(range(30, 60))
    cfg = GPSettings(length_scale=1.6, learn_weights=False, calibrate=False)
    direct = fit_gp(train, fit_reference_energies(train), config=cfg)
    e1, f1, ok = baseline_labels(gfn1, train)
    from ffparam.ml.delta import delta_dataset

    delta_train = delta_dataset(train, e1, f1, ok)
    correction = fit_gp(delta_train, fit_reference_energies(delta_train), config=cfg)
    model = DeltaPotential(correction, gfn1)
    direct_mae = np.abs(direct.predict(test).forces - test.forces).mean()
    delta_mae = np.abs(model.predict(test).forces - test.forces).mean()
    assert delta_mae < 0.5 * direct_mae


def test_system_of_another_molecule_is_refused(ethanol, bpa, sage, tmp_path):
    from ffparam.ml.delta import check_baseline

    with pytest.raises(UnsupportedChemistryError, match="System of another molecule"):
        check_baseline(sage, bpa)
    path = tmp_path / "ethanol.system.xml"
    path.write_text(sage.xml)
    with pytest.raises(UnsupportedChemistryError, match="9 particles but the molecule has 27"):
        resolve_baseline(str(path), bpa)


def test_wrong_atom_order_is_refused(ethanol, sage):
    from ffparam.ml.delta import OpenMMSystemModel

    numbers = list(ethanol.frame_numbers(0))
    numbers[0], numbers[-1] = numbers[-1], numbers[0]
    with pytest.raises(UnsupportedChemistryError, match="particle 0 has mass"):
        OpenMMSystemModel(sage.xml, numbers)


def test_bad_baselines_are_one_line_errors(ethanol, tmp_path):
    bad = tmp_path / "bad.system.xml"
    bad.write_text("<System nonsense")
    for text in (str(bad), "no-such-method", str(tmp_path / "missing.system.xml")):
        with pytest.raises(FFParamError) as err:
            resolve_baseline(text, ethanol)
        assert "\n" not in str(err.value)


def test_cli_train_eval_md_with_baseline(ethanol, tmp_path, capsys):
    """`mlp train --baseline gfn1-xtb`; `mlp eval` and `mlp md` take the Δ-model unchanged."""
    from ase.io import read

    from ffparam.cli.main import main

    ethanol.subset(range(12)).write_extxyz(tmp_path / "train.xyz")
    ethanol.subset(range(12, 20)).write_extxyz(tmp_path / "valid.xyz")
    ethanol.subset(range(40, 46)).write_extxyz(tmp_path / "test.xyz")
    out = tmp_path / "delta"
    assert main(["mlp", "train", "--model", "gpr", "--train", str(tmp_path / "train.xyz"),
                 "--valid", str(tmp_path / "valid.xyz"), "--out", str(out), "--baseline",
                 "gfn1-xtb", "--option", "length_scale=1.6", "--option",
                 "learn_weights=false"]) == 0
    assert "gpr Δ-model on gfn1-xtb" in capsys.readouterr().out
    assert main(["mlp", "eval", str(out), str(tmp_path / "test.xyz"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model_type"] == "delta" and metrics["forces_mae_mev_a"] < 100
    traj = tmp_path / "traj.xyz"
    assert main(["mlp", "md", str(out), str(tmp_path / "test.xyz"), "--steps", "4",
                 "--interval", "2", "-o", str(traj), "--max-force-sigma", "100"]) == 0
    assert len(read(str(traj), index=":")) == 3


def test_cli_baseline_of_another_molecule_fails_before_training(ethanol, bpa, sage,
                                                                tmp_path, capsys):
    from ffparam.cli.main import main

    bpa.write_extxyz(tmp_path / "train.xyz")
    (tmp_path / "eth.system.xml").write_text(sage.xml)
    code = main(["mlp", "train", "--model", "gpr", "--train", str(tmp_path / "train.xyz"),
                 "--out", str(tmp_path / "m"), "--baseline", str(tmp_path / "eth.system.xml")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "9 particles" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("edit", [
    {"file": "../../outside.xml"},
    {"kind": "script"},
    {"sha256": None},
])
def test_malformed_saved_baselines_are_refused(ethanol, sage, tmp_path, edit):
    from ffparam.ml.models.gp import GPSettings, fit_gp

    correction = fit_gp(ethanol.subset(range(4)), fit_reference_energies(ethanol.subset(
        range(4))), config=GPSettings(length_scale=1.6, learn_weights=False, calibrate=False))
    DeltaPotential(correction, sage).save(tmp_path / "m")
    (tmp_path / "outside.xml").write_text(sage.xml)
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    info["config"]["baseline"].update(edit)
    (tmp_path / "m" / "model.json").write_text(json.dumps(info))
    with pytest.raises(InputError) as err:
        load_potential(tmp_path / "m")
    assert "\n" not in str(err.value)
