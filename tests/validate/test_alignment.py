"""Kabsch superposition and RMSD against exact constructions and RDKit's AlignMol."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit.Chem import rdMolAlign
from scipy.spatial.transform import Rotation

from ffparam.errors import InputError
from ffparam.validate import heavy_atoms, kabsch_rmsd, superpose


def test_rotated_translated_copy_has_zero_rmsd(butane):
    x = butane.conformers[0]
    rotation = Rotation.from_euler("zyx", [40.0, -75.0, 130.0], degrees=True).as_matrix()
    y = x @ rotation.T + np.array([3.0, -7.5, 12.0])
    assert np.sqrt(np.mean(np.sum((x - y) ** 2, -1))) > 1.0  # really moved
    assert kabsch_rmsd(x, y) == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(superpose(x, y), y, atol=1e-10)


def test_scaled_copy_has_the_analytic_rmsd(butane):
    # y = c + s (x - c): the best rotation is the identity, RMSD = |1 - s| * radius of gyration
    x = butane.conformers[0]
    centre = x.mean(axis=0)
    scale = 1.1
    y = centre + scale * (x - centre)
    gyration = np.sqrt(np.mean(np.sum((x - centre) ** 2, -1)))
    assert kabsch_rmsd(x, y) == pytest.approx((scale - 1.0) * gyration, rel=1e-10)


def test_single_atom_displacement_in_a_symmetric_frame():
    # a regular tetrahedron with one vertex pushed out by d along its centroid axis:
    # after superposition the RMSD is below the unaligned d/sqrt(N) and matches RDKit
    x = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    y = x.copy()
    y[0] *= 1.0 + 0.3 / np.sqrt(3.0)  # vertex 0 moved 0.3 A outward
    # only translation helps here (shift of all atoms by 0.3/4 along the axis):
    # RMSD^2 = (1/4)[(0.3 - 0.075)^2 + 3 * 0.075^2]
    expected = np.sqrt(((0.3 - 0.075) ** 2 + 3 * 0.075**2) / 4.0)
    assert kabsch_rmsd(x, y) == pytest.approx(expected, rel=1e-10)


def test_reflection_is_not_a_superposition():
    # four points with distinct distances form a chiral frame: its mirror image would be
    # matched exactly by an improper rotation, which the determinant correction forbids
    x = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    mirrored = x * np.array([1.0, 1.0, -1.0])
    assert kabsch_rmsd(mirrored, x) > 0.5
    aligned = superpose(mirrored, x)

    def handedness(p):  # signed volume, kept by rotations, flipped by reflections
        return np.dot(p[1] - p[0], np.cross(p[2] - p[0], p[3] - p[0]))

    assert handedness(aligned) == pytest.approx(handedness(mirrored)) == -handedness(x)


def test_random_displacement_matches_rdkit_alignmol(butane):
    rng = np.random.default_rng(3)
    x = butane.conformers[0]
    y = x + rng.normal(0.0, 0.2, x.shape)
    heavy = heavy_atoms(butane.atomic_numbers)
    probe, ref = _rdkit_copy(butane, y), _rdkit_copy(butane, x)
    expected_all = rdMolAlign.AlignMol(probe, ref)
    probe = _rdkit_copy(butane, y)
    expected_heavy = rdMolAlign.AlignMol(probe, ref, atomMap=[(int(i), int(i)) for i in heavy])
    assert kabsch_rmsd(y, x) == pytest.approx(expected_all, rel=1e-8)
    assert kabsch_rmsd(y, x, heavy) == pytest.approx(expected_heavy, rel=1e-8)


def test_batches_broadcast_and_bad_shapes_are_refused(butane):
    rng = np.random.default_rng(0)
    x = butane.conformers[0]
    batch = x + rng.normal(0.0, 0.1, (5, *x.shape))
    values = kabsch_rmsd(batch, x)
    assert values.shape == (5,)
    np.testing.assert_allclose(values, [kabsch_rmsd(b, x) for b in batch], rtol=1e-12)
    with pytest.raises(InputError, match="atoms"):
        kabsch_rmsd(x, x[:-1])
    with pytest.raises(InputError, match="shape"):
        kabsch_rmsd(x[:, :2], x[:, :2])


def _rdkit_copy(molecule, coords):
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    mol = Chem.Mol(molecule.rdmol)
    conf = mol.GetConformer(0)
    for i, xyz in enumerate(coords):
        conf.SetAtomPosition(i, Point3D(*map(float, xyz)))
    return mol
