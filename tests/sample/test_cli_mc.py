"""`ffparam sample --mc N`: Monte Carlo frames labelled with the reference method."""

from __future__ import annotations

import numpy as np
import pytest

from ffparam.cli.main import main
from ffparam.reference import Store
from ffparam.units import KCAL_MOL_EV


@pytest.mark.stochastic
def test_sample_mc_writes_labelled_frames_and_prints_acceptance(tmp_path, capsys, seed):
    out, db = tmp_path / "frames.xyz", tmp_path / "s.db"
    args = ["sample", "CCCO", "--mc", "40", "--frames", "3", "--charge", "0", "--store",
            str(db), "--workers", "0", "-o", str(out), "--seed", str(seed), "--temperature",
            "400"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Monte Carlo 400 K: acceptance torsion" in err and "cartesian" in err
    assert "wrote 3 frame(s)" in err
    from ase.io import read

    frames = read(out, index=":")
    assert len(frames) == 3 and frames[0].get_chemical_formula() == "C3H8O"
    with Store(db, readonly=True) as store:
        records = {r.key: r for r in store.records()}
    assert len(records) == 3
    energies = sorted(f.get_potential_energy() for f in frames)
    assert energies == pytest.approx(sorted(r.energy * KCAL_MOL_EV for r in records.values()))
    assert all(np.isfinite(f.get_forces()).all() for f in frames)
    assert main(args) == 0  # same seed: same frames, all from the store
    assert "3 from the store, 0 computed" in capsys.readouterr().err


def test_sample_modes_are_exclusive(tmp_path, capsys):
    code = main(["sample", "CC", "--mc", "10", "--conformers", "2", "--store",
                 str(tmp_path / "x.db")])
    assert code == 2
    assert "--mc N" in capsys.readouterr().err
    assert main(["sample", "CC", "--mc", "0", "--store", str(tmp_path / "x.db")]) == 2


def test_mc_frames_are_distinct_and_spread():
    """More frames asked than the chains made: each made frame once, chains interleaved."""
    from ffparam.chem import Molecule
    from ffparam.reference.sampling import mc_frames
    from ffparam.sample import MCSettings

    molecule = Molecule.from_smiles("CCO").generate_conformers(1, seed=2)
    settings = MCSettings(n_chains=4, equilibration_steps=5)
    frames, result = mc_frames(molecule, 3, 50, charges="gasteiger", settings=settings)
    assert frames.shape == (12, 9, 3) and result.frames.shape == (3, 4, 9, 3)
    np.testing.assert_array_equal(frames, result.flat_frames())
    few, last = mc_frames(molecule, 3, 2, charges="gasteiger", settings=settings)
    assert last.settings.stride == 3 and last.frames.shape == (1, 4, 9, 3)
    np.testing.assert_array_equal(few, last.flat_frames()[[0, 3]])
