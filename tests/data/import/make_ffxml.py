"""Regenerate the PDB files of CHARMM36 model compounds for the ffxml import tests (run
from the repository root with the project's venv: ``python tests/data/import/make_ffxml.py``).

Each PDB is one residue template of OpenMM's ``charmm36.xml`` (atom names, elements and
bonds as CONECT records), coordinates from RDKit ETKDG (seed 7) on its bond graph with the
bond orders RDKit determines for the template's formal charge. See SOURCE.md.
"""

from pathlib import Path

import numpy as np
from openmm import app, unit
from rdkit import Chem
from rdkit.Chem import AllChem, rdDetermineBonds

HERE = Path(__file__).parent
RESIDUES = {"charmm36_etoh": "ETOH", "charmm36_nma": "NMA", "charmm36_phen": "PHEN",
            "charmm36_acet": "ACET", "charmm36_imia": "IMIA", "charmm36_alad": "ALAD"}


def embed(elements: list[int], bonds: list[tuple[int, int]], charge: int) -> np.ndarray:
    rw = Chem.RWMol()
    for z in elements:
        atom = Chem.Atom(z)
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for i, j in bonds:
        rw.AddBond(i, j, Chem.BondType.SINGLE)
    mol = rw.GetMol()
    rdDetermineBonds.DetermineBondOrders(mol, charge=charge, embedChiral=False)
    Chem.SanitizeMol(mol)
    assert AllChem.EmbedMolecule(mol, randomSeed=7) == 0
    return mol.GetConformer().GetPositions()


def write(name: str, resname: str, forcefield: app.ForceField) -> None:
    template = forcefield._templates[resname]
    elements = [forcefield._atomTypes[a.type].element.atomic_number for a in template.atoms]
    charge = round(sum(a.parameters.get("charge", 0.0) for a in template.atoms))
    xyz = embed(elements, list(template.bonds), charge)
    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue(resname, chain)
    atoms = [top.addAtom(a.name, app.Element.getByAtomicNumber(z), res)
             for a, z in zip(template.atoms, elements)]
    for i, j in template.bonds:
        top.addBond(atoms[i], atoms[j])
    with open(HERE / f"{name}.pdb", "w") as out:
        app.PDBFile.writeFile(top, xyz * unit.angstrom, out)


if __name__ == "__main__":
    ff = app.ForceField("charmm36.xml")
    for n, r in RESIDUES.items():
        write(n, r, ff)
