"""WBO fragmentation of drug-like molecules around rotatable bonds: the central bond's
Wiberg bond order (recomputed here with tblite directly) stays within the threshold of the
parent's, rings and functional groups stay whole, caps give proper valences, charges follow
the kept groups, coordinates are the parent's."""

import numpy as np
import pytest
from rdkit import Chem
from tblite.interface import Calculator

from ffparam.chem import Molecule, Topology
from ffparam.errors import InputError
from ffparam.fragment import (
    DEFAULT_WBO_THRESHOLD,
    fragment_for_bond,
    needs_fragmentation,
)
from ffparam.fragment.rules import X_H_LENGTH
from ffparam.units import BOHR_ANGSTROM

DRUGS = {
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "sildenafil": "CCCc1nn(C)c2c(=O)[nH]c(-c3cc(S(=O)(=O)N4CCN(C)CC4)ccc3OCC)nc12",
    "fenofibrate": "CC(C)OC(=O)C(C)(C)Oc1ccc(C(=O)c2ccc(Cl)cc2)cc1",
    "nifedipine": "COC(=O)C1=C(C)NC(C)=C(C(=O)OC)C1c1ccccc1[N+](=O)[O-]",
    "imatinib_h+": "Cc1ccc(NC(=O)c2ccc(CN3CC[NH+](C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
}

# (molecule, SMARTS whose atoms mapped 1 and 2 are the central bond)
CASES = [
    ("imatinib", "[c][C:1](=O)-[NH1:2][c]"),  # amide linker
    ("imatinib", "[c;r6:1]-!@[c;r6:2]"),  # biaryl pyrimidine-pyridine
    ("sildenafil", "[S:1](=O)(=O)-[N:2]"),  # sulfonamide
    ("sildenafil", "[c:1](:[c]-[O])-!@[c:2]"),  # biaryl with an ortho ethoxy group
    ("fenofibrate", "[C:1](=O)-[O:2]C(C)C"),  # isopropyl ester
    ("fenofibrate", "[c:1]-[O:2]"),  # aryl ether
    ("nifedipine", "[C;R:1]-!@[c:2]"),  # ring-aryl bond with an ortho nitro group
    ("imatinib_h+", "[c:1]-[CH2:2][N]"),  # benzyl-piperazinium
]


def tblite_wbo(molecule: Molecule) -> np.ndarray:
    calc = Calculator("GFN2-xTB", molecule.atomic_numbers,
                      molecule.conformers[0] / BOHR_ANGSTROM, charge=float(molecule.total_charge))
    calc.set("verbosity", 0)
    return np.asarray(calc.singlepoint().get("bond-orders"))[..., 0]


def bond_by_smarts(molecule: Molecule, smarts: str) -> tuple[int, int]:
    pattern = Chem.MolFromSmarts(smarts)
    slots = {a.GetAtomMapNum(): a.GetIdx() for a in pattern.GetAtoms() if a.GetAtomMapNum()}
    match = molecule.rdmol.GetSubstructMatch(pattern)
    assert match, smarts
    return match[slots[1]], match[slots[2]]


_PARENTS: dict[str, Molecule] = {}


def parent(name: str) -> Molecule:
    if name not in _PARENTS:
        _PARENTS[name] = Molecule.from_smiles(DRUGS[name], name=name).generate_conformers(
            1, seed=7)
    return _PARENTS[name]


_FRAGMENTS: dict[tuple[str, str], tuple] = {}


def fragment_case(name: str, smarts: str):
    if (name, smarts) not in _FRAGMENTS:
        mol = parent(name)
        bond = bond_by_smarts(mol, smarts)
        _FRAGMENTS[name, smarts] = (mol, bond, fragment_for_bond(mol, bond))
    return _FRAGMENTS[name, smarts]


@pytest.mark.parametrize("name, smarts", CASES)
def test_fragment_keeps_central_wbo(name, smarts):
    mol, bond, frag = fragment_case(name, smarts)
    assert needs_fragmentation(mol)
    assert frag.n_heavy_atoms < int((mol.atomic_numbers > 1).sum())
    assert not frag.is_whole_molecule
    parent_wbo = tblite_wbo(mol)[bond]
    fragment_wbo = tblite_wbo(frag.molecule)[frag.bond]
    assert frag.parent_wbo == pytest.approx(parent_wbo, abs=1e-8)
    assert frag.wbo == pytest.approx(fragment_wbo, abs=1e-8)
    assert abs(fragment_wbo - parent_wbo) <= DEFAULT_WBO_THRESHOLD
    assert frag.converged


