"""Which frames to label next: the most uncertain ones, kept diverse.

A frame's uncertainty is its RMS predicted force sigma, sqrt(mean over components of
sigma^2) (eV/Angstrom): the force error is what the models are judged by, and the RMS over
a frame ranks frames by their expected error far better than single components do
(:mod:`ffparam.ml.calibration`). Selection is greedy: the most uncertain candidate first,
then repeatedly the most uncertain candidate whose descriptor (inverse interatomic
distances, 1/Angstrom) lies at least ``radius`` from every frame chosen so far, so that one
excursion of an MD run does not fill a batch with near-copies of itself. The radius is
``exclusion`` times the median nearest-neighbour distance among the candidates; when no
candidate is left outside the radius it is halved.
"""

from __future__ import annotations

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.ml.data import MLDataset
from ffparam.ml.models.gp.kernel import inverse_distances
from ffparam.ml.potential import Potential, frame_sigma


def frame_uncertainty(potential: Potential, data: MLDataset, batch_size: int = 64) -> np.ndarray:
    """(n_frames,) predicted frame sigma of each frame (eV/Angstrom,
    :func:`ffparam.ml.potential.frame_sigma`: the GP's scaled energy sigma, a committee's
    RMS force spread)."""
    if not potential.has_uncertainty:
        raise InputError(f"a {potential.model_type} model has no uncertainty to select by "
                         "(use the GP or a committee)")
    pred = potential.predict(data, batch_size=batch_size, uncertainty=True)
    return frame_sigma(pred, data.atom_frame_index())


def frame_descriptors(data: MLDataset) -> np.ndarray:
    """(n_frames, D) inverse interatomic distances (1/Angstrom) of frames of one molecule."""
    n = int(data.n_atoms[0])
    if np.any(data.n_atoms != n):
        raise InputError("active learning selects among frames of one molecule")
    positions = torch.as_tensor(data.positions, dtype=torch.float64).view(-1, n, 3)
    return inverse_distances(positions).numpy()


def select_diverse(uncertainty: np.ndarray, descriptors: np.ndarray, k: int,
                   exclusion: float = 0.5) -> np.ndarray:
    """Indices of at most ``k`` candidates: greedy largest ``uncertainty`` with a descriptor
    exclusion radius (see the module docstring), in the order chosen."""
    uncertainty = np.asarray(uncertainty, dtype=float)
    n = len(uncertainty)
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(descriptors, dtype=float)
    order = np.argsort(-uncertainty, kind="stable")
    radius = exclusion * _median_nearest_distance(x)
    chosen = [int(order[0])]
    nearest = np.linalg.norm(x - x[chosen[0]], axis=1)
    while len(chosen) < k:
        free = [i for i in order if nearest[i] > radius and i not in chosen]
        if not free:
            radius *= 0.5
            if radius < 1e-12:
                free = [i for i in order if i not in chosen]
            else:
                continue
        pick = int(free[0])
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[pick], axis=1))
    return np.asarray(chosen, dtype=np.int64)


def _median_nearest_distance(x: np.ndarray) -> float:
    """Median over rows of the distance to the nearest other row (0 for one row)."""
    if len(x) < 2:
        return 0.0
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    return float(np.median(np.sqrt(d2.min(1))))
