"""Graph automorphisms from elements and one geometry (bonds perceived from distances)."""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import AllChem

from ffparam.chem.symmetry import connectivity_from_geometry, molecule_automorphisms


def _embedded(smiles: str) -> tuple[np.ndarray, np.ndarray]:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=7)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    return numbers, mol.GetConformer().GetPositions()


def test_methane_has_the_24_permutations_of_its_hydrogens():
    numbers, positions = _embedded("C")
    perms = molecule_automorphisms(numbers, positions)
    assert perms.shape == (24, 5)
    assert np.array_equal(perms[0], np.arange(5)) and np.all(perms[:, 0] == 0)
    assert len({tuple(p) for p in perms}) == 24
    composed = {tuple(p[q]) for p in perms for q in perms}  # a group: closed
    assert composed == {tuple(p) for p in perms}


def test_connectivity_and_group_larger_than_the_limit():
    numbers, positions = _embedded("CCO")
    mol = connectivity_from_geometry(numbers, positions)
    assert mol.GetNumBonds() == 8
    assert len(molecule_automorphisms(numbers, positions)) == 12  # CH3 (6) x CH2 (2)
    limited = molecule_automorphisms(numbers, positions, limit=5)
    assert np.array_equal(limited, np.arange(9)[None])  # not a subset that is no group


def test_atoms_too_far_apart_have_only_their_element_symmetry():
    numbers = np.array([8, 8])
    perms = molecule_automorphisms(numbers, np.array([[0.0, 0, 0], [0.0, 0, 50.0]]))
    assert perms.tolist() == [[0, 1], [1, 0]]
