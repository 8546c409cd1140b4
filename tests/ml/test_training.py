"""Training loop: loss decreases, checkpoints round-trip, a SIGKILLed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from ffparam.errors import InputError
from ffparam.ml.checkpoint import WEIGHTS
from ffparam.ml.data import split_indices
from ffparam.ml.potential import NetworkPotential, load_potential
from ffparam.ml.training import CHECKPOINT, TrainingSettings, train_network
from tests.ml.conftest import ETHANOL, ETHANOL_ATOMS

TINY = {"ani": {"hidden": [16, 16]}, "schnet": {"n_features": 16, "n_rbf": 12, "n_interactions": 2}}


@pytest.fixture(scope="module")
def sets(ethanol, seed):
    split = split_indices(len(ethanol), 30, 10, 10, seed=seed)
    return ethanol.subset(split.train), ethanol.subset(split.valid), ethanol.subset(split.test)


@pytest.mark.stochastic
@pytest.mark.parametrize("name", ["ani", "schnet"])
def test_loss_decreases_and_round_trip(name, sets, ethanol_refs, tmp_path, seed):
    # random split and initialization from the session seed: a randomly initialized
    # network must halve its loss in 25 epochs for every seed (checked by the seed sweep)
    train, valid, test = sets
    cfg = TrainingSettings(max_epochs=25, batch_size=8, dtype="float64", learning_rate=5e-3,
                         seed=seed)
    pot = train_network(name, train, valid, tmp_path, ethanol_refs, TINY[name], cfg)
    history = pot.metadata["history"]
    assert len(history) == 25
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    # the saved state is plain tensors: loadable with weights_only=True
    state = torch.load(tmp_path / WEIGHTS, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = load_potential(tmp_path)
    assert isinstance(loaded, NetworkPotential) and loaded.model_type == name
    a, b = pot.predict(test), loaded.predict(test)
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_array_equal(a.forces, b.forces)
    best = min(h["loss"] for h in history)
    assert pot.metadata["summary"]["best_loss"] == best
    # the closed-form energy-shift refit leaves no mean energy offset on the training set
    assert abs(np.mean(train.energies - pot.predict(train).energy)) < 1e-6
    assert set(pot.metadata["energy_shift_correction"]) == {"1", "6", "8"}


def test_early_stopping_and_time_budget(sets, ethanol_refs, tmp_path):
    train, valid, _ = sets
    cfg = TrainingSettings(max_epochs=500, batch_size=8, learning_rate=0.0,
                           early_stopping_patience=3)
    pot = train_network("ani", train, valid, tmp_path / "a", ethanol_refs, TINY["ani"], cfg)
    assert pot.metadata["summary"]["epoch"] == 4
    assert "no validation improvement" in pot.metadata["summary"]["stop_reason"]
    cfg = TrainingSettings(max_epochs=100000, batch_size=8, time_budget_s=1.0)
    pot = train_network("ani", train, valid, tmp_path / "b", ethanol_refs, TINY["ani"], cfg)
    summary = pot.metadata["summary"]
    assert "CPU-time budget" in summary["stop_reason"] and summary["epoch"] < 100000


def test_checkpoint_is_not_resumed_on_other_frames(sets, ethanol_refs, tmp_path):
    """A checkpoint records the fingerprint of its training and validation frames; resuming
    it on a different split is refused (it used to continue silently on the new data)."""
    train, valid, _ = sets
    cfg = TrainingSettings(max_epochs=2, batch_size=8)
    train_network("ani", train, valid, tmp_path, ethanol_refs, TINY["ani"], cfg)
    assert (tmp_path / "checkpoint.pt").is_file()
    other_train = train.subset(np.arange(len(train) - 1))
    with pytest.raises(InputError, match="different data"):
        train_network("ani", other_train, valid, tmp_path, ethanol_refs, TINY["ani"], cfg)
    with pytest.raises(InputError, match="different data"):
        train_network("ani", valid, train, tmp_path, ethanol_refs, TINY["ani"], cfg)
    more = TrainingSettings(max_epochs=3, batch_size=8)  # same frames: resumes and extends
    pot = train_network("ani", train, valid, tmp_path, ethanol_refs, TINY["ani"], more)
    assert pot.metadata["summary"]["epoch"] == 3


def test_unknown_network_option_is_one_error_before_any_output(sets, ethanol_refs, tmp_path):
    train, valid, _ = sets
    with pytest.raises(InputError, match="unknown ani option\\(s\\) foo \\(network: aev, "):
        train_network("ani", train, valid, tmp_path / "run", ethanol_refs, {"foo": 1},
                      TrainingSettings(max_epochs=1))
    assert not (tmp_path / "run").exists()


def test_other_model_type_checkpoint_is_an_error(sets, ethanol_refs, tmp_path):
    train, valid, _ = sets
    cfg = TrainingSettings(max_epochs=2, batch_size=8)
    train_network("schnet", train, valid, tmp_path, ethanol_refs, TINY["schnet"], cfg)
    with pytest.raises(InputError, match="holds a checkpoint of a schnet model, not ani"):
        train_network("ani", train, valid, tmp_path, ethanol_refs, TINY["ani"], cfg)
    with pytest.raises(InputError, match="holds a schnet model, not ani"):
        NetworkPotential.load(tmp_path, expected_type="ani")
    # weights that do not fit the config: one clear line
    info = json.loads((tmp_path / "model.json").read_text())
    info["config"]["model"]["n_features"] = 20
    (tmp_path / "model.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="do not match its model config"):
        load_potential(tmp_path)


SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from ffparam.ml.data import read_extxyz, read_isolated_atoms, split_indices
    from ffparam.ml.training import TrainingSettings, train_network
    data = read_extxyz(sys.argv[1])
    split = split_indices(len(data), 30, 10, 10, seed=int(sys.argv[5]))  # as `sets`
    cfg = TrainingSettings(max_epochs=int(sys.argv[4]), batch_size=6, dtype="float64")
    train_network("ani", data.subset(split.train), data.subset(split.valid), sys.argv[3],
                  read_isolated_atoms(sys.argv[2]), {"hidden": [16, 16]}, cfg)
""")


def _checkpoint_epoch(path) -> int:
    try:
        return torch.load(path, weights_only=True)["state"]["epoch"]
    except Exception:  # not written yet
        return 0


@pytest.mark.stochastic
def test_sigkill_then_resume_reproduces_uninterrupted_run(sets, ethanol_refs, tmp_path, seed):
    epochs = 30
    run_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ETHANOL), str(ETHANOL_ATOMS), str(run_dir), str(epochs),
         str(seed)],
        env=env,
    )
    deadline = time.time() + 120
    while _checkpoint_epoch(run_dir / CHECKPOINT) < 3 and time.time() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _checkpoint_epoch(run_dir / CHECKPOINT)
    assert 3 <= killed_at < epochs and not (run_dir / WEIGHTS).exists()

    train, valid, _ = sets
    cfg = TrainingSettings(max_epochs=epochs, batch_size=6, dtype="float64")
    resumed = train_network("ani", train, valid, run_dir, ethanol_refs, {"hidden": [16, 16]}, cfg)
    history = resumed.metadata["history"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    straight = train_network(
        "ani", train, valid, tmp_path / "straight", ethanol_refs, {"hidden": [16, 16]}, cfg
    )
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
