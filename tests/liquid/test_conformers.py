"""Torsion-population drift of liquid frames: rotatable torsions found on real molecules,
angles against hand-built conformers, a drifting box flagged and a stationary one not."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.liquid.conformers import (
    dihedral_deg,
    drift_message,
    rotatable_torsions,
    torsion_drift,
)
from tests.liquid.test_tempering import set_dihedral


@pytest.mark.parametrize("smiles, count", [("ClCCCl", 1), ("CCCCC", 2), ("CO", 0),
                                           ("CCN(CC)CC", 3), ("c1ccccc1", 0),
                                           ("COC(C)=O", 1), ("C1CCCCC1", 0)])
def test_rotatable_torsions(smiles, count):
    torsions = rotatable_torsions(Molecule.from_input(smiles))
    assert len(torsions) == count
    mol = Molecule.from_input(smiles).rdmol
    for a, b, c, d in torsions:  # a chain of bonded heavy atoms
        assert all(mol.GetBondBetweenAtoms(i, j) is not None for i, j in ((a, b), (b, c), (c, d)))
        assert all(mol.GetAtomWithIdx(i).GetAtomicNum() > 1 for i in (a, b, c, d))


def _box(molecule, trans_fraction_per_frame, n_molecules, rng):
    xyz = molecule.conformers[0]
    trans = set_dihedral(molecule, xyz, 180.0)
    gauche = set_dihedral(molecule, xyz, 65.0)
    frames = []
    for p in trans_fraction_per_frame:
        pick = rng.random(n_molecules) < p
        frames.append(np.concatenate([trans if t else gauche for t in pick]))
    return np.array(frames)


def test_drift_is_flagged_and_stationary_boxes_are_not():
    molecule = Molecule.from_input("ClCCCl").generate_conformers(1)
    assert float(dihedral_deg(set_dihedral(molecule, molecule.conformers[0], -70.0),
                              (0, 1, 2, 3))) == pytest.approx(-70.0, abs=1e-6)
    rng = np.random.default_rng(3)
    drifting = _box(molecule, np.linspace(0.2, 0.35, 200), 128, rng)
    (d,) = torsion_drift(molecule, drifting)
    assert d.drifting and d.z > 4 and d.change == pytest.approx(0.15, abs=0.03)
    assert d.start == pytest.approx(0.21, abs=0.03) and d.end == pytest.approx(0.34, abs=0.03)
    message = drift_message("dce", [d])
    assert message.startswith("dce: torsion populations still drifting") and "0-1-2-3" in message
    steady = _box(molecule, np.full(200, 0.3), 128, rng)
    (s,) = torsion_drift(molecule, steady)
    assert not s.drifting and abs(s.change) < 0.03
    assert drift_message("dce", [s]) is None
