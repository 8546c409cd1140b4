"""MACE adapter: trained by mace-torch's own trainer, used through our interface."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ffparam.errors import InputError
from ffparam.ml.checkpoint import WEIGHTS
from ffparam.ml.potential import NetworkPotential, load_potential

if importlib.util.find_spec("mace") is None:  # do not import it here: see _require_mace
    pytest.skip("mace-torch not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def mace_model(ethanol, ethanol_refs, tmp_path_factory):
    from ffparam.ml.models.mace import MaceSettings, train_mace

    out = tmp_path_factory.mktemp("mace")
    settings = MaceSettings(
        num_channels=8,
        max_ell=2,
        correlation=2,
        num_radial_basis=6,
        batch_size=6,
        max_num_epochs=2,
        default_dtype="float64",
    )
    pot = train_mace(
        ethanol.subset(np.arange(0, 12)),
        ethanol.subset(np.arange(12, 16)),
        out,
        ethanol_refs,
        settings,
    )
    return pot, out


def test_mace_round_trip_weights_only(mace_model, ethanol):
    pot, out = mace_model
    state = torch.load(out / WEIGHTS, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = load_potential(out)
    assert loaded.model_type == "mace" and loaded.elements == (1, 6, 8)
    test = ethanol.subset(np.arange(40, 43))
    a, b = pot.predict(test), loaded.predict(test)
    np.testing.assert_array_equal(a.energy, b.energy)
    np.testing.assert_array_equal(a.forces, b.forces)
    np.testing.assert_allclose(a.atom_energies.reshape(3, 9).sum(1), a.energy, atol=1e-9)
    assert pot.metadata["epochs"] == 2
    train = ethanol.subset(np.arange(0, 12))
    assert abs(np.mean(train.energies - pot.predict(train, forces=False).energy)) < 1e-6


def test_mace_forces_are_gradient(mace_model, ethanol):
    pot, _ = mace_model
    from ffparam.ml.batch import Batch, make_batch

    batch = make_batch(ethanol, np.array([44]))
    forces = pot.predict_batch(batch).forces
    h = 1e-5
    for atom, axis in ((0, 0), (5, 2)):
        plus, minus = batch.positions.clone(), batch.positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        ep = pot.predict_batch(Batch(batch.numbers, plus, batch.frame, batch.n_atoms)).energy
        em = pot.predict_batch(Batch(batch.numbers, minus, batch.frame, batch.n_atoms)).energy
        assert -(ep[0] - em[0]) / (2 * h) == pytest.approx(forces[atom, axis], abs=1e-6)


def test_mace_bad_input(mace_model, bpa):
    pot, out = mace_model
    with pytest.raises(InputError, match="N not seen by the MACE model"):
        pot.predict(bpa)
    with pytest.raises(InputError, match="holds a mace model, not ani"):
        NetworkPotential.load(out, expected_type="ani")


def test_mace_import_leaves_torch_load_default_alone(mace_model):
    import os

    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
