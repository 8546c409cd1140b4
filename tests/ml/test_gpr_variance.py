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


def test_pair_permutation_gathers_the_permuted_features(ethanol):
    from ffparam.ml.models.gp.kernel import pair_permutation, permuted_features, weighted_features

    pos, perms = _frames(ethanol)
    orbits = pair_orbits(perms, pos.shape[1])
    weights = torch.linspace(0.5, 1.5, int(orbits.max()) + 1, dtype=torch.float64)[orbits]
    x, jac = weighted_features(pos[:4], weights)
    for perm in perms:
        columns = pair_permutation(perm, pos.shape[1])
        x_p, jac_p = permuted_features(pos[:4], perm, weights)
        np.testing.assert_allclose(x[:, columns].numpy(), x_p.numpy(), rtol=1e-14)
        np.testing.assert_allclose(jac[:, columns].numpy(), jac_p.numpy(), rtol=1e-14)


def test_greedy_selection_reduces_the_trace_most(ethanol):
    from ffparam.ml.models.gp.variance import energy_kernel, greedy_trace_selection

    pos, perms = _frames(ethanol)
    x = torch.as_tensor(np.asarray(ethanol.positions)).view(-1, 9, 3)[:25]
    from ffparam.ml.models.gp.kernel import inverse_distances

    x = inverse_distances(x)
    k = energy_kernel(x, x, perms, 1.3)
    reference = symmetric_kernel(pos[:25], pos[:25], 1.3, perms)[:25, :25]
    np.testing.assert_allclose(k.numpy(), reference.numpy(), atol=1e-12)

    def unexplained(subset):
        ks = k[:, subset]
        return float(torch.trace(k - ks @ torch.linalg.solve(k[subset][:, subset], ks.T)))

    chosen = greedy_trace_selection(k, 3)
    assert len(set(chosen)) == 3
    # the first pick is the best single frame, and the greedy triple beats other triples
    singles = [unexplained([j]) for j in range(25)]
    assert chosen[0] == int(np.argmin(singles))
    rng = np.random.default_rng(0)
    others = [unexplained(list(rng.choice(25, 3, replace=False))) for _ in range(20)]
    assert unexplained(chosen) <= min(others) + 1e-9


@pytest.mark.parametrize("variance_frames", [4, 50])
def test_variance_equals_the_dense_posterior(ethanol, ethanol_refs, variance_frames):
    """Predicted sigmas against the posterior written out densely: the exact GP's
    k_** - k_*^T (K + Lambda)^-1 k_* with the whole basis, the DTC form
    k_** - k_*v K_vv^-1 k_v* + k_*v (K_vv + K_vt Lambda^-1 K_tv)^-1 k_v* on a greedy
    4-frame variance basis."""
    from ffparam.ml.models.gp.solvers import noise_diagonal

    cfg = GPSettings(length_scale=1.6, learn_weights=False, variance_frames=variance_frames)
    gp = fit_gp(ethanol.subset(np.arange(0, 36, 3)), ethanol_refs, config=cfg)
    test = ethanol.subset(np.arange(40, 43))
    pred = gp.predict(test, uncertainty=True)
    perms, weights, length = gp.permutations, gp.descriptor_weights, gp.length_scale
    train = gp.train_positions
    noise = torch.diag(noise_diagonal(train.shape[0], 27, gp.cfg, torch.float64))
    for b in range(3):
        frame = torch.as_tensor(test.positions[9 * b : 9 * b + 9])[None]
        k_ss = symmetric_kernel(frame, frame, length, perms, None, weights)
        if variance_frames >= train.shape[0]:
            assert gp.variance_positions is None
            k_ts = symmetric_kernel(train, frame, length, perms, None, weights)
            k_tt = symmetric_kernel(train, train, length, perms, None, weights)
            post = k_ss - k_ts.T @ torch.linalg.solve(k_tt + noise, k_ts)
        else:
            v = gp.variance_positions
            assert v.shape[0] == 4
            k_vs = symmetric_kernel(v, frame, length, perms, None, weights)
            k_vv = symmetric_kernel(v, v, length, perms, None, weights)
            k_vt = symmetric_kernel(v, train, length, perms, None, weights)
            a = k_vv + k_vt @ torch.linalg.solve(noise, k_vt.T)
            post = (k_ss - k_vs.T @ torch.linalg.solve(k_vv, k_vs)
                    + k_vs.T @ torch.linalg.solve(a, k_vs))
        var = gp.signal_variance * (post.diagonal() + noise_diagonal(1, 27, gp.cfg,
                                                                     torch.float64))
        np.testing.assert_allclose(pred.energy_sigma[b] ** 2, float(var[0]), rtol=1e-5)
        np.testing.assert_allclose(pred.forces_sigma[9 * b : 9 * b + 9].ravel() ** 2,
                                   var[1:].numpy(), rtol=1e-5)