@pytest.mark.parametrize("name, smarts", CASES)
def test_fragment_structure(name, smarts):
    mol, bond, frag = fragment_case(name, smarts)
    fmol, amap = frag.molecule, frag.atom_map
    Chem.SanitizeMol(Chem.Mol(fmol.rdmol))  # proper valences after capping
    to_frag = frag.parent_to_fragment
    # the central bond, all its neighbours and the scan dihedral are kept
    assert (amap[frag.bond[0]], amap[frag.bond[1]]) == bond
    for centre in bond:
        for n in mol.rdmol.GetAtomWithIdx(centre).GetNeighbors():
            assert n.GetIdx() in to_frag
    assert tuple(amap[a] for a in frag.dihedral) == Topology(mol).dihedral_for_bond(bond)
    # rings whole: every parent ring is kept entirely or not at all
    for ring in mol.rdmol.GetRingInfo().AtomRings():
        kept = sum(a in to_frag for a in ring)
        assert kept in (0, len(ring)), ring
    # kept atoms: same element, charge, aromaticity, degree and coordinates as the parent
    for f, p in enumerate(amap):
        if p is None:
            continue
        fa, pa = fmol.rdmol.GetAtomWithIdx(f), mol.rdmol.GetAtomWithIdx(p)
        assert (fa.GetAtomicNum(), fa.GetFormalCharge(), fa.GetIsAromatic(), fa.GetDegree()) \
            == (pa.GetAtomicNum(), pa.GetFormalCharge(), pa.GetIsAromatic(), pa.GetDegree())
        np.testing.assert_array_equal(fmol.conformers[0, f], mol.conformers[0, p])
    # charge: the sum of the kept atoms' formal charges (caps are neutral)
    assert fmol.total_charge == sum(mol.rdmol.GetAtomWithIdx(p).GetFormalCharge()
                                    for p in amap if p is not None)
    assert len(frag.caps) == len({(a, n.GetIdx()) for a in to_frag
                                  for n in mol.rdmol.GetAtomWithIdx(a).GetNeighbors()
                                  if n.GetIdx() not in to_frag})


@pytest.mark.parametrize("name, smarts", CASES[:4])
def test_caps_lie_along_cut_bonds(name, smarts):
    mol, _, frag = fragment_case(name, smarts)
    fmol, amap = frag.molecule, frag.atom_map
    xyz, pxyz = fmol.conformers[0], mol.conformers[0]
    to_frag = frag.parent_to_fragment
    for f_atom, kind in frag.caps:
        p_atom = amap[f_atom]
        cut = [n.GetIdx() for n in mol.rdmol.GetAtomWithIdx(p_atom).GetNeighbors()
               if n.GetIdx() not in to_frag]
        caps = [n for n in fmol.rdmol.GetAtomWithIdx(f_atom).GetNeighbors()
                if amap[n.GetIdx()] is None]
        assert len(caps) == len(cut)
        for cap in caps:
            v = xyz[cap.GetIdx()] - xyz[f_atom]
            cosines = [v @ (pxyz[b] - pxyz[p_atom]) / np.linalg.norm(v)
                       / np.linalg.norm(pxyz[b] - pxyz[p_atom]) for b in cut]
            assert max(cosines) == pytest.approx(1.0, abs=1e-9)
            z = fmol.rdmol.GetAtomWithIdx(f_atom).GetAtomicNum()
            if kind == "H":
                assert cap.GetAtomicNum() == 1
                assert np.linalg.norm(v) == pytest.approx(X_H_LENGTH[z], abs=1e-9)
            else:
                assert cap.GetAtomicNum() == 6 and cap.GetTotalNumHs() == 3
                ch = [np.linalg.norm(xyz[h.GetIdx()] - xyz[cap.GetIdx()])
                      for h in cap.GetNeighbors() if h.GetAtomicNum() == 1]
                np.testing.assert_allclose(ch, 1.09, atol=1e-9)


