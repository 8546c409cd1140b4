"""GAFF2 atom typing (antechamber), parmchk2, tleap matching rules and bad input.

References: antechamber's own mol2 output stored in tests/data/assign/gaff (see
SOURCE.md) and the GAFF2 type definitions of gaff2.dat's MASS section (``ca`` "Sp2 C in
pure aromatic systems", ``ha`` "H bonded to aromatic carbon", ``c`` "Sp2 C carbonyl
group", ``o`` "Oxygen with one connected atom", ``oh`` "Oxygen in hydroxyl group",
``cl`` chlorine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from ffparam.assign.amber_files import (
    AmberParameterFile,
    BondRecord,
    TorsionRecord,
    read_frcmod,
    read_mol2,
    read_parm_dat,
)
from ffparam.assign.gaff import (
    LeapParameterLookup,
    assign_gaff2_types,
    parameterize_gaff2,
    run_parmchk2,
)
from ffparam.assign.programs import run_program
from ffparam.chem import Molecule
from ffparam.errors import InputError, ParameterAssignmentError, UnsupportedChemistryError

DATA = Path(__file__).resolve().parents[1] / "data" / "assign" / "gaff"

EXPECTED = {
    "benzene": {"C": "ca", "H": "ha"},
    "chlorobenzene": {"Cl": "cl", "C": "ca", "H": "ha"},
}


@pytest.mark.parametrize("name", ["benzene", "acetic_acid", "chlorobenzene"])
def test_types_match_antechamber_mol2(name):
    molecule = Molecule.from_file(DATA / f"{name}.sdf")
    types = assign_gaff2_types(molecule)
    assert types == read_mol2(DATA / f"{name}.antechamber.mol2").types
    for symbol, t in zip(molecule.symbols, types):
        if name in EXPECTED:
            assert t == EXPECTED[name][symbol]
    if name == "acetic_acid":  # C C O O H H H H from the SDF
        assert types == ["c3", "c", "o", "oh", "hc", "hc", "hc", "ho"]


def test_types_follow_the_atoms_when_the_order_changes():
    molecule = Molecule.from_file(DATA / "acetic_acid.sdf")
    order = [7, 2, 5, 0, 3, 6, 1, 4]
    shuffled = Molecule.from_rdkit(Chem.RenumberAtoms(molecule.rdmol, order), "shuffled")
    assert assign_gaff2_types(shuffled) == [assign_gaff2_types(molecule)[i] for i in order]


def test_types_without_coordinates():
    molecule = Molecule.from_smiles("c1ccccc1Cl")
    assert molecule.n_conformers == 0
    assert assign_gaff2_types(molecule) == ["ca"] * 6 + ["cl"] + ["ha"] * 5


def test_parmchk2_reads_gaff2_not_gaff(tmp_path):
    """The GAFF2-only types c5 (sp3 C in a 5-ring) and ns need no estimate from parmchk2
    with gaff2.dat; GAFF1 (-s 1, also what '-s gaff2' gives in AmberTools 26) lacks them."""
    molecule = Molecule.from_smiles("O=C1CCC(=O)N1", name="succinimide")
    types = assign_gaff2_types(molecule, workdir=tmp_path)
    assert types[:7] == ["o", "c", "c5", "c5", "c", "o", "ns"]
    frcmod = run_parmchk2(tmp_path / "antechamber.mol2")
    assert frcmod.masses == {} and frcmod.bonds == [] and frcmod.angles == []
    run_program(["parmchk2", "-i", "antechamber.mol2", "-f", "mol2", "-o", "gaff1.frcmod",
                 "-s", "1"], cwd=tmp_path)
    assert {"c5", "ns"} <= set(read_frcmod(tmp_path / "gaff1.frcmod").masses)


# ---------------------------------------------------------------------------- tleap rules
def _lookup(*extra: AmberParameterFile) -> LeapParameterLookup:
    return LeapParameterLookup([read_parm_dat(DATA / "gaff2_slice.dat"), *extra])


def test_specific_torsion_beats_wildcard_and_keeps_all_terms():
    lookup = _lookup()
    terms = lookup.proper(["hc", "c3", "c3", "hc"])
    assert [t.key for t in terms] == ["hc-c3-c3-hc"]
    generic = lookup.proper(["c3", "c3", "c3", "hc"])
    assert [(t.key, t.divider) for t in generic] == [("X-c3-c3-X", 9.0)]
    both = lookup.proper(["hc", "c3", "c", "o"])  # reversed direction of o-c-c3-hc
    assert [(t.key, t.periodicity) for t in both] == [("o-c-c3-hc", 1), ("o-c-c3-hc", 2)]
    assert lookup.proper(["hc", "c3", "ca", "ha"]) == []


def test_later_files_take_precedence():
    frcmod = AmberParameterFile(bonds=[BondRecord(("hc", "c3"), 300.0, 1.1)],
                                propers=[TorsionRecord(("X", "c3", "c3", "X"), 1.0, 0.5,
                                                       0.0, 3)])
    lookup = _lookup(frcmod)
    assert lookup.bond("c3", "hc").force_constant == 300.0
    assert lookup.bond("c3", "c3").force_constant == 228.89
    assert lookup.proper(["c3", "c3", "c3", "hc"])[0].barrier == 0.5
    assert lookup.proper(["hc", "c3", "c3", "hc"])[0].key == "hc-c3-c3-hc"


def test_improper_generality_and_atom_order():
    lookup = _lookup()
    # carboxylate carbon 5 with neighbours c3 (atom 9), o (atom 2), o (atom 7):
    # X-o-c-o (one wildcard) beats X-X-c-o; wildcard slot gets c3, the o's by index
    atoms, terms = lookup.improper([9, 2, 5, 7], ["c3", "o", "c", "o"])
    assert [t.key for t in terms] == ["X-o-c-o"] and atoms == (9, 2, 5, 7)
    atoms, terms = lookup.improper([7, 9, 5, 2], ["o", "c3", "c", "o"])
    assert atoms == (9, 2, 5, 7)
    # carbonyl: X-X-c-o, o last, the two wildcard atoms by index
    atoms, terms = lookup.improper([8, 4, 1, 3], ["oh", "c3", "c", "o"])
    assert [t.key for t in terms] == ["X-X-c-o"] and atoms == (4, 8, 1, 3)
    # aromatic C-H: X-X-ca-ha with ha last; a centre with no record gets no improper
    assert lookup.improper([0, 2, 1, 7], ["ca", "ca", "ca", "ha"])[0] == (0, 2, 1, 7)
    assert lookup.improper([0, 2, 1, 7], ["ca", "ha", "c3", "hc"]) is None


# ---------------------------------------------------------------------------- bad input
def test_unsupported_element_and_radical():
    with pytest.raises(UnsupportedChemistryError, match="Si1"):
        parameterize_gaff2(Molecule.from_smiles("C[Si](C)(C)C"), charges="gasteiger")
    with pytest.raises(UnsupportedChemistryError, match="radical"):
        parameterize_gaff2(Molecule.from_smiles("[CH3]"), charges="gasteiger")


def test_parmchk2_attention_names_types_and_atoms():
    with pytest.raises(ParameterAssignmentError, match=r"bond ha-ha \(atoms H0-H1\).*ATTN"):
        parameterize_gaff2(Molecule.from_smiles("[H][H]"), charges="gasteiger")
    with pytest.raises(ParameterAssignmentError, match=r"angle o-cl-o \(atoms O0-Cl1-O2\)"):
        parameterize_gaff2(Molecule.from_smiles("[O-][Cl+3]([O-])([O-])[O-]"),
                           charges="gasteiger")


def test_antechamber_dummy_type_is_an_error():
    with pytest.raises(ParameterAssignmentError, match=r"H0 .*type DU"):
        assign_gaff2_types(Molecule.from_smiles("[H+]"))


def test_wrong_number_of_user_charges():
    molecule = Molecule.from_smiles("CO")
    with pytest.raises(InputError, match="need 6 charges"):
        parameterize_gaff2(molecule, charges=np.zeros(3))
