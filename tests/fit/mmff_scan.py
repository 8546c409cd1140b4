"""Test-only torsion scans computed with MMFF94 (RDKit): an independent 'reference' level
for exercising the fitting pipeline without QM cost."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.io import write
from rdkit import Chem
from rdkit.Chem import AllChem
from rdkit.Chem import rdForceFieldHelpers as ffh

from ffparam.chem import Molecule
from ffparam.units import KCAL_MOL_EV


def mmff_scan(molecule: Molecule, dihedral: tuple[int, int, int, int], spacing: int = 30):
    """(angles deg, geometries (P, N, 3) A, MMFF94 energies kcal/mol) of a relaxed scan."""
    mol = Chem.Mol(molecule.rdmol)
    if mol.GetNumConformers() == 0:
        AllChem.EmbedMolecule(mol, randomSeed=7)
    props = ffh.MMFFGetMoleculeProperties(mol)
    angles, geoms, energies = [], [], []
    conf = mol.GetConformer()
    for angle in range(-180, 180, spacing):
        ff = ffh.MMFFGetMoleculeForceField(mol, props)
        ff.MMFFAddTorsionConstraint(*dihedral, False, float(angle), float(angle), 1.0e4)
        ff.Minimize(maxIts=5000)
        xyz = np.array(ff.Positions()).reshape(-1, 3)
        for i, p in enumerate(xyz):
            conf.SetAtomPosition(i, p.tolist())
        plain = ffh.MMFFGetMoleculeForceField(mol, props)
        angles.append(angle)
        geoms.append(xyz)
        energies.append(plain.CalcEnergy())
    return np.array(angles, float), np.array(geoms), np.array(energies)


def write_scan_extxyz(path, molecule: Molecule, dihedral, angles, geoms, energies) -> None:
    frames = []
    for angle, xyz, energy in zip(angles, geoms, energies):
        atoms = Atoms(molecule.symbols, positions=xyz)
        atoms.info["dihedral_atoms"] = " ".join(map(str, dihedral))
        atoms.info["dihedral_angle"] = float(angle)
        atoms.info["energy"] = float(energy) * KCAL_MOL_EV
        frames.append(atoms)
    write(str(path), frames, format="extxyz")
