"""Fitting the GP: targets, symmetry, hyperparameters, the exact or sparse solution and
the calibration of its variances on the validation set."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from ffparam.chem.symmetry import molecule_automorphisms
from ffparam.ml.calibration import area_scale, frame_rms
from ffparam.ml.data import MLDataset, check_elements, reference_energy_per_frame
from ffparam.ml.models.gp.data import check_single_molecule, frames
from ffparam.ml.models.gp.hyperparameters import select_hyperparameters
from ffparam.ml.models.gp.kernel import weighted_features
from ffparam.ml.models.gp.metric import learn_descriptor_weights
from ffparam.ml.models.gp.model import GaussianProcessPotential
from ffparam.ml.models.gp.settings import GPSettings
from ffparam.ml.models.gp.solvers import (
    farthest_point_sampling,
    observations,
    solve_exact,
    solve_sparse,
)
from ffparam.ml.registry import TrainingJob


def fit_gp(
    train: MLDataset,
    reference_energies: dict[int, float],
    valid: MLDataset | None = None,
    config: GPSettings | None = None,
    progress: bool = False,
) -> GaussianProcessPotential:
    """Fit the GP on ``train`` (energies eV, forces eV/Angstrom of one molecule)."""
    cfg = config or GPSettings()
    numbers = _check_inputs(train, reference_energies, valid)
    has_valid = valid is not None and len(valid) > 0
    t0, c0 = time.perf_counter(), time.process_time()
    pos, energies, forces = frames(train)
    residual = energies - torch.as_tensor(reference_energy_per_frame(train, reference_energies))
    mean_energy = float(residual.mean())
    y = observations(residual - mean_energy, forces)
    perms = (
        molecule_automorphisms(numbers, pos[0].numpy(), cfg.max_permutations)
        if cfg.symmetrize
        else np.arange(len(numbers))[None]
    )
    perms_t = torch.as_tensor(perms)
    length, scores = cfg.length_scale, {}
    if length is None:
        length, force_noise, scores = select_hyperparameters(
            pos, y, perms_t, cfg, valid, reference_energies, numbers, mean_energy
        )
        cfg = replace(cfg, force_noise=force_noise)
    weights, weight_history = None, None
    if cfg.learn_weights and has_valid:
        weights, force_noise, weight_history = learn_descriptor_weights(
            pos, y, perms_t, cfg, valid, length,
            _valid_targets(valid, reference_energies, mean_energy))
        cfg = replace(cfg, force_noise=force_noise)
    sparse, basis, (alpha, signal, factors) = _solve(pos, y, length, perms_t, cfg, weights,
                                                     progress)
    metadata = {
        "n_train": pos.shape[0],
        "n_basis": int(basis.shape[0]),
        "sparse": sparse,
        "n_permutations": len(perms),
        "selection_scores": scores,
        "weight_learning": weight_history,
        "force_noise": cfg.force_noise,
        "fit_wall_time_s": time.perf_counter() - t0,
        "fit_cpu_time_s": time.process_time() - c0,
        "train_source": train.source,
    }
    model = GaussianProcessPotential(numbers, basis, alpha, pos, perms, length, signal,
                                     mean_energy, reference_energies, cfg, sparse, metadata,
                                     weights)
    model.set_variance_basis(factors)  # the fit's factorization when it is the whole basis
    if cfg.calibrate and has_valid:
        _calibrate(model, valid)
    return model


def refresh_uncertainty(model: GaussianProcessPotential, valid: MLDataset | None,
                        **changes) -> GaussianProcessPotential:
    """Give a fitted (e.g. an older saved) GP the variance basis and sigma calibration of
    its settings with ``changes`` applied (fields of :class:`GPSettings`, e.g.
    ``variance_selection="greedy", calibration="area"``), recalibrated on ``valid``; the
    mean prediction is unchanged. Returns ``model``, changed in place."""
    model.cfg = replace(model.cfg, **changes)
    model.set_variance_basis()
    if model.cfg.calibrate and valid is not None and len(valid):
        _calibrate(model, valid)
    return model


def _check_inputs(train: MLDataset, reference_energies: dict[int, float],
                  valid: MLDataset | None) -> np.ndarray:
    """The molecule's atomic numbers; InputError for data the GP cannot fit."""
    train.require_energies()
    train.require_forces()
    numbers = train.frame_numbers(0).copy()
    check_single_molecule(train, numbers, train.source or "training set")
    check_elements(train.numbers, reference_energies, what="the reference energies")
    if valid is not None and len(valid):
        check_elements(valid.numbers, train.elements, what="the training set")
        check_single_molecule(valid, numbers, valid.source or "validation set")
        valid.require_forces()
    return numbers


def _valid_targets(valid: MLDataset, reference_energies: dict[int, float],
                   mean_energy: float) -> torch.Tensor | None:
    """Validation energies (eV) on the scale of the energy rows of the observations."""
    if not valid.has_energies:
        return None
    refs_valid = reference_energy_per_frame(valid, reference_energies)
    return torch.as_tensor(valid.energies) - torch.as_tensor(refs_valid) - mean_energy


