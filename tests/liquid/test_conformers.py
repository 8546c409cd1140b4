"""Torsion-population drift of liquid frames: rotatable torsions found on real molecules,
angles against hand-built conformers, a drifting box flagged and a stationary one not;
old results checked from their stored frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.liquid.conformers import (
    dihedral_deg,
    drift_message,
    liquid_drift,
    rotatable_torsions,
    stored_drift,
    torsion_drift,
)
from ffparam.liquid.simulate import PROGRESS_FILE
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


@pytest.mark.stochastic
def test_drift_is_flagged_and_stationary_boxes_are_not(seed):
    """Binomial boxes of 512 molecules x 200 frames (independent draws, p ~ 0.3): a
    frame's population has sd 0.020, a tenth of the run (20 frames) 0.0045 and the fitted
    change over the run sqrt(12) 0.020 / sqrt(200) = 0.005, so the 0.03 tolerances are
    >= 6 sigma for any seed (with 128 molecules they were 3 sigma: 0.3 % of seeds failed),
    and a stationary box's z is ~N(0, 1), past the flag's 4 for 6e-5 of the draws."""
    molecule = Molecule.from_input("ClCCCl").generate_conformers(1)
    assert float(dihedral_deg(set_dihedral(molecule, molecule.conformers[0], -70.0),
                              (0, 1, 2, 3))) == pytest.approx(-70.0, abs=1e-6)
    rng = np.random.default_rng([seed, 3])
    drifting = _box(molecule, np.linspace(0.2, 0.35, 200), 512, rng)
    (d,) = torsion_drift(molecule, drifting)
    assert d.drifting and d.z > 4 and d.change == pytest.approx(0.15, abs=0.03)
    assert d.start == pytest.approx(0.21, abs=0.03) and d.end == pytest.approx(0.34, abs=0.03)
    message = drift_message("dce", [d])
    assert message.startswith("dce: torsion populations still drifting") and "0-1-2-3" in message
    steady = _box(molecule, np.full(200, 0.3), 512, rng)
    (s,) = torsion_drift(molecule, steady)
    assert not s.drifting and abs(s.change) < 0.03
    assert drift_message("dce", [s]) is None


def test_stored_drift_reads_old_results_from_their_frames(tmp_path):
    """A result stored before results carried ``torsion_drift`` is checked from the frames
    of its run directory; a result that carries it is taken as it is."""
    molecule = Molecule.from_input("ClCCCl").generate_conformers(1)
    positions = _box(molecule, np.linspace(0.2, 0.35, 200), 32, np.random.default_rng(5))
    liquid = tmp_path / "liquid"
    liquid.mkdir()
    n = len(positions)
    np.savez(liquid / "frames_00000.npz", energies=np.zeros(n), box_lengths=np.ones((n, 3)),
             positions=positions, steps=np.arange(n) * 500)
    (liquid / PROGRESS_FILE).write_text(json.dumps(
        {"chunks": 1, "frames": n, "production_wall_s": 1.0, "timestep_fs": 2.0}))
    (d,) = stored_drift(None, tmp_path, molecule, 1.0)
    assert d.drifting and d.atoms == (0, 1, 2, 3)
    assert d == liquid_drift(tmp_path, molecule, 1.0)[0]
    assert stored_drift([], tmp_path, molecule, 1.0) == []
    carried = stored_drift([d.to_json()], tmp_path / "absent", molecule, 1.0)
    assert carried[0].drifting and carried[0].atoms == (0, 1, 2, 3)