def test_refresh_uncertainty_rebases_a_fitted_model(ethanol, ethanol_refs, tmp_path):
    from ffparam.ml.models.gp.fit import refresh_uncertainty

    train, valid = ethanol.subset(np.arange(0, 24, 2)), ethanol.subset(np.arange(40, 46))
    cfg = GPSettings(length_scale=1.6, learn_weights=False, variance_frames=4,
                     variance_selection="fps")
    gp = fit_gp(train, ethanol_refs, valid, cfg)
    gp.save(tmp_path)
    old = load_potential(tmp_path)
    test = ethanol.subset(np.arange(50, 54))
    before = old.predict(test, uncertainty=True)
    refresh_uncertainty(old, valid, variance_selection="greedy", calibration="area")
    after = old.predict(test, uncertainty=True)
    np.testing.assert_allclose(after.forces, before.forces, rtol=1e-12)  # mean unchanged
    assert old.cfg.variance_selection == "greedy" and old.variance_positions.shape[0] == 4
    # the greedy basis consists of training frames
    train_pos = torch.as_tensor(train.positions).view(-1, 9, 3)
    assert all(bool((train_pos - frame).abs().amax((1, 2)).min() == 0)
               for frame in old.variance_positions)
    assert not np.allclose(after.forces_sigma, before.forces_sigma)


def test_frame_sigma_is_the_scaled_latent_energy_sigma(ethanol, ethanol_refs, tmp_path):
    """The GP's frame sigma (what active learning selects by and the frame Spearman ranks)
    is its noise-free energy sigma times one factor fitted so that its RMS over the
    validation frames equals their RMS frame force error; it survives save/load, and a
    model without the factor (an older one) ranks frames by its RMS force sigma."""
    from ffparam.ml.calibration import calibration_report, frame_rms, spearman
    from ffparam.ml.potential import frame_sigma

    train, valid = ethanol.subset(np.arange(0, 24, 2)), ethanol.subset(np.arange(40, 48))
    gp = fit_gp(train, ethanol_refs, valid, GPSettings(length_scale=1.6, learn_weights=False))
    scale = gp.frame_sigma_scale
    assert scale is not None and scale > 0 and gp.metadata["frame_sigma_scale"] == scale
    pred = gp.predict(valid, uncertainty=True)
    error = frame_rms(pred.forces - valid.forces, valid.atom_frame_index())
    np.testing.assert_allclose(np.sqrt(np.mean(pred.frame_sigma**2)),
                               np.sqrt(np.mean(error**2)), rtol=1e-10)
    # the latent energy variance, independently: the predictive one less the energy noise
    n = int(ethanol.n_atoms[0])
    var_e, _ = gp.predictive_variance(torch.as_tensor(valid.positions).view(-1, n, 3))
    latent = var_e.numpy() / gp.energy_variance_scale - gp.signal_variance * gp.cfg.energy_noise**2
    np.testing.assert_allclose(pred.frame_sigma, scale * np.sqrt(latent), rtol=1e-6)
    report = calibration_report(pred.forces - valid.forces, pred.forces_sigma,
                                valid.atom_frame_index(), pred.frame_sigma)
    assert report["frame_spearman"] == pytest.approx(spearman(error, pred.frame_sigma))
    assert report["frame_spearman_rms_sigma"] == pytest.approx(
        spearman(error, frame_rms(pred.forces_sigma, valid.atom_frame_index())))
    gp.save(tmp_path)
    loaded = load_potential(tmp_path)
    np.testing.assert_allclose(loaded.predict(valid, uncertainty=True).frame_sigma,
                               pred.frame_sigma, rtol=1e-10)
    loaded.frame_sigma_scale = None
    older = loaded.predict(valid, uncertainty=True)
    assert older.frame_sigma is None
    np.testing.assert_allclose(frame_sigma(older, valid.atom_frame_index()),
                               frame_rms(older.forces_sigma, valid.atom_frame_index()))


def test_md_leaves_out_the_gp_atom_energies_and_nothing_else(tiny_gp, ethanol):
    """MD asks the potential for no per-atom energies (the GP's integrated-gradient
    attribution costs several times its energy and forces); everything else it predicts
    is the same to the last bit."""
    from ffparam.ml.batch import iterate_batches
    from ffparam.ml.energy_model import PotentialEnergyModel
    from ffparam.units import EV_KCAL_MOL

    batch = next(iterate_batches(ethanol.subset(np.arange(4)), 4))
    full = tiny_gp.predict_batch(batch, uncertainty=True)
    lean = tiny_gp.predict_batch(batch, uncertainty=True, atom_energies=False)
    assert lean.atom_energies is None and full.atom_energies is not None
    for name in ("energy", "forces", "energy_sigma", "forces_sigma", "frame_sigma"):
        if getattr(full, name) is not None:
            np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))
    n = int(ethanol.n_atoms[0])
    positions = np.asarray(ethanol.positions).reshape(-1, n, 3)[:2]
    for flag in (True, False):
        out = PotentialEnergyModel(tiny_gp, ethanol.frame_numbers(0),
                                   atom_energies=flag).evaluate(positions)
        assert (out.atom_energies_kcal_mol is not None) == flag
        np.testing.assert_allclose(out.forces_kcal_mol_a,
                                   full.forces[: 2 * n].reshape(2, n, 3) * EV_KCAL_MOL,
                                   rtol=1e-9)
