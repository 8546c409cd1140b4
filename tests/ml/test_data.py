"""Datasets from extended XYZ, reference energies, splits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from ffparam.errors import InputError, MissingFileError
from ffparam.ml.data import (
    dataset_from_atoms,
    fit_reference_energies,
    read_extxyz,
    read_isolated_atoms,
    reference_energy_per_frame,
    split_indices,
)
from tests.ml.conftest import ETHANOL, ETHANOL_ATOMS


def test_extxyz_matches_ase(ethanol):
    frames = read(str(ETHANOL), index=":")
    assert len(ethanol) == 60 and ethanol.elements == (1, 6, 8)
    assert np.all(ethanol.n_atoms == 9)
    for i in (0, 17, 59):
        assert ethanol.energies[i] == frames[i].get_potential_energy()
        np.testing.assert_array_equal(ethanol.frame_forces(i), frames[i].get_forces())
        np.testing.assert_array_equal(ethanol.frame_positions(i), frames[i].positions)


def test_isolated_atoms_from_file():
    import re

    refs = read_isolated_atoms(ETHANOL_ATOMS)
    assert set(refs) == {1, 6, 7, 8}
    # independent parse of the file: symbol on the atom line, energy= on the comment line
    lines = ETHANOL_ATOMS.read_text().splitlines()
    symbols = {"H": 1, "C": 6, "N": 7, "O": 8}
    for k in range(0, len(lines), 3):
        energy = float(re.search(r"energy=(\S+)", lines[k + 1]).group(1))
        assert refs[symbols[lines[k + 2].split()[0]]] == energy


def test_linear_regression_recovers_known_element_energies():
    true = {1: -13.6, 6: -1027.0, 7: -1484.0, 8: -2040.0}
    molecules = ["H2", "CH4", "H2O", "CO", "N2", "NH3", "C2H6O", "HCN"]
    rng = np.random.default_rng(3)
    frames = []
    for formula in molecules:
        atoms = Atoms(formula, positions=rng.normal(size=(len(Atoms(formula)), 3)) * 2)
        atoms.info["energy"] = sum(true[z] for z in atoms.numbers)
        frames.append(atoms)
    data = dataset_from_atoms(frames)
    fitted = fit_reference_energies(data)
    for z in true:
        assert fitted[z] == pytest.approx(true[z], abs=1e-8)
    np.testing.assert_allclose(reference_energy_per_frame(data, fitted), data.energies)


def test_single_composition_regression_reproduces_mean(ethanol):
    refs = fit_reference_energies(ethanol)
    residual = ethanol.energies - reference_energy_per_frame(ethanol, refs)
    assert abs(residual.mean()) < 1e-6


def test_split_disjoint_reproducible_nested():
    a = split_indices(100, 50, 10, 20, seed=4)
    b = split_indices(100, 50, 10, 20, seed=4)
    c = split_indices(100, 50, 10, 20, seed=5)
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)
    sets = [set(a.train), set(a.valid), set(a.test)]
    assert sum(map(len, sets)) == 80 and len(set.union(*sets)) == 80
    small = split_indices(100, 20, 10, 20, seed=4)
    assert set(small.train) <= set(a.train)
    np.testing.assert_array_equal(small.test, a.test)
    with pytest.raises(InputError, match="cannot split"):
        split_indices(10, 8, 2, 1)


def test_subset_and_write_round_trip(ethanol, tmp_path):
    sub = ethanol.subset([5, 2, 40])
    np.testing.assert_array_equal(sub.frame_positions(1), ethanol.frame_positions(2))
    path = tmp_path / "sub.xyz"
    sub.write_extxyz(path)
    back = read_extxyz(path)
    np.testing.assert_allclose(back.positions, sub.positions, atol=1e-8)
    np.testing.assert_allclose(back.forces, sub.forces, atol=1e-8)
    np.testing.assert_allclose(back.energies, sub.energies, rtol=1e-14)


def _write(tmp_path, text: str):
    path = tmp_path / "bad.xyz"
    path.write_text(text)
    return path


FRAME = (
    '3\nProperties=species:S:1:pos:R:3:forces:R:3 energy={e} pbc="F F F"\n'
    "O 0.0 0.0 0.0 0.0 0.0 {f}\nH 0.96 0.0 0.0 0.1 0.0 0.0\nH -0.24 0.93 0.0 0.0 0.1 0.0\n"
)


def test_nan_energy_is_an_error(tmp_path):
    path = _write(tmp_path, FRAME.format(e=-10.0, f=0.0) + FRAME.format(e="nan", f=0.0))
    with pytest.raises(InputError, match="frame 1 has a non-finite energy"):
        read_extxyz(path)


def test_nan_force_is_an_error(tmp_path):
    path = _write(tmp_path, FRAME.format(e=-10.0, f="nan"))
    with pytest.raises(InputError, match="frame 0 has non-finite forces"):
        read_extxyz(path)


def test_frames_without_forces(tmp_path):
    path = _write(tmp_path, '1\nenergy=-1.0 pbc="F F F"\nH 0 0 0\n')
    data = read_extxyz(path)
    assert not data.has_forces
    with pytest.raises(InputError, match="without forces"):
        data.require_forces()


def test_missing_file_and_periodic(tmp_path):
    with pytest.raises(MissingFileError):
        read_extxyz(tmp_path / "nope.xyz")
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(InputError, match="periodic"):
        dataset_from_atoms([atoms], source="box")


def test_store_reader_converts_units(tmp_path):
    from ffparam.chem import Molecule
    from ffparam.ml.data import read_frames, read_store
    from ffparam.reference import Store, compute
    from ffparam.units import KCAL_MOL_EV

    water = Molecule.from_smiles("O").generate_conformers(1)
    geometries = water.conformers[0][None] + np.array([0.0, 0.03, -0.03])[:, None, None]
    path = tmp_path / "ref.db"
    with Store(path) as store:
        records = compute(water, geometries, method="gfn2-xtb", task="gradient", store=store)
    data = read_store(path)
    assert len(data) == 3 and data.has_forces
    for record in records:
        k = int(np.argmin([abs(e - record.energy * KCAL_MOL_EV) for e in data.energies]))
        assert data.energies[k] == pytest.approx(record.energy / 23.0605478, rel=1e-7)
        np.testing.assert_allclose(
            data.frame_forces(k), -record.gradient / 23.0605478, atol=1e-10, rtol=1e-7
        )
    assert len(read_frames(path)) == 3
