"""Monte Carlo trial moves for molecules, batched over chains (torch float64, Angstrom).

Both moves are symmetric proposals with unit Jacobian, so the Metropolis rule
``min(1, exp(-beta dE))`` satisfies detailed balance with respect to exp(-beta E(x)) in
Cartesian space:

* :class:`TorsionMoves` rotates the smaller side of a rotatable bond rigidly about the bond
  axis by ``jump + uniform(-step, step)``, the jump 0 (probability 1/2) or one of -120,
  +120, 180 degrees (1/6 each: rotamer jumps of 3-fold and 2-fold torsions). The angle's
  density is even, which bond and which side moves depend on the bonded graph only (never
  on positions), a rigid rotation preserves volume, and the reverse move is the rotation
  by the opposite angle about the same axis (the two axis atoms do not move).
* :func:`cartesian_move` displaces every atom by a Gaussian of standard deviation ``step``
  per coordinate (symmetric: q(x -> y) = q(y -> x)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ffparam.chem.topology import Topology
from ffparam.errors import InputError

JUMPS_RAD = tuple(np.radians([0.0, 0.0, 0.0, -120.0, 120.0, 180.0]))
"""Rotamer jumps of a torsion move, drawn uniformly (0 half the time); an even density."""


@dataclass(frozen=True)
class TorsionMoves:
    """The rotatable bonds a torsion move can turn.

    Attributes:
        axis: (n_bonds, 2) int64: [fixed-side atom, moving-side atom] of each bond.
        moving: (n_bonds, n_atoms) bool: the atoms rotated for each bond (the smaller side
            of the bond, counted in atoms; the second atom's side on a tie).
    """

    axis: np.ndarray
    moving: np.ndarray

    def __post_init__(self) -> None:
        axis = np.asarray(self.axis, dtype=np.int64).reshape(-1, 2)
        moving = np.asarray(self.moving, dtype=bool)
        if moving.ndim != 2 or moving.shape[0] != axis.shape[0]:
            raise InputError(f"torsion moves: moving mask must be (n_bonds={axis.shape[0]}, "
                             f"n_atoms), got {moving.shape}")
        rows = np.arange(axis.shape[0])
        if axis.size and (moving[rows, axis[:, 0]].any() or not moving[rows, axis[:, 1]].all()):
            raise InputError("torsion moves: the fixed axis atom must stay, the other move")
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "moving", moving)

    @property
    def n_bonds(self) -> int:
        return int(self.axis.shape[0])

    @classmethod
    def from_bonds(cls, n_atoms: int, bonds: np.ndarray, rotatable: np.ndarray
                   ) -> TorsionMoves:
        """Moves for the ``rotatable`` bonds (n, 2) of a graph with ``bonds`` (m, 2).

        Raises InputError for a rotatable bond in a ring (removing it leaves one piece).
        """
        bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        axis, masks = [], []
        for j, k in np.asarray(rotatable, dtype=np.int64).reshape(-1, 2):
            side_k = _component(n_atoms, bonds, start=int(k), cut=(int(j), int(k)))
            if side_k[j]:
                raise InputError(f"bond {j}-{k} is in a ring: no torsion move about it")
            side_j = ~side_k
            if side_j.sum() < side_k.sum():
                axis.append((k, j))
                masks.append(side_j)
            else:
                axis.append((j, k))
                masks.append(side_k)
        return cls(np.array(axis, dtype=np.int64).reshape(-1, 2),
                   np.array(masks, dtype=bool).reshape(-1, n_atoms))

    @classmethod
    def from_topology(cls, topology: Topology, include_terminal_rotors: bool = True
                      ) -> TorsionMoves:
        """Moves for the rotatable bonds of ``topology`` (with methyl, hydroxyl, amino
        rotors when ``include_terminal_rotors``)."""
        rotatable = topology.find_rotatable_bonds(include_terminal_rotors)
        return cls.from_bonds(topology.n_atoms, topology.bonds, rotatable)

    def propose(self, positions: Tensor, step_rad: Tensor, generator: torch.Generator
                ) -> Tensor:
        """Rotated copies of ``positions`` (n_chains, n_atoms, 3): per chain one bond
        drawn uniformly, an angle ``jump + uniform(-step_rad, step_rad)`` (``step_rad``
        (n_chains,), at most pi; jumps as in the module docstring)."""
        n = positions.shape[0]
        device = positions.device
        bond = torch.randint(self.n_bonds, (n,), generator=generator, device=device)
        u = torch.rand(n, generator=generator, dtype=positions.dtype, device=device)
        pick = torch.randint(len(JUMPS_RAD), (n,), generator=generator, device=device)
        jump = torch.as_tensor(JUMPS_RAD, dtype=positions.dtype, device=device)[pick]
        angle = jump + (2.0 * u - 1.0) * step_rad
        axis = torch.as_tensor(self.axis, device=device)[bond]
        mask = torch.as_tensor(self.moving, device=device)[bond]
        return rotate_about_bond(positions, axis, mask, angle)


def rotate_about_bond(positions: Tensor, axis: Tensor, moving: Tensor, angle_rad: Tensor
                      ) -> Tensor:
    """Rotate the ``moving`` atoms (n_chains, n_atoms) bool of each chain by ``angle_rad``
    (n_chains,) about the line from atom ``axis[:, 0]`` to ``axis[:, 1]`` (Rodrigues'
    formula; right-handed about that direction). Other atoms are unchanged."""
    rows = torch.arange(positions.shape[0], device=positions.device)
    origin = positions[rows, axis[:, 0]]
    direction = positions[rows, axis[:, 1]] - origin
    unit = direction / direction.norm(dim=-1, keepdim=True)
    v = positions - origin[:, None, :]
    u = unit[:, None, :].expand_as(v)
    cos = torch.cos(angle_rad)[:, None, None]
    sin = torch.sin(angle_rad)[:, None, None]
    dot = (u * v).sum(-1, keepdim=True)
    rotated = v * cos + torch.cross(u, v, dim=-1) * sin + u * dot * (1.0 - cos)
    return torch.where(moving[:, :, None], rotated + origin[:, None, :], positions)


def cartesian_move(positions: Tensor, step_a: Tensor, generator: torch.Generator) -> Tensor:
    """Every atom displaced by a Gaussian with standard deviation ``step_a`` (n_chains,)
    Angstrom per coordinate."""
    noise = torch.randn(positions.shape, generator=generator, dtype=positions.dtype,
                        device=positions.device)
    return positions + noise * step_a[:, None, None]


def _component(n_atoms: int, bonds: np.ndarray, start: int, cut: tuple[int, int]
               ) -> np.ndarray:
    """Atoms reachable from ``start`` without crossing the bond ``cut``, (n_atoms,) bool."""
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for a, b in bonds.tolist():
        if {a, b} != set(cut):
            neighbours[a].append(b)
            neighbours[b].append(a)
    seen = np.zeros(n_atoms, dtype=bool)
    seen[start] = True
    stack = [start]
    while stack:
        for nb in neighbours[stack.pop()]:
            if not seen[nb]:
                seen[nb] = True
                stack.append(nb)
    return seen
