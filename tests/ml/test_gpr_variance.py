"""The fast GP paths: batched permutation-summed kernels against the reference kernel,
closed-form gradients against autograd, and variance factors saved with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffparam.chem.symmetry import molecule_automorphisms
from ffparam.ml.models.gp import GPSettings, fit_gp
from ffparam.ml.models.gp.kernel import pair_orbits, symmetric_kernel
from ffparam.ml.models.gp.variance import VarianceBasis, prior_diagonal
from ffparam.ml.potential import load_potential


def _frames(ethanol):
    n = int(ethanol.n_atoms[0])
    pos = torch.as_tensor(ethanol.positions).view(-1, n, 3)
    perms = torch.as_tensor(molecule_automorphisms(ethanol.frame_numbers(0), pos[0].numpy(), 64))
    return pos, perms


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_kernel_and_prior_equal_the_symmetric_kernel(ethanol, weighted):
    pos, perms = _frames(ethanol)
    weights = None
    if weighted:  # one weight per orbit, as the model learns them
        orbits = pair_orbits(perms, pos.shape[1])
        weights = torch.linspace(0.5, 1.5, int(orbits.max()) + 1, dtype=torch.float64)[orbits]
    basis = VarianceBasis(pos[:5], perms, 1.3, weights)
    test = pos[10:30]  # more than one chunk of frames
    reference = symmetric_kernel(pos[:5], test, 1.3, perms, None, weights)
    np.testing.assert_allclose(basis.cross(test).numpy(), reference.numpy(), atol=1e-12)
    diagonal = torch.stack([symmetric_kernel(f[None], f[None], 1.3, perms, None, weights)
                            .diagonal() for f in test])
    np.testing.assert_allclose(prior_diagonal(test, perms, 1.3, weights).numpy(),
                               diagonal.numpy(), atol=1e-12)


def test_closed_form_gradient_equals_autograd(tiny_gp, ethanol):
    x = tiny_gp.descriptor(torch.as_tensor(ethanol.positions[:90]).view(10, 9, 3))
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tiny_gp.energy_of_descriptor(x).sum(), x)
    energy, closed = tiny_gp.energy_and_gradient(x.detach())
    np.testing.assert_allclose(closed.numpy(), grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(energy.numpy(), tiny_gp.energy_of_descriptor(x).detach().numpy(),
                               rtol=1e-13)


def test_variance_basis_is_capped_and_saved(ethanol, ethanol_refs, tmp_path):
    cfg = GPSettings(length_scale=1.6, learn_weights=False, variance_frames=6)
    gp = fit_gp(ethanol.subset(np.arange(0, 20)), ethanol_refs, ethanol.subset(np.arange(40, 46)),
                cfg)
    assert gp.variance_positions.shape[0] == 6 and set(gp._factors) == {"kmm", "b"}
    gp.save(tmp_path)
    loaded = load_potential(tmp_path)
    assert set(loaded._factors) == {"kmm", "b"}  # read from the file, not recomputed
    test = ethanol.subset(np.arange(46, 52))
    a, b = gp.predict(test, uncertainty=True), loaded.predict(test, uncertainty=True)
    np.testing.assert_allclose(b.forces_sigma, a.forces_sigma, rtol=1e-12)
    np.testing.assert_allclose(b.energy_sigma, a.energy_sigma, rtol=1e-12)
    # the rank-limited variance still shrinks on the training frames
    train_sigma = gp.predict(ethanol.subset(np.arange(0, 6)), uncertainty=True).forces_sigma
    assert np.median(train_sigma) < np.median(a.forces_sigma)


def test_atom_energies_sum_to_the_energy(tiny_gp, ethanol):
    pred = tiny_gp.predict(ethanol.subset(np.arange(40, 44)))
    np.testing.assert_allclose(pred.atom_energies.reshape(4, 9).sum(1), pred.energy,
                               rtol=1e-9)


def test_area_calibration_minimizes_the_validation_area(ethanol, ethanol_refs):
    from ffparam.ml.calibration import miscalibration_area

    valid = ethanol.subset(np.arange(40, 50))
    cfg = GPSettings(length_scale=1.6, learn_weights=False, calibration="area")
    gp = fit_gp(ethanol.subset(np.arange(0, 12)), ethanol_refs, valid, cfg)
    pred = gp.predict(valid, uncertainty=True)
    err, sigma = pred.forces - valid.forces, pred.forces_sigma
    best = miscalibration_area(err, sigma, n_points=101)
    for factor in (0.8, 1.25):
        assert miscalibration_area(err, factor * sigma, n_points=101) >= best - 1e-12
