"""Regenerate the CHARMM test files of this folder (run from the repository root with the
project's venv: ``python tests/data/import/make_charmm.py``). See SOURCE.md.

PSF files of CHARMM36 carbohydrate residues (``top_all36_carb.rtf``) and of sodium and
chloride ions (``toppar_water_ions.str``), both from AmberTools' ``dat/chamber`` folder:
atoms, types and charges of the residue templates, bonds, angles and dihedrals generated
from the bond graph as psfgen does, impropers from the residue's IMPR lines; coordinates
from RDKit ETKDG (seed 7) on the bond graph. The parameter files are copied beside them.
"""

import shutil
import sys
from pathlib import Path

import numpy as np
import parmed
from rdkit import Chem
from rdkit.Chem import AllChem

HERE = Path(__file__).parent
CHAMBER = Path(sys.executable).parents[1] / "dat" / "chamber"
FILES = ["top_all36_carb.rtf", "par_all36_carb.prm", "toppar_water_ions.str"]
SYSTEMS = {"charmm_aglc": ["AGLC"], "charmm_axyl": ["AXYL"], "charmm_aglcna": ["AGLCNA"],
           "charmm_bglca": ["BGLCA"], "charmm_aglc_nacl": ["AGLC", "SOD", "CLA"]}


def impropers(rtf: Path, resname: str) -> list[tuple[str, ...]]:
    out, current = [], None
    for line in rtf.read_text().splitlines():
        words = line.split("!")[0].split()
        if words[:1] == ["RESI"]:
            current = words[1]
        elif words[:1] in (["IMPR"], ["IMPH"]) and current == resname:
            out += [tuple(words[i:i + 4]) for i in range(1, len(words) - 3, 4)]
    return out


def add_graph_terms(struct: parmed.Structure) -> None:
    nb = [[p.idx for p in a.bond_partners] for a in struct.atoms]
    atoms = struct.atoms
    for j in range(len(atoms)):
        for a in nb[j]:
            for b in nb[j]:
                if a < b:
                    struct.angles.append(parmed.Angle(atoms[a], atoms[j], atoms[b]))
    seen = set()
    for bond in struct.bonds:
        j, k = bond.atom1.idx, bond.atom2.idx
        for i in nb[j]:
            for m in nb[k]:
                if len({i, j, k, m}) == 4:
                    key = min((i, j, k, m), (m, k, j, i))
                    if key not in seen:
                        seen.add(key)
                        struct.dihedrals.append(parmed.Dihedral(*(atoms[x] for x in key)))


def template(params: parmed.charmm.CharmmParameterSet, resname: str) -> parmed.Structure:
    """The residue as a Structure, elements and masses from the atom types."""
    part = params.residues[resname].to_structure()
    for atom in part.atoms:
        atom.atomic_number = params.atom_types[atom.type].atomic_number
        atom.mass = params.atom_types[atom.type].mass
    return part


def build(residues: list[str], params: parmed.charmm.CharmmParameterSet) -> parmed.Structure:
    struct = parmed.Structure()
    for number, resname in enumerate(residues):
        part = template(params, resname)
        for atom in part.atoms:
            atom.residue = None
        offset = len(struct.atoms)
        for atom in part.atoms:
            struct.add_atom(atom, resname, number + 1, segid="SYS")
        for bond in part.bonds:
            struct.bonds.append(parmed.Bond(struct.atoms[offset + bond.atom1.idx],
                                            struct.atoms[offset + bond.atom2.idx]))
        names = {a.name: struct.atoms[offset + i] for i, a in enumerate(part.atoms)}
        for quad in impropers(HERE / FILES[0], resname):
            struct.impropers.append(parmed.Improper(*(names[n] for n in quad)))
    add_graph_terms(struct)
    xyz = [coordinates(template(params, r)) for r in residues]
    for k in range(1, len(xyz)):  # ions: 3.2 A from the previous part's edge, on x
        xyz[k] = xyz[k] - xyz[k].mean(0) + [xyz[k - 1][:, 0].max() + 3.2, 0.3 * k, 0.0]
    struct.coordinates = np.concatenate(xyz)
    return struct


def coordinates(struct: parmed.Structure) -> np.ndarray:
    if len(struct.atoms) == 1:
        return np.zeros((1, 3))
    rw = Chem.RWMol()
    for atom in struct.atoms:
        a = Chem.Atom(int(atom.atomic_number))
        a.SetNoImplicit(True)
        rw.AddAtom(a)
    for bond in struct.bonds:
        rw.AddBond(bond.atom1.idx, bond.atom2.idx, Chem.BondType.SINGLE)
    for atom in rw.GetAtoms():  # C=O of amides and carboxylates, O- of carboxylates
        if atom.GetAtomicNum() == 6 and atom.GetDegree() == 3:
            oxygens = [n for n in atom.GetNeighbors()
                       if n.GetAtomicNum() == 8 and n.GetDegree() == 1]
            for k, o in enumerate(oxygens):
                if k == 0:
                    rw.GetBondBetweenAtoms(atom.GetIdx(), o.GetIdx()).SetBondType(
                        Chem.BondType.DOUBLE)
                else:
                    o.SetFormalCharge(-1)
    mol = rw.GetMol()
    Chem.SanitizeMol(mol)
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    return mol.GetConformer().GetPositions()


def main() -> None:
    for name in FILES:
        shutil.copy(CHAMBER / name, HERE / name)
    params = parmed.charmm.CharmmParameterSet(*(str(HERE / f) for f in FILES))
    for name, residues in SYSTEMS.items():
        struct = build(residues, params)
        psf = parmed.charmm.CharmmPsfFile.from_structure(struct)
        psf.write_psf(str(HERE / f"{name}.psf"))
        parmed.charmm.CharmmCrdFile.write(struct, str(HERE / f"{name}.crd"))


if __name__ == "__main__":
    main()