def _solve(pos: torch.Tensor, y: torch.Tensor, length: float, perms_t: torch.Tensor,
           cfg: GPSettings, weights: torch.Tensor | None, progress: bool):
    """(sparse, basis positions, (alpha, signal variance, factors)): the exact GP up to
    ``max_exact`` frames, else the sparse one on farthest-point inducing frames."""
    n_frames = pos.shape[0]
    sparse = cfg.n_inducing is not None or n_frames > cfg.max_exact
    if not sparse:
        return False, pos, solve_exact(pos, y, length, perms_t, cfg, weights)
    m = min(cfg.n_inducing or cfg.max_exact, n_frames)
    first = int(np.random.default_rng(cfg.seed).integers(n_frames))
    basis_idx = farthest_point_sampling(weighted_features(pos, weights)[0], m, first)
    solution = solve_sparse(pos, basis_idx, y, length, perms_t, cfg, progress, weights)
    return True, pos[basis_idx], solution


def _calibrate(model: GaussianProcessPotential, valid: MLDataset) -> None:
    """Scale the force (and, with validation energies, the energy) variances so that the
    validation errors have unit variance in units of the predicted sigma."""
    scale = _variance_scale(model, valid)
    model.signal_variance *= scale
    if model.cfg.calibration == "area":
        pred = model.predict(valid, uncertainty=True)
        factor = area_scale(pred.forces - valid.forces, pred.forces_sigma) ** 2
        model.signal_variance *= factor
        scale *= factor
    model.metadata["variance_scale"] = scale
    if valid.has_energies:
        energy_scale = _energy_variance_scale(model, valid)
        model.energy_variance_scale = energy_scale
        model.metadata["energy_variance_scale"] = energy_scale
    _frame_sigma_scale(model, valid)


def _frame_sigma_scale(model: GaussianProcessPotential, valid: MLDataset) -> None:
    """The GP's frame sigma: its latent energy sigma (eV) times c (1/Angstrom), c the
    ratio of the RMS frame force error to the RMS latent energy sigma over the validation
    frames, so that it reads as a predicted RMS force error (eV/Angstrom).

    Why the energy and not the RMS of the force sigmas: the energy sigma ranks frames by
    their force error better, with the exact variance as with the rank-limited one (frame
    Spearman on held-out frames, 30 / 60 / all variance frames: rMD17 ethanol 0.512 /
    0.585 / 0.617 against 0.483 / 0.559 / 0.584 for the force sigmas; acac 0.530 / 0.592
    against 0.494 / 0.575; 3BPA at 30 frames 0.557 against 0.576; benchmarks/RESULTS.md):
    a frame's force errors are strongly correlated, and the energy variance measures its
    distance from the data as a whole.
    """
    model.frame_sigma_scale = 1.0  # the prediction's frame sigma is the latent energy sigma
    pred = model.predict(valid, uncertainty=True)
    latent = np.asarray(pred.frame_sigma)
    error = frame_rms(pred.forces - valid.forces, valid.atom_frame_index())
    if not np.all(np.isfinite(latent)) or float(np.mean(latent**2)) <= 0.0:
        model.frame_sigma_scale = None
        model.metadata.pop("frame_sigma_scale", None)
        return
    scale = float(np.sqrt(np.mean(error**2) / np.mean(latent**2)))
    model.frame_sigma_scale = scale
    model.metadata["frame_sigma_scale"] = scale


def _energy_variance_scale(model: GaussianProcessPotential, valid: MLDataset) -> float:
    """mean((E_pred - E_ref)^2 / var_E) over the validation frames, after the force scaling.

    Energies get their own factor: with the fixed relative energy noise lambda_E the fitted
    noise sigma_f^2 lambda_E^2 dominates var_E when sigma_f is large (long l, tiny lambda_G).
    """
    vpos, venergies, _ = frames(valid)
    with torch.no_grad():
        pred = model.energy_of_descriptor(model.descriptor(vpos))
    var_e, _ = model.predictive_variance(vpos)
    return float(((pred - venergies) ** 2 / var_e).mean())


def _variance_scale(model: GaussianProcessPotential, valid: MLDataset) -> float:
    """mean((F_pred - F_ref)^2 / var_F) over the validation force components."""
    vpos, _, vforces = frames(valid)
    x = vpos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.energy_of_descriptor(model.descriptor(x)).sum(), x)
    _, var_g = model.predictive_variance(vpos)
    z2 = ((-grad - vforces).reshape(len(valid), -1) ** 2 / var_g).mean()
    return float(z2)


def train_gp(job: TrainingJob) -> GaussianProcessPotential:
    """The registry trainer of the GP: :class:`GPSettings` from ``job.options`` (seeded with
    ``job.seed``), fitted on the job's frames and saved in ``job.out`` (the GP has no CPU
    budget or epochs)."""
    settings = GPSettings.from_dict({"seed": job.seed, **job.options})
    gp = fit_gp(job.train, job.reference_energies, job.valid, settings, progress=job.progress)
    gp.save(job.out)
    return gp
