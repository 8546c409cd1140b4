"""Topology term counts against closed-form graph counts."""

import pytest

from ffparam.chem import Molecule, Topology


@pytest.mark.parametrize("smiles,bonds,angles,propers,impropers,pairs14", [
    # butane: 13 bonds; angles = sum C(d,2) = 2*3 + 2*6 ... counted independently below
    ("CCCC", 13, 24, 27, 0, 27),
    ("c1ccccc1", 12, 18, 24, 6, 21),  # 1-4: 3 para C-C, 12 C-H meta, 6 ortho H-H
    ("C1CC1", 9, 18, 24, 0, 12),
    ("CC(=O)O", 7, 10, 8, 1, 8),
])
def test_counts(smiles, bonds, angles, propers, impropers, pairs14):
    topo = Topology(Molecule.from_smiles(smiles))
    mol = topo.molecule.rdmol
    # angles: sum over atoms of C(degree, 2)
    assert len(topo.angles) == sum(a.GetDegree() * (a.GetDegree() - 1) // 2
                                   for a in mol.GetAtoms()) == angles
    assert len(topo.bonds) == bonds
    # propers: sum over bonds (d_j - 1)(d_k - 1), minus none (no 3-rings double count here)
    assert len(topo.propers) == propers
    assert len(topo.impropers) == impropers
    assert len(topo.pairs_14) == pairs14
    # exclusions and 1-4 are disjoint; all pairs partition
    n = topo.n_atoms
    assert len(topo.exclusions) + len(topo.pairs_14) + len(topo.nonbonded_pairs) == n * (n - 1) // 2


def test_rotatable_bonds_and_terminal_rotors():
    topo = Topology(Molecule.from_smiles("CCCC(=O)OC"))
    heavy = {tuple(b) for b in topo.rotatable_bonds.tolist()}
    assert heavy == {(1, 2), (2, 3), (3, 5)}  # C1-C2, C2-C3, C3-O5; not O5-C6 (methyl)
    with_terminal = {tuple(b) for b in topo.find_rotatable_bonds(True).tolist()}
    assert heavy < with_terminal and (0, 1) in with_terminal and (5, 6) in with_terminal
    assert topo.is_symmetric_terminal_rotor((0, 1))
    assert not topo.is_symmetric_terminal_rotor((2, 3))
    assert len(Topology(Molecule.from_smiles("c1ccccc1")).rotatable_bonds) == 0
    acetanilide = Topology(Molecule.from_smiles("CC(=O)Nc1ccccc1"))
    assert not acetanilide.is_symmetric_terminal_rotor((3, 4))  # N-phenyl: scanned
    assert acetanilide.is_symmetric_terminal_rotor((0, 1))  # acetyl methyl: skipped
    assert Topology(Molecule.from_smiles("NCC(F)(F)F")).is_symmetric_terminal_rotor((1, 2))
    assert len(Topology(Molecule.from_smiles("CC#CC")).find_rotatable_bonds(True)) == 0


def test_symmetry_classes():
    topo = Topology(Molecule.from_smiles("CC(C)O"))
    cls = topo.symmetry_classes
    assert cls[0] == cls[2] != cls[1]
    h_on_methyls = [i for i in range(topo.n_atoms)
                    if topo.molecule.symbols[i] == "H" and topo.neighbours(i)[0] in (0, 2)]
    assert len({int(cls[i]) for i in h_on_methyls}) == 1


def test_torsions_around_and_representative_dihedral():
    topo = Topology(Molecule.from_smiles("ClCCBr"))
    rows = topo.torsions_around((1, 2))
    assert len(rows) == 9
    first, j, k, last = topo.dihedral_for_bond((1, 2))
    assert (j, k) == (1, 2)
    assert topo.molecule.symbols[first] == "Cl" and topo.molecule.symbols[last] == "Br"