def test_functional_groups_and_ortho_substituents_kept():
    # sulfonamide: both S=O oxygens and the nitrogen with its ring
    mol, bond, frag = fragment_case(*CASES[2])
    s = next(a for a in bond if mol.rdmol.GetAtomWithIdx(a).GetSymbol() == "S")
    for n in mol.rdmol.GetAtomWithIdx(s).GetNeighbors():
        assert n.GetIdx() in frag.parent_to_fragment
    # ortho ethoxy: its oxygen is kept, and its CH2 (the ether stays an ether: the real
    # carbon instead of a methyl cap, its own cut capped by hydrogen)
    mol, bond, frag = fragment_case(*CASES[3])
    ether_o, ch2 = bond_by_smarts(mol, "[c]-[O:1]-[CH2:2]C")
    assert {ether_o, ch2} <= set(frag.parent_to_fragment)
    assert (frag.parent_to_fragment[ch2], "H") in frag.caps
    # ortho nitro: kept whole, charges +1/-1, neutral fragment
    mol, bond, frag = fragment_case(*CASES[6])
    nitro = bond_by_smarts(mol, "[N+:1](=O)[O-:2]")
    assert set(nitro) <= set(frag.parent_to_fragment)
    assert frag.molecule.total_charge == 0
    assert sorted(frag.molecule.formal_charges[frag.molecule.formal_charges != 0]) == [-1, 1]


def test_charge_follows_the_local_group():
    mol, _, frag = fragment_case(*CASES[7])
    assert mol.total_charge == 1
    assert frag.molecule.total_charge == 1  # the piperazinium ring is kept
    amide_bond = bond_by_smarts(mol, CASES[0][1])
    far = fragment_for_bond(mol, amide_bond)
    assert far.molecule.total_charge == 0  # the remote ammonium is not part of this group
    assert far.converged


def test_growth_until_wbo_matches():
    mol = Molecule.from_smiles("CN(C)c1ccc(-c2ccc([N+](=O)[O-])cc2)cc1", name="push-pull")
    mol = mol.generate_conformers(1, seed=7)
    bond = bond_by_smarts(mol, "[c:1]-!@[c:2]")
    loose = fragment_for_bond(mol, bond)
    tight = fragment_for_bond(mol, bond, threshold=0.005)
    assert len(loose.history) == 1
    sizes = [n for n, _ in tight.history]
    assert len(sizes) >= 2 and sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert tight.converged and tight.n_heavy_atoms > loose.n_heavy_atoms
    exact = tblite_wbo(tight.molecule)[tight.bond]
    assert abs(exact - tblite_wbo(mol)[bond]) <= 0.005
    # the first fragment (biphenyl) misses the push-pull substituents by more than 0.005
    assert abs(tight.history[0][1] - tight.parent_wbo) > 0.005


def test_fragment_grows_into_the_parent_when_nothing_smaller_fits():
    mol = Molecule.from_smiles("[O-]c1ccc(-c2ccccc2)cc1", name="phenolate")
    mol = mol.generate_conformers(1, seed=7)
    bond = bond_by_smarts(mol, "[c:1]-!@[c:2]")
    frag = fragment_for_bond(mol, bond, threshold=0.001)
    assert frag.is_whole_molecule and frag.wbo_difference == 0.0
    assert frag.molecule.canonical_key() == mol.canonical_key()
    assert frag.atom_map == tuple(range(mol.n_atoms))


def test_size_rule_and_bad_bonds():
    small = Molecule.from_smiles("CC(=O)Nc1ccc(O)cc1")  # paracetamol, 11 heavy atoms
    assert not needs_fragmentation(small)
    assert needs_fragmentation(small, max_heavy_atoms=10)
    assert needs_fragmentation(parent("imatinib"))
    mol = parent("fenofibrate")
    ring_bond = next(b for b in mol.rdmol.GetBonds() if b.IsInRing())
    with pytest.raises(InputError, match="ring"):
        fragment_for_bond(mol, (ring_bond.GetBeginAtomIdx(), ring_bond.GetEndAtomIdx()))
    with pytest.raises(InputError, match="not bonded"):
        fragment_for_bond(mol, (0, 20))
