"""Batches of frames as flat tensors, and batched neighbour lists.

A batch concatenates the atoms of its frames (like :class:`~ffparam.ml.data.MLDataset`):
``positions`` is (n_atoms_total, 3) and ``frame`` (n_atoms_total,) says which frame each atom
belongs to, so a whole batch of molecules of different sizes goes through a model at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ffparam.ml.data import MLDataset


@dataclass
class Batch:
    """Frames as flat tensors (Angstrom, eV, eV/Angstrom).

    Attributes:
        numbers: (A,) int64 atomic numbers.
        positions: (A, 3) Angstrom.
        frame: (A,) int64 frame index of each atom, 0..n_frames-1, non-decreasing.
        n_atoms: (B,) int64 atoms per frame.
        energies: (B,) eV or None.
        forces: (A, 3) eV/Angstrom or None.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    frame: torch.Tensor
    n_atoms: torch.Tensor
    energies: torch.Tensor | None = None
    forces: torch.Tensor | None = None

    @property
    def n_frames(self) -> int:
        return int(self.n_atoms.shape[0])

    def to(self, dtype: torch.dtype) -> Batch:
        """Same batch with floating-point tensors cast to ``dtype``."""

        def cast(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(dtype)

        return Batch(
            self.numbers,
            self.positions.to(dtype),
            self.frame,
            self.n_atoms,
            cast(self.energies),
            cast(self.forces),
        )


def make_batch(
    data: MLDataset, indices: np.ndarray | None = None, dtype: torch.dtype = torch.float64
) -> Batch:
    """Tensors for the frames ``indices`` of ``data`` (all frames when None)."""
    sub = data if indices is None else data.subset(indices)
    n_atoms = torch.as_tensor(sub.n_atoms, dtype=torch.int64)
    frame = torch.repeat_interleave(torch.arange(len(sub)), n_atoms)
    return Batch(
        numbers=torch.as_tensor(sub.numbers, dtype=torch.int64),
        positions=torch.as_tensor(sub.positions, dtype=dtype),
        frame=frame,
        n_atoms=n_atoms,
        energies=None if sub.energies is None else torch.as_tensor(sub.energies, dtype=dtype),
        forces=None if sub.forces is None else torch.as_tensor(sub.forces, dtype=dtype),
    )


def iterate_batches(
    data: MLDataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Iterator[Batch]:
    """Yield batches of up to ``batch_size`` frames (shuffled with ``generator`` if asked)."""
    n = len(data)
    order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield make_batch(data, order[start : start + batch_size], dtype=dtype)


def neighbor_pairs(
    positions: torch.Tensor, n_atoms: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed pairs (i, j), i != j, of atoms in the same frame closer than ``cutoff``.

    Args:
        positions: (A, 3) Angstrom, frames concatenated (gradients are not needed here).
        n_atoms: (B,) atoms per frame.
        cutoff: Angstrom.

    Returns:
        Two (P,) int64 tensors of flat atom indices, sorted by ``i`` then ``j``; every pair
        appears in both directions. All pairs inside each frame are tested at once on a
        padded (B, n_max, n_max) grid: fine for molecules up to a few hundred atoms.
    """
    n_frames = int(n_atoms.shape[0])
    if n_frames == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    n_max = int(n_atoms.max())
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    slot = torch.arange(n_max)
    valid = slot.unsqueeze(0) < n_atoms.unsqueeze(1)  # (B, n_max)
    flat = torch.where(valid, offsets.unsqueeze(1) + slot.unsqueeze(0), torch.zeros(()).long())
    with torch.no_grad():
        pos = positions.detach()[flat]  # (B, n_max, 3)
        dist = torch.cdist(pos, pos)
    mask = valid.unsqueeze(2) & valid.unsqueeze(1) & (dist < cutoff)
    mask &= ~torch.eye(n_max, dtype=torch.bool).unsqueeze(0)
    b, p, q = mask.nonzero(as_tuple=True)
    return flat[b, p], flat[b, q]
