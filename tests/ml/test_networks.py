"""ANI and SchNet networks: forces are -dE/dR, invariances, per-atom energies, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ffparam.errors import InputError
from ffparam.ml.batch import Batch, make_batch
from ffparam.ml.models.ani import ANIModel
from ffparam.ml.models.base import energy_and_forces
from ffparam.ml.models.schnet import SchNetModel

MODELS = {
    "ani": lambda: ANIModel((1, 6, 8), hidden=(24, 16)),
    "schnet": lambda: SchNetModel((1, 6, 8), n_features=24, n_rbf=16, n_interactions=2),
}


def _model(name: str):
    torch.manual_seed(11)
    model = MODELS[name]().double()
    # non-trivial normalization so that the shift/scale path is exercised
    model.set_normalization(torch.tensor([-13.6, -1027.0, -2040.0]), 0.7)
    return model


def _with_positions(batch: Batch, positions: torch.Tensor) -> Batch:
    return Batch(batch.numbers, positions, batch.frame, batch.n_atoms)


@pytest.mark.parametrize("name", MODELS)
def test_forces_are_finite_difference_of_energy(name, ethanol):
    model = _model(name)
    batch = make_batch(ethanol, np.arange(2))
    _, forces, _ = energy_and_forces(model, batch)
    h = 1e-5
    rng = np.random.default_rng(0)
    for atom, axis in zip(rng.integers(0, 18, 6), rng.integers(0, 3, 6)):
        plus, minus = batch.positions.clone(), batch.positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        e_plus = energy_and_forces(model, _with_positions(batch, plus), forces=False)[0]
        e_minus = energy_and_forces(model, _with_positions(batch, minus), forces=False)[0]
        numeric = -float((e_plus - e_minus).sum()) / (2 * h)
        assert numeric == pytest.approx(float(forces[atom, axis]), abs=1e-7, rel=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_rotation_translation_permutation(name, ethanol):
    model = _model(name)
    batch = make_batch(ethanol, np.arange(1))
    energy, forces, atom_e = energy_and_forces(model, batch)
    rot = torch.tensor(Rotation.random(random_state=5).as_matrix())
    moved = batch.positions @ rot.T + torch.tensor([3.0, -2.0, 7.5])
    e2, f2, _ = energy_and_forces(model, _with_positions(batch, moved))
    assert float(e2) == pytest.approx(float(energy), abs=1e-9)
    np.testing.assert_allclose(f2.numpy(), (forces @ rot.T).numpy(), atol=1e-9)
    perm = torch.tensor([3, 0, 8, 1, 2, 7, 4, 6, 5])
    permuted = Batch(batch.numbers[perm], batch.positions[perm], batch.frame, batch.n_atoms)
    e3, f3, a3 = energy_and_forces(model, permuted)
    assert float(e3) == pytest.approx(float(energy), abs=1e-9)
    np.testing.assert_allclose(f3.numpy(), forces[perm].numpy(), atol=1e-9)
    np.testing.assert_allclose(a3.numpy(), atom_e[perm].numpy(), atol=1e-9)


@pytest.mark.parametrize("name", MODELS)
def test_per_atom_energies_and_batching(name, ethanol, bpa):
    model = _model(name)
    batch = make_batch(ethanol, np.arange(5))
    energy, forces, atom_e = energy_and_forces(model, batch)
    np.testing.assert_allclose(
        np.bincount(batch.frame.numpy(), weights=atom_e.detach().numpy()),
        energy.detach().numpy(),
        rtol=1e-12,
    )
    for k in range(5):
        e_k, f_k, _ = energy_and_forces(model, make_batch(ethanol, np.array([k])))
        assert float(e_k) == pytest.approx(float(energy[k]), abs=1e-9)
        np.testing.assert_allclose(f_k.numpy(), forces[9 * k : 9 * k + 9].numpy(), atol=1e-10)
    with pytest.raises(InputError, match="element\\(s\\) N not seen in training"):
        energy_and_forces(model, make_batch(bpa, np.arange(1)))
