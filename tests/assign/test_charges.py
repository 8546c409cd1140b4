"""Partial charges: AM1-BCC (antechamber/sqm), Gasteiger and MMFF94 (RDKit).

AM1-BCC is checked independently of ffparam's antechamber call: the test runs sqm's AM1
Mulliken charges itself (``antechamber -c mul`` on the same geometry, its own SDF
writer), averages them over the atoms antechamber treats as equivalent, and adds the bond charge
corrections read from AmberTools' ``BCCPARM.DAT`` with AM1-BCC atom/bond types assigned
by hand (Jakalian, Jack & Bayly, J. Comput. Chem. 23, 1623 (2002)): sp3 C = 11,
carboxyl C = 14, O = 31, H = 91; bond type 1 = single, 9 = delocalized (carboxylate).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdForceFieldHelpers, rdPartialCharges

from ffparam.assign import charges as charges_module
from ffparam.assign.charges import clear_charge_cache, compute_partial_charges
from ffparam.assign.programs import find_program, program_environment
from ffparam.chem import Molecule
from ffparam.errors import ExternalProgramError, InputError, UnsupportedChemistryError

# (SMILES, AM1-BCC type per heavy atom then per H, bonds (i, j, bond type), groups of
# atoms antechamber treats as equivalent -- resonance included, so both carboxylate O)
HAND_TYPED = {
    "methanol": ("CO", [11, 31, 91, 91, 91, 91],
                 [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1), (1, 5, 1)], [[2, 3, 4]]),
    "acetate": ("CC(=O)[O-]", [11, 14, 31, 31, 91, 91, 91],
                [(0, 1, 1), (1, 2, 9), (1, 3, 9), (0, 4, 1), (0, 5, 1), (0, 6, 1)],
                [[2, 3], [4, 5, 6]]),
}


def bcc_table() -> dict[tuple[int, int, int], float]:
    """(type i, type j, bond type) -> correction added to i (subtracted from j)."""
    path = find_program("antechamber").resolve().parents[1] / "dat" / "antechamber"
    candidates = [path / "BCCPARM.DAT",
                  Path(sys.executable).parents[1] / "dat" / "antechamber" / "BCCPARM.DAT"]
    table = {}
    text = next(p for p in candidates if p.is_file()).read_text()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 5 and all(f.lstrip("-").replace(".", "").isdigit() for f in fields):
            table[(int(fields[1]), int(fields[2]), int(fields[3]))] = float(fields[4])
    return table


def mulliken_by_sqm(mol: Molecule, tmp: Path) -> np.ndarray:
    """AM1 Mulliken charges from a separate ``antechamber -c mul`` run (sqm)."""
    rd = Chem.Mol(mol.rdmol, confId=0)
    Chem.Kekulize(rd, clearAromaticFlags=True)
    (tmp / "in.sdf").write_text(Chem.MolToMolBlock(rd))
    subprocess.run([str(find_program("antechamber")), "-i", "in.sdf", "-fi", "mdl", "-o",
                    "mul.mol2", "-fo", "mol2", "-c", "mul", "-nc", str(mol.total_charge),
                    "-pf", "y", "-dr", "n"], cwd=tmp, env=program_environment(),
                   check=True, capture_output=True)
    lines = (tmp / "mul.mol2").read_text().split("@<TRIPOS>ATOM")[1].split("@<TRIPOS>")[0]
    return np.array([float(line.split()[8]) for line in lines.strip().splitlines()])


@pytest.mark.parametrize("name", sorted(HAND_TYPED))
def test_am1bcc_equals_mulliken_plus_hand_bcc(name: str, tmp_path: Path) -> None:
    smiles, types, bonds, groups = HAND_TYPED[name]
    mol = Molecule.from_smiles(smiles).generate_conformers(1)
    assert len(types) == mol.n_atoms
    q = compute_partial_charges(mol, "am1bcc")
    assert q.sum() == pytest.approx(mol.total_charge, abs=1e-12)

    mulliken = mulliken_by_sqm(mol, tmp_path)
    expected = mulliken.copy()
    for group in groups:
        expected[group] = mulliken[group].mean()
    table = bcc_table()
    for i, j, order in bonds:
        ti, tj = types[i], types[j]
        if (ti, tj, order) in table:
            expected[i] += table[(ti, tj, order)]
            expected[j] -= table[(ti, tj, order)]
        else:
            expected[j] += table[(tj, ti, order)]
            expected[i] -= table[(tj, ti, order)]
    expected -= (expected.sum() - mol.total_charge) / mol.n_atoms
    np.testing.assert_allclose(q, expected, atol=2e-6)
    if name == "methanol":  # the hydroxyl H carries the O-H correction 0.2010
        assert q[5] - mulliken[5] == pytest.approx(table[(31, 91, 1)] * -1, abs=1e-5)


def test_am1bcc_generates_a_conformer_and_caches() -> None:
    clear_charge_cache()
    mol = Molecule.from_smiles("CC(=O)[O-]")
    assert mol.n_conformers == 0
    q1 = compute_partial_charges(mol, "AM1-BCC")
    assert len(charges_module._CACHE) == 1
    assert q1.sum() == pytest.approx(-1.0, abs=1e-12)
    np.testing.assert_allclose(q1[2], q1[3], atol=1e-6)  # equivalent carboxylate O
    q1[0] = 99.0  # callers get copies
    fixed = mol.generate_conformers(1)
    q2 = compute_partial_charges(fixed, "am1bcc")
    q3 = compute_partial_charges(fixed, "am1bcc")
    np.testing.assert_array_equal(q2, q3)
    assert len(charges_module._CACHE) <= 2 and q3[0] != 99.0


def test_am1bcc_bad_input() -> None:
    with pytest.raises(UnsupportedChemistryError, match="radical"):
        compute_partial_charges(Molecule.from_smiles("[CH3]"), "am1bcc")
    with pytest.raises(UnsupportedChemistryError, match="Si1"):
        compute_partial_charges(Molecule.from_smiles("C[Si](C)(C)C"), "am1bcc")
    np.testing.assert_array_equal(compute_partial_charges(Molecule.from_smiles("[Na+]")),
                                  [1.0])
    collapsed = Molecule.from_smiles("CO")
    collapsed = collapsed.with_conformers(np.zeros((1, collapsed.n_atoms, 3)))
    with pytest.raises(ExternalProgramError, match="AM1-BCC for CH4O"):
        compute_partial_charges(collapsed, "am1bcc")
    with pytest.raises(InputError, match="unknown charge method 'resp2'"):
        compute_partial_charges(collapsed, "resp2")


@pytest.mark.parametrize("smiles", ["CCO", "CC(=O)[O-]", "c1ccncc1", "C[NH3+]",
                                    "CS(=O)(=O)N", "ClCCBr"])
def test_gasteiger_and_mmff94_equal_rdkit(smiles: str) -> None:
    mol = Molecule.from_smiles(smiles)
    rd = Chem.Mol(mol.rdmol)
    rdPartialCharges.ComputeGasteigerCharges(rd)
    gasteiger = np.array([a.GetDoubleProp("_GasteigerCharge") for a in rd.GetAtoms()])
    q = compute_partial_charges(mol, "gasteiger")
    np.testing.assert_allclose(q, gasteiger, atol=1e-10)
    assert q.sum() == pytest.approx(mol.total_charge, abs=1e-12)
    props = rdForceFieldHelpers.MMFFGetMoleculeProperties(Chem.Mol(mol.rdmol))
    mmff = np.array([props.GetMMFFPartialCharge(i) for i in range(mol.n_atoms)])
    q = compute_partial_charges(mol, "mmff94")
    np.testing.assert_allclose(q, mmff, atol=1e-10)
    assert q.sum() == pytest.approx(mol.total_charge, abs=1e-12)


def test_mmff94_untyped_element() -> None:
    with pytest.raises(UnsupportedChemistryError, match="MMFF94 has no atom types"):
        compute_partial_charges(Molecule.from_smiles("B(C)(C)C"), "mmff94")
