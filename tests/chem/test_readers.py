"""Molecule readers and their one-line errors."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from ffparam.chem import Molecule
from ffparam.errors import InputError, MissingFileError, UnsupportedChemistryError


def _embedded(smiles: str) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    AllChem.MMFFOptimizeMolecule(mol)
    return mol


def test_smiles_adds_hydrogens_and_keeps_charge_and_stereo():
    mol = Molecule.from_smiles("C[C@H](N)C(=O)[O-]")
    assert mol.n_atoms == 12
    assert mol.total_charge == -1
    centre = mol.rdmol.GetAtomWithIdx(1)
    assert centre.GetChiralTag() != Chem.ChiralType.CHI_UNSPECIFIED


def test_mapped_smiles_reorders_atoms():
    mol = Molecule.from_smiles("[H:3][O:2][C:1]([H:4])([H:5])[H:6]")
    assert mol.symbols == ["C", "O", "H", "H", "H", "H"]
    assert mol.rdmol.GetBondBetweenAtoms(1, 2) is not None  # O-H kept


@pytest.mark.parametrize("smiles,match", [
    ("CC(", "unparsable SMILES"),
    ("C1CC", "unparsable SMILES"),
    ("C(C)(C)(C)(C)C", "valence"),
    ("", "empty SMILES"),
])
def test_bad_smiles_says_why(smiles, match):
    with pytest.raises(InputError, match=match):
        Molecule.from_smiles(smiles)


def test_sdf_multi_conformer(tmp_path):
    rd = _embedded("CCO")
    cids = AllChem.EmbedMultipleConfs(rd, 3, randomSeed=2)
    path = tmp_path / "ethanol.sdf"
    with Chem.SDWriter(str(path)) as writer:
        for cid in cids:
            writer.write(rd, confId=cid)
    mol = Molecule.from_file(path)
    assert mol.n_conformers == 3
    expected = rd.GetConformer(cids[1]).GetPositions()
    np.testing.assert_allclose(mol.conformers[1], expected, atol=1e-4)
    assert mol.name == "ethanol"


def test_pdb_with_conect_perceives_bond_orders(tmp_path):
    rd = _embedded("CC(=O)O")
    path = tmp_path / "acetic.pdb"
    Chem.MolToPDBFile(rd, str(path), flavor=0)  # writes CONECT
    mol = Molecule.from_file(path)
    assert Chem.MolToSmiles(Chem.RemoveHs(mol.rdmol)) == "CC(=O)O"
    np.testing.assert_allclose(mol.conformers[0], rd.GetConformer().GetPositions(), atol=1e-3)


def test_pdb_without_conect_rejected(tmp_path):
    path = tmp_path / "x.pdb"
    path.write_text("HETATM    1  C   UNL     1       0.000   0.000   0.000  1.00  0.00  C\nEND\n")
    with pytest.raises(InputError, match="CONECT"):
        Molecule.from_file(path)


def test_xyz_bond_perception_with_charge(tmp_path):
    rd = _embedded("CC(=O)[O-]")
    path = tmp_path / "acetate.xyz"
    path.write_text(Chem.MolToXYZBlock(rd))
    mol = Molecule.from_file(path, charge=-1)
    assert mol.total_charge == -1
    assert Chem.MolToSmiles(Chem.RemoveHs(mol.rdmol)) == "CC(=O)[O-]"
    with pytest.raises(InputError, match="bond orders"):
        Molecule.from_file(path, charge=0)


def test_multi_frame_xyz_becomes_conformers(tmp_path):
    rd = _embedded("CO")
    block = Chem.MolToXYZBlock(rd)
    (tmp_path / "m.xyz").write_text(block + block)
    assert Molecule.from_file(tmp_path / "m.xyz").n_conformers == 2


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(MissingFileError, match="missing file"):
        Molecule.from_file(tmp_path / "nope.sdf")
    weird = tmp_path / "mol.cif"
    weird.write_text("data")
    with pytest.raises(InputError, match=r"unknown file type \.cif"):
        Molecule.from_input(str(weird))


def test_non_finite_coordinates_rejected(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text("2\n\nH 0 0 0\nH 0 0 nan\n")
    with pytest.raises(InputError, match="non-finite"):
        Molecule.from_file(path)
    mol = Molecule.from_smiles("C")
    with pytest.raises(InputError, match="non-finite coordinates"):
        mol.with_conformers(np.full((1, 5, 3), np.inf))


def test_radical_detected():
    radical = Molecule.from_smiles("[CH3]")
    assert radical.multiplicity == 2
    with pytest.raises(UnsupportedChemistryError, match="radical"):
        radical.require_closed_shell("Sage")


def test_conformer_generation_prunes_and_is_seeded():
    mol = Molecule.from_smiles("CCCCO")
    a = mol.generate_conformers(8, seed=5, rms_threshold=0.3)
    b = mol.generate_conformers(8, seed=5, rms_threshold=0.3)
    assert 1 <= a.n_conformers <= 8
    np.testing.assert_allclose(a.conformers, b.conformers)
    assert a.conformers.shape[1:] == (mol.n_atoms, 3)
