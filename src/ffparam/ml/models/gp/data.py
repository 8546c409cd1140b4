"""Frames of one molecule as the GP's tensors (float64, Angstrom, eV, eV/Angstrom)."""

from __future__ import annotations

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.ml.data import MLDataset


def frames(data: MLDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions (N, n, 3), energies (N,) and forces (N, n, 3) of frames of one molecule."""
    n = int(data.n_atoms[0])
    pos = torch.as_tensor(data.positions, dtype=torch.float64).view(-1, n, 3)
    forces = torch.as_tensor(data.forces, dtype=torch.float64).view(-1, n, 3)
    return pos, torch.as_tensor(data.energies, dtype=torch.float64), forces


def check_single_molecule(data: MLDataset, numbers: np.ndarray, what: str) -> None:
    """InputError unless every frame of ``data`` is the molecule ``numbers`` in that order."""
    n = len(numbers)
    if np.any(data.n_atoms != n) or not np.array_equal(
        data.numbers.reshape(-1, n), np.broadcast_to(numbers, (len(data), n))
    ):
        raise InputError(f"{what}: the GP needs frames of one molecule in one atom order")
