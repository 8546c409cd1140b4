"""What a trained model says per atom, and how good its uncertainty is, on test frames.

Every model here is a sum of atomic terms (ANI, SchNet, GP, MACE, committees, and a
Δ-model's correction), so :class:`~ffparam.ml.potential.Prediction` carries per-atom
energies. For one molecule (the frames with the first frame's atoms, same order):

* atomic energy: E_i minus the mean E_j over all atoms j of the same element in those
  frames, averaged over the frames (meV): which atoms the model puts high or low in
  energy compared with their chemically equal neighbours (an element's absolute atomic
  energy is an arbitrary reference; the differences are what the model learned);
* per-atom uncertainty: the norm of the predicted force sigma of the atom, sqrt(sum over
  x, y, z of sigma^2), averaged over the frames (meV/Angstrom; models with a sigma only);
* per-atom force error: |F_pred - F_ref| of the atom, averaged over the frames
  (meV/Angstrom), to set next to the uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ffparam.ml.calibration import observed_fractions
from ffparam.ml.data import MLDataset
from ffparam.ml.potential import Prediction


@dataclass
class AtomView:
    """Per-atom quantities of one molecule over the test frames (see the module doc).

    Attributes:
        numbers: (n_atoms,) atomic numbers; positions: (n_atoms, 3) Angstrom of its first
            frame.
        frames: indices of the test frames of this molecule.
        energy_mev: (n_atoms,) relative atomic energies, or None without per-atom energies.
        sigma_mev_a: (n_atoms,) mean force-sigma norm, or None without uncertainty.
        error_mev_a: (n_atoms,) mean |force error|, or None without reference forces.
    """

    numbers: np.ndarray
    positions: np.ndarray
    frames: np.ndarray
    energy_mev: np.ndarray | None
    sigma_mev_a: np.ndarray | None
    error_mev_a: np.ndarray | None


def atom_view(pred: Prediction, data: MLDataset) -> AtomView:
    """The per-atom view of the first frame's molecule in ``data`` (eV in, meV out)."""
    numbers = data.frame_numbers(0)
    frames = np.array([i for i in range(len(data)) if np.array_equal(data.frame_numbers(i),
                                                                     numbers)])
    atoms = np.concatenate([np.arange(data.offsets[i], data.offsets[i + 1]) for i in frames])
    shape = (len(frames), len(numbers))

    def per_frame(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else np.asarray(values)[atoms].reshape(*shape, -1)

    energy = per_frame(pred.atom_energies)
    if energy is not None:
        energy = energy[..., 0]
        relative = np.empty_like(energy)
        for z in np.unique(numbers):
            mask = numbers == z
            relative[:, mask] = energy[:, mask] - energy[:, mask].mean()
        energy = 1000 * relative.mean(0)
    sigma = per_frame(pred.forces_sigma)
    error = None
    if pred.forces is not None and data.forces is not None:
        error = 1000 * np.linalg.norm(per_frame(pred.forces - data.forces), axis=2).mean(0)
    return AtomView(numbers, data.frame_positions(frames[0]), frames, energy,
                    None if sigma is None else 1000 * np.linalg.norm(sigma, axis=2).mean(0),
                    error)


def calibration_curve(errors: np.ndarray, sigmas: np.ndarray, n_points: int = 51
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Expected probabilities p in [0, 1] and the observed fraction of ``errors`` inside
    the central Gaussian interval of probability p given ``sigmas`` (same units)."""
    expected = np.linspace(0.0, 1.0, n_points)
    observed = np.append(observed_fractions(errors, sigmas, expected[:-1]), 1.0)
    return expected, observed
