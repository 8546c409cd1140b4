"""Trial moves: the proposal is symmetric with unit Jacobian (checked deterministically),
and the moving side of each rotatable bond is the smaller one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ffparam.chem import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.sample import TorsionMoves, dihedral_angles, rotate_about_bond
from ffparam.sample.moves import JUMPS_RAD


@pytest.fixture(scope="module")
def pentanol():
    molecule = Molecule.from_smiles("CCCCCO", name="pentanol").generate_conformers(1, seed=4)
    return molecule, Topology(molecule)


def test_smaller_side_moves(pentanol) -> None:
    molecule, topology = pentanol
    moves = TorsionMoves.from_topology(topology)
    assert moves.n_bonds == len(topology.find_rotatable_bonds(True))
    for (fixed, moving), mask in zip(moves.axis, moves.moving):
        assert mask[moving] and not mask[fixed]
        assert mask.sum() <= molecule.n_atoms - mask.sum()
    no_rotors = TorsionMoves.from_topology(topology, include_terminal_rotors=False)
    assert no_rotors.n_bonds == len(topology.rotatable_bonds)


def test_rotation_is_rigid_and_reversed_by_the_opposite_angle(pentanol) -> None:
    """Rotating by a then -a gives the start back (the reverse proposal), distances inside
    each side are unchanged (rigid: unit Jacobian), the dihedral about the bond turns by a."""
    molecule, topology = pentanol
    moves = TorsionMoves.from_topology(topology)
    n = moves.n_bonds
    start = torch.as_tensor(molecule.conformers[0]).expand(n, -1, -1).clone()
    axis, mask = torch.as_tensor(moves.axis), torch.as_tensor(moves.moving)
    angle = torch.linspace(-2.5, 3.0, n, dtype=torch.float64)
    turned = rotate_about_bond(start, axis, mask, angle)
    back = rotate_about_bond(turned, axis, mask, -angle)
    torch.testing.assert_close(back, start, rtol=0, atol=1e-12)
    for b in range(n):
        side = mask[b].numpy()
        for group in (side, ~side):
            x0, x1 = start[b][group].numpy(), turned[b][group].numpy()
            d0 = np.linalg.norm(x0[:, None] - x0[None], axis=-1)
            np.testing.assert_allclose(np.linalg.norm(x1[:, None] - x1[None], axis=-1), d0,
                                       atol=1e-12)
        quad = np.array([topology.dihedral_for_bond(tuple(moves.axis[b]))])
        before, after = (dihedral_angles(x[b].numpy(), quad)[0] for x in (start, turned))
        turn = (after - before + 180.0) % 360.0 - 180.0
        assert turn == pytest.approx(np.degrees(angle[b].item()), abs=1e-9)


def test_jump_density_is_even() -> None:
    """The rotamer jumps are a multiset symmetric under a -> -a (mod 360 degrees)."""
    jumps = sorted(np.round(np.degrees(JUMPS_RAD)) % 360.0)
    mirrored = sorted((-np.round(np.degrees(JUMPS_RAD))) % 360.0)
    assert jumps == mirrored


def test_ring_bond_and_bad_masks_refused() -> None:
    ring = np.array([[0, 1], [1, 2], [2, 0]])
    with pytest.raises(InputError, match="ring"):
        TorsionMoves.from_bonds(3, ring, np.array([[0, 1]]))
    with pytest.raises(InputError, match="fixed axis atom"):
        TorsionMoves(np.array([[0, 1]]), np.array([[True, True, False]]))
