"""Model directories written before the issue-19 reorganisation (tests/data/ml/saved_v1,
see its README) load with today's code and predict the numbers they predicted then; the
model registry is the one table behind training, loading and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ffparam.errors import InputError
from ffparam.ml.data import read_extxyz, read_isolated_atoms
from ffparam.ml.potential import load_potential
from ffparam.ml.registry import MODELS, TrainingJob, lookup_model, selectable_models, train_job
from tests.ml.conftest import DATA, ETHANOL_ATOMS

SAVED = DATA / "saved_v1"
EXPECTED = json.loads((SAVED / "expected.json").read_text())


@pytest.mark.parametrize("name", ["gpr", "ani", "schnet", "committee"])
def test_old_model_directories_load_and_predict_the_same(name):
    potential = load_potential(SAVED / name)
    assert potential.model_type == name
    pred = potential.predict(read_extxyz(SAVED / "test_frames.xyz"),
                             uncertainty=potential.has_uncertainty)
    for key, value in EXPECTED[name].items():
        if value is None:
            assert getattr(pred, key) is None
        else:
            np.testing.assert_allclose(getattr(pred, key), value, rtol=1e-10, atol=1e-10,
                                       err_msg=f"{name} {key}")


def test_gp_fit_reproduces_the_old_fit(ethanol, ethanol_refs, tmp_path):
    """The GP fitted today on the frames and options of the saved one (make_saved_v1.py)
    predicts what the GP fitted before the split of gpr.py predicted."""
    gp = train_job(TrainingJob("gpr", ethanol.subset(np.arange(0, 12)),
                               ethanol.subset(np.arange(40, 46)), tmp_path / "gp", ethanol_refs,
                               options={"length_scale": 1.6, "weight_steps": 2,
                                        "weight_frames": 8}))
    pred = gp.predict(read_extxyz(SAVED / "test_frames.xyz"), uncertainty=True)
    for key, value in EXPECTED["gpr"].items():
        np.testing.assert_allclose(getattr(pred, key), value, rtol=1e-8, atol=1e-9,
                                   err_msg=key)


def test_old_network_run_resumes_with_todays_settings(ethanol, tmp_path):
    """training.json written by the former TrainingConfig is the same run for
    TrainingSettings: the finished checkpoint is resumed, not refused or retrained."""
    run = tmp_path / "ani"
    shutil.copytree(SAVED / "ani", run)
    (run / "model.json").unlink()
    refs = read_isolated_atoms(ETHANOL_ATOMS)
    options = json.loads((SAVED / "ani" / "training.json").read_text())["model_config"]
    options.update(max_epochs=2, batch_size=6, dtype="float64")
    potential = train_job(TrainingJob("ani", ethanol.subset(np.arange(0, 12)),
                                      ethanol.subset(np.arange(40, 46)), run, refs,
                                      options=options))
    assert potential.metadata["summary"]["epoch"] == 2
    pred = potential.predict(read_extxyz(SAVED / "test_frames.xyz"))
    np.testing.assert_allclose(pred.energy, EXPECTED["ani"]["energy"], rtol=0, atol=1e-10)


def test_registry_is_the_one_table():
    from ffparam.cli.mlp import MODEL_HELP

    assert selectable_models() == ("ani", "schnet", "gpr", "mace")
    assert MODEL_HELP == "ani | schnet | gpr | mace"
    for name, kind in MODELS.items():
        if kind.network is None:  # a network's type is its network's (one Potential class)
            assert kind.potential_class().model_type == name
        else:
            assert kind.network_class().model_type == name
    assert lookup_model("schnet").network_class().model_type == "schnet"
    with pytest.raises(InputError, match="unknown model type 'nope'"):
        lookup_model("nope")
    with pytest.raises(InputError, match="not a native network"):
        lookup_model("gpr").network_class()


def test_registry_refuses_what_it_cannot_train(ethanol, ethanol_refs, tmp_path):
    data = ethanol.subset(np.arange(0, 6))
    with pytest.raises(InputError, match="unknown model 'committee'"):
        train_job(TrainingJob("committee", data, data, tmp_path / "c", ethanol_refs))
    with pytest.raises(InputError, match="cannot be a committee member"):
        train_job(TrainingJob("gpr", data, data, tmp_path / "g", ethanol_refs, committee=2))
    with pytest.raises(InputError, match="GP settings: unknown option"):
        train_job(TrainingJob("gpr", data, data, tmp_path / "g", ethanol_refs,
                              options={"hidden": [4]}))
    assert not Path(tmp_path / "g").exists()
