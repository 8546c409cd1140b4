"""Gaussian process with forces: kernel derivatives, interpolation, variance, sparse = exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ffparam.chem.symmetry import molecule_automorphisms
from ffparam.errors import InputError
from ffparam.ml.batch import make_batch
from ffparam.ml.models.gp import GPSettings, fit_gp
from ffparam.ml.models.gp.kernel import (
    inverse_distances,
    joint_kernel,
    matern52,
    pair_orbits,
    permuted_features,
    symmetric_kernel,
)
from ffparam.ml.potential import load_potential


def _positions(data, frames):
    return torch.as_tensor(data.positions).view(-1, 9, 3)[frames].clone()


def _energy_kernel(pa, pb, length, perms=None):
    """k(E_a, E_b) by direct evaluation, for autograd."""
    perms = perms if perms is not None else torch.arange(pa.shape[1])[None]
    total = 0.0
    for p in perms:
        xa, xb = inverse_distances(pa), inverse_distances(pb[:, p])
        s = ((xa[:, None] - xb[None]) ** 2).sum(-1) / length**2
        total = total + matern52(s)[0]
    return total / len(perms)


@pytest.mark.parametrize("symmetrized", [False, True])
def test_kernel_blocks_are_derivatives_of_energy_kernel(ethanol, symmetrized):
    a, b = _positions(ethanol, [0, 1]), _positions(ethanol, [5, 6, 7])
    length = 0.7
    perms = torch.as_tensor(molecule_automorphisms(ethanol.frame_numbers(0), a[0].numpy()))
    if not symmetrized:
        perms = perms[:1]
    k = symmetric_kernel(a, b, length, perms)
    na, nb, g = 2, 3, 27
    # energy-energy block
    np.testing.assert_allclose(
        k[:na, :nb].numpy(), _energy_kernel(a, b, length, perms).numpy(), rtol=1e-12
    )
    # energy-gradient: d k(E_a0, E_b1) / d R_b1
    pb = b.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_energy_kernel(a, pb, length, perms)[0, 1], pb)
    np.testing.assert_allclose(
        k[0, nb + g : nb + 2 * g].numpy(), grad[1].reshape(-1).numpy(), atol=1e-12
    )

    # gradient-gradient: d^2 k(E_a1, E_b2) / dR_a1 dR_b2
    def grad_a(pb_):
        pa = a.clone().requires_grad_(True)
        kval = _energy_kernel(pa, pb_, length, perms)[1, 2]
        return torch.autograd.grad(kval, pa, create_graph=True)[0][1].reshape(-1)

    hess = torch.autograd.functional.jacobian(grad_a, b.clone())[:, 2].reshape(g, g)
    block = k[na + g : na + 2 * g, nb + 2 * g : nb + 3 * g]
    np.testing.assert_allclose(block.numpy(), hess.numpy(), atol=1e-10)


def test_training_kernel_symmetric_positive_definite(ethanol):
    pos = _positions(ethanol, list(range(6)))
    perms = torch.as_tensor(molecule_automorphisms(ethanol.frame_numbers(0), pos[0].numpy()))
    k = symmetric_kernel(pos, pos, 0.8, perms)
    np.testing.assert_allclose(k.numpy(), k.T.numpy(), atol=1e-12)
    assert float(torch.linalg.eigvalsh(k).min()) > -1e-9


def test_ethanol_automorphisms(ethanol):
    perms = molecule_automorphisms(ethanol.frame_numbers(0), ethanol.frame_positions(0))
    assert perms.shape == (12, 9)  # 3! methyl H x 2! methylene H
    np.testing.assert_array_equal(perms[0], np.arange(9))
    numbers = ethanol.frame_numbers(0)
    for p in perms:
        np.testing.assert_array_equal(numbers[p], numbers)


@pytest.fixture(scope="module")
def small_gp(ethanol, ethanol_refs):
    train = ethanol.subset(np.arange(0, 16, 2))
    cfg = GPSettings(length_scale=1.0, energy_noise=1e-4, force_noise=1e-4)
    return fit_gp(train, ethanol_refs, config=cfg), train


def test_gp_interpolates_training_data_with_small_variance(small_gp, ethanol):
    gp, train = small_gp
    pred = gp.predict(train, uncertainty=True)
    np.testing.assert_allclose(pred.energy, train.energies, atol=2e-3)
    np.testing.assert_allclose(pred.forces, train.forces, atol=2e-2)
    far = ethanol.subset(np.arange(40, 48))
    away = gp.predict(far, uncertainty=True)
    assert np.median(away.energy_sigma) > 3 * np.median(pred.energy_sigma)
    assert np.median(away.forces_sigma) > 3 * np.median(pred.forces_sigma)


def test_gp_forces_finite_difference_and_invariance(small_gp, ethanol):
    gp, _ = small_gp
    batch = make_batch(ethanol, np.array([31]))
    pred = gp.predict_batch(batch)
    h = 1e-5
    for atom, axis in ((0, 0), (4, 2), (8, 1)):
        plus, minus = batch.positions.clone(), batch.positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        ep = gp.predict_batch(make_batch_like(batch, plus), forces=False).energy[0]
        em = gp.predict_batch(make_batch_like(batch, minus), forces=False).energy[0]
        assert -(ep - em) / (2 * h) == pytest.approx(pred.forces[atom, axis], abs=1e-6)
    rot = torch.tensor(Rotation.random(random_state=2).as_matrix())
    moved = gp.predict_batch(make_batch_like(batch, batch.positions @ rot.T + 1.5))
    assert moved.energy[0] == pytest.approx(pred.energy[0], abs=1e-9)
    np.testing.assert_allclose(moved.forces, pred.forces @ rot.numpy().T, atol=1e-9)
    # swapping the methyl hydrogens is an automorphism: same energy, permuted forces
    perm = torch.as_tensor(gp.permutations[3])
    swapped = gp.predict_batch(make_batch_like(batch, batch.positions[perm]))
    assert swapped.energy[0] == pytest.approx(pred.energy[0], abs=1e-9)
    np.testing.assert_allclose(swapped.forces, pred.forces[perm.numpy()], atol=1e-9)
    # per-atom attribution sums to the total
    assert pred.atom_energies.sum() == pytest.approx(pred.energy[0], abs=1e-6)


def make_batch_like(batch, positions):
    from ffparam.ml.batch import Batch

    return Batch(batch.numbers, positions, batch.frame, batch.n_atoms)


def test_sparse_with_all_frames_inducing_equals_exact(ethanol, ethanol_refs):
    train = ethanol.subset(np.arange(0, 12, 2))
    test = ethanol.subset(np.arange(30, 33))
    common = dict(length_scale=1.0, energy_noise=1e-2, force_noise=1e-2, symmetrize=False)
    exact = fit_gp(train, ethanol_refs, config=GPSettings(**common))
    sparse = fit_gp(train, ethanol_refs, config=GPSettings(n_inducing=len(train), **common))
    assert sparse.sparse and not exact.sparse
    a = exact.predict(test, uncertainty=True)
    b = sparse.predict(test, uncertainty=True)
    np.testing.assert_allclose(b.energy, a.energy, atol=1e-6)
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-5)
    np.testing.assert_allclose(b.energy_sigma, a.energy_sigma, rtol=1e-3)
    np.testing.assert_allclose(b.forces_sigma, a.forces_sigma, rtol=1e-3)
    assert sparse.signal_variance == pytest.approx(exact.signal_variance, rel=1e-6)


def test_length_scale_selection_and_round_trip(ethanol, ethanol_refs, tmp_path):
    train, valid = ethanol.subset(np.arange(0, 10)), ethanol.subset(np.arange(50, 55))
    cfg = GPSettings(length_scales=(0.5, 2.0), force_noises=(1e-4, 1e-2), n_select=10,
                   learn_weights=False)
    gp = fit_gp(train, ethanol_refs, valid, cfg)
    scores = gp.metadata["selection_scores"]
    assert set(scores) == {"0.5/0.0001", "0.5/0.01", "2/0.0001", "2/0.01"}
    length, noise = min(scores, key=scores.get).split("/")
    assert (gp.length_scale, gp.cfg.force_noise) == (float(length), float(noise))
    gp.save(tmp_path)
    loaded = load_potential(tmp_path)
    test = ethanol.subset(np.arange(20, 23))
    a, b = gp.predict(test, uncertainty=True), loaded.predict(test, uncertainty=True)
    np.testing.assert_allclose(b.energy, a.energy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.forces_sigma, a.forces_sigma, rtol=1e-10)
    np.testing.assert_allclose(b.energy_sigma, a.energy_sigma, rtol=1e-10)
    assert loaded.cfg.force_noise == gp.cfg.force_noise


def test_selection_scores_are_validation_errors_only(ethanol, ethanol_refs):
    """Each grid score is the validation force MAE of a GP fitted on the training frames with
    that (l, lambda_G); another validation set gives that set's errors, and no other frames
    enter the choice."""
    train = ethanol.subset(np.arange(0, 16, 2))
    grid = dict(length_scales=(0.8, 3.2), force_noises=(1e-5, 1e-3), n_select=8)
    for frames in (np.arange(40, 46), np.arange(50, 60, 2)):
        valid = ethanol.subset(frames)
        gp = fit_gp(train, ethanol_refs, valid,
                    GPSettings(**grid, calibrate=False, learn_weights=False))
        scores = gp.metadata["selection_scores"]
        for length in grid["length_scales"]:
            for noise in grid["force_noises"]:
                fixed = GPSettings(length_scale=length, force_noise=noise, calibrate=False)
                ref = fit_gp(train, ethanol_refs, config=fixed).predict(valid)
                mae = np.abs(ref.forces - valid.forces).mean()
                assert scores[f"{length:g}/{noise:g}"] == pytest.approx(mae, rel=1e-8)
        best = min(scores, key=scores.get)
        assert f"{gp.length_scale:g}/{gp.cfg.force_noise:g}" == best
    with pytest.raises(InputError, match="validation set"):
        fit_gp(train, ethanol_refs, None, GPSettings(**grid))


def test_automorphisms_form_a_group_and_gp_is_invariant_under_all(small_gp, ethanol):
    gp, _ = small_gp
    perms = np.asarray(gp.permutations)
    seen = {tuple(p) for p in perms}
    assert len(seen) == 12
    for p in perms:  # closed under composition and inverse
        assert {tuple(p[q]) for q in perms} == seen
        assert tuple(np.argsort(p)) in seen
    batch = make_batch(ethanol, np.array([37]))
    pred = gp.predict_batch(batch)
    for p in perms:
        moved = gp.predict_batch(make_batch_like(batch, batch.positions[torch.as_tensor(p)]))
        assert moved.energy[0] == pytest.approx(pred.energy[0], abs=1e-9)
        np.testing.assert_allclose(moved.forces, pred.forces[p], atol=1e-9)
    # a permutation that is not an automorphism (swap a C-bound H with the hydroxyl H) changes
    # the prediction, so the invariance above is not trivial
    numbers = ethanol.frame_numbers(0)
    h = np.flatnonzero(numbers == 1)
    other = np.arange(9)
    hydroxyl = next(
        i for i in h if not any(tuple(p) != tuple(range(9)) and p[i] != i for p in perms)
    )
    methyl = next(i for i in h if i != hydroxyl)
    other[[hydroxyl, methyl]] = other[[methyl, hydroxyl]]
    swapped = gp.predict_batch(make_batch_like(batch, batch.positions[torch.as_tensor(other)]))
    assert abs(swapped.energy[0] - pred.energy[0]) > 1e-3


def test_gp_bad_input(small_gp, bpa, ethanol):
    gp, _ = small_gp
    with pytest.raises(InputError, match="element\\(s\\) N not seen by the GP model"):
        gp.predict(bpa)
    shuffled = ethanol.subset([0])
    from ffparam.ml.data import MLDataset

    reordered = MLDataset(
        shuffled.numbers[::-1].copy(), shuffled.positions[::-1].copy(), shuffled.n_atoms
    )
    with pytest.raises(InputError, match="describes one molecule"):
        gp.predict(reordered)


def test_permuted_features_jacobian(ethanol):
    pos = _positions(ethanol, [3])
    perm = torch.tensor([0, 2, 1, 5, 3, 4, 6, 8, 7])
    x, jac = permuted_features(pos, perm)
    p = pos.clone().requires_grad_(True)
    full = torch.autograd.functional.jacobian(lambda q: inverse_distances(q[:, perm]), p)
    np.testing.assert_allclose(jac[0].numpy(), full[0].reshape(x.shape[1], -1).numpy(), atol=1e-12)
    assert joint_kernel(x, jac, x, jac, 1.0).shape == (28, 28)


def test_variance_calibrated_on_validation(ethanol, ethanol_refs):
    train, valid = ethanol.subset(np.arange(0, 12)), ethanol.subset(np.arange(50, 56))
    gp = fit_gp(train, ethanol_refs, valid, GPSettings(length_scale=1.6))
    assert gp.metadata["variance_scale"] > 0
    pred = gp.predict(valid, uncertainty=True)
    z2 = np.mean(((pred.forces - valid.forces) / pred.forces_sigma) ** 2)
    assert z2 == pytest.approx(1.0, rel=1e-6)
    z2_energy = np.mean(((pred.energy - valid.energies) / pred.energy_sigma) ** 2)
    assert z2_energy == pytest.approx(1.0, rel=1e-6)
    assert gp.metadata["energy_variance_scale"] > 0


def test_ethanol_pair_orbits():
    """Ethanol C0 C1 O2 H3-H8 (methyl H 3,4,5 on C0; methylene H 6,7 on C1; hydroxyl H 8):
    the 36 pairs fall into 17 orbits under the 12 automorphisms, e.g. the three C0-H(methyl)
    bonds form one orbit, C1-H8 is alone."""
    pos = torch.zeros(1, 9, 3)
    numbers = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])
    coords = np.array([[0, 0, 0], [1.5, 0, 0], [2, 1.3, 0], [-0.4, 1, 0], [-0.4, -0.5, 0.9],
                       [-0.4, -0.5, -0.9], [1.9, -0.5, 0.9], [1.9, -0.5, -0.9], [2.9, 1.3, 0]])
    perms = torch.as_tensor(molecule_automorphisms(numbers, coords))
    orbits = pair_orbits(perms, 9)
    assert int(orbits.max()) + 1 == 17 and len(perms) == 12 and pos.shape == (1, 9, 3)
    i, j = np.triu_indices(9, 1)
    col = {(a, b): k for k, (a, b) in enumerate(zip(i, j))}
    assert len({int(orbits[col[(0, h)]]) for h in (3, 4, 5)}) == 1
    assert int(orbits[col[(0, 3)]]) != int(orbits[col[(1, 6)]])
    lone = int(orbits[col[(1, 8)]])
    assert (orbits == lone).sum() == 1


def test_descriptor_weights_learned_on_validation(ethanol, ethanol_refs, tmp_path):
    """The learned weights are one value per pair orbit (so the model keeps every
    automorphism invariance), the learning curve never ends above its start, the fitted
    model (same frames, weights and noise) reproduces the best validation error recorded by
    the learning loop through its own prediction path, and the weights survive save/load."""
    train, valid = ethanol.subset(np.arange(0, 10)), ethanol.subset(np.arange(50, 56))
    cfg = GPSettings(length_scales=(1.6, 6.4), force_noises=(1e-4, 1e-3), n_select=10,
                   weight_steps=6, calibrate=False)
    gp = fit_gp(train, ethanol_refs, valid, cfg)
    w = gp.descriptor_weights
    orbits = pair_orbits(gp.permutations, 9)
    for k in range(int(orbits.max()) + 1):
        assert torch.allclose(w[orbits == k], w[orbits == k][0])
    assert not torch.allclose(w, torch.ones_like(w))  # they moved
    history = gp.metadata["weight_learning"]["valid_force_mae_ev_a"]
    best = gp.metadata["weight_learning"]["best_step"]
    energies = gp.metadata["weight_learning"]["valid_energy_mae_ev"]
    assert len(history) == len(energies) == 7 and history[best] <= history[0]
    assert energies[best] <= 1.1 * energies[0]
    assert history[best] == min(h for h, e in zip(history, energies) if e <= 1.1 * energies[0])
    pred = gp.predict(valid)
    assert np.abs(pred.forces - valid.forces).mean() == pytest.approx(history[best], rel=1e-7)
    # invariance under the automorphisms with the weights in place
    batch = make_batch(ethanol, np.array([37]))
    ref = gp.predict_batch(batch)
    for p in np.asarray(gp.permutations):
        moved = gp.predict_batch(make_batch_like(batch, batch.positions[torch.as_tensor(p)]))
        np.testing.assert_allclose(moved.forces, ref.forces[p], atol=1e-9)
    gp.save(tmp_path)
    loaded = load_potential(tmp_path)
    test = ethanol.subset(np.arange(20, 23))
    np.testing.assert_allclose(loaded.predict(test).forces, gp.predict(test).forces, atol=1e-12)
    assert torch.equal(loaded.descriptor_weights, w)


def test_weighted_kernel_is_the_kernel_of_weighted_descriptors(ethanol):
    """symmetric_kernel with weights w equals the unweighted kernel evaluated by hand on
    w * x (energy block), and its derivative in w matches finite differences."""
    a, b = _positions(ethanol, [0, 1]), _positions(ethanol, [5, 6, 7])
    perms = torch.as_tensor(molecule_automorphisms(ethanol.frame_numbers(0), a[0].numpy()))
    orbits = pair_orbits(perms, 9)
    log_w = torch.linspace(-0.5, 0.5, int(orbits.max()) + 1, dtype=torch.float64)
    w = torch.exp(log_w)[orbits]
    k = symmetric_kernel(a, b, 0.7, perms, weights=w)
    by_hand = 0.0
    for p in perms:
        xa, xb = inverse_distances(a) * w, inverse_distances(b[:, p]) * w
        by_hand = by_hand + matern52(((xa[:, None] - xb[None]) ** 2).sum(-1) / 0.49)[0]
    np.testing.assert_allclose(k[:2, :3].numpy(), (by_hand / len(perms)).numpy(), rtol=1e-12)

    def total(lw):
        return symmetric_kernel(a, b, 0.7, perms, weights=torch.exp(lw)[orbits]).sum()

    lw = log_w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(total(lw), lw)
    h = 1e-6
    for k_orbit in (0, 5, 16):
        step = torch.zeros_like(log_w)
        step[k_orbit] = h
        fd = (total(log_w + step) - total(log_w - step)) / (2 * h)
        assert float(grad[k_orbit]) == pytest.approx(float(fd), rel=1e-5, abs=1e-6)
