"""The molecule as an OpenMM ``Topology`` (one chain, one residue, unique atom names,
bonds with orders) and its PDB file.

Atom names are element + running number per element in atom order (``C1``, ``C2``,
``H1``...), at most 4 characters as PDB requires. Atom order is the molecule's.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from openmm import app
from openmm import unit as omm_unit
from rdkit import Chem

from ffparam.chem.molecule import Molecule
from ffparam.errors import ExportVerificationError, InputError
from ffparam.units import NM_PER_ANGSTROM

PDB_COORDINATE_TOLERANCE = 5.1e-4
"""Angstrom, per coordinate: PDB stores 3 decimals (rounding error at most 5e-4)."""

_BOND_TYPES = {
    Chem.BondType.SINGLE: (app.Single, 1),
    Chem.BondType.DOUBLE: (app.Double, 2),
    Chem.BondType.TRIPLE: (app.Triple, 3),
    Chem.BondType.AROMATIC: (app.Aromatic, None),
}


def atom_names(molecule: Molecule) -> list[str]:
    """Unique names element + running number per element (``C1``, ``Cl1``, ``H12``)."""
    counts: dict[str, int] = {}
    names = []
    for symbol in molecule.symbols:
        counts[symbol] = counts.get(symbol, 0) + 1
        name = f"{symbol}{counts[symbol]}"
        if len(name) > 4:
            raise InputError(f"{molecule.name}: more than 999 {symbol} atoms; atom names "
                             "would not fit the 4 characters of a PDB atom name")
        names.append(name)
    return names


def check_residue_name(name: str) -> str:
    if not (1 <= len(name) <= 3 and name.isalnum()):
        raise InputError(f"residue name {name!r} must be 1-3 letters or digits (PDB)")
    return name


def openmm_topology(molecule: Molecule, residue_name: str = "MOL",
                    atom_ids: list[str] | None = None) -> app.Topology:
    """An OpenMM ``Topology`` of ``molecule``: one chain ``A``, one residue, atoms in the
    molecule's order with :func:`atom_names`, every bond with its type and order.

    ``atom_ids`` (optional) sets each atom's ``id`` (ParmEd uses a non-integer id as
    the atom type name).
    """
    topology = app.Topology()
    chain = topology.addChain("A")
    residue = topology.addResidue(check_residue_name(residue_name), chain, id="1")
    atoms = []
    for i, (name, symbol) in enumerate(zip(atom_names(molecule), molecule.symbols)):
        element = app.Element.getBySymbol(symbol)
        atom_id = atom_ids[i] if atom_ids is not None else str(i + 1)
        atoms.append(topology.addAtom(name, element, residue, id=atom_id))
    for bond in molecule.rdmol.GetBonds():
        kind, order = _BOND_TYPES.get(bond.GetBondType(), (None, None))
        topology.addBond(atoms[bond.GetBeginAtomIdx()], atoms[bond.GetEndAtomIdx()],
                         type=kind, order=order)
    return topology


def pdb_text(molecule: Molecule, positions: np.ndarray, residue_name: str = "MOL") -> str:
    """PDB text (HETATM records, CONECT for every bond) of ``positions`` (n_atoms, 3)
    Angstrom."""
    topology = openmm_topology(molecule, residue_name)
    buffer = io.StringIO()
    xyz = np.asarray(positions, dtype=float).reshape(molecule.n_atoms, 3) * NM_PER_ANGSTROM
    app.PDBFile.writeFile(topology, omm_unit.Quantity(xyz, omm_unit.nanometer), buffer,
                          keepIds=True)
    return buffer.getvalue()


def check_coordinates(name: str, read: np.ndarray, expected: np.ndarray, tolerance: float,
                      molecule: Molecule) -> float:
    """Max |read - expected| (Angstrom) over coordinates; raise naming the worst atom
    beyond ``tolerance`` (catches a changed atom order as well as wrong coordinates)."""
    read = np.asarray(read, dtype=float)
    if read.shape != expected.shape:
        raise ExportVerificationError(f"{name}: {len(read)} atoms read back, expected "
                                      f"{len(expected)}")
    deviation = np.abs(read - expected).max(axis=1)
    worst = int(np.argmax(deviation)) if len(deviation) else 0
    if len(deviation) and deviation[worst] > tolerance:
        raise ExportVerificationError(
            f"{name}: atom {worst} ({molecule.symbols[worst]}) is {deviation[worst]:.3g} A "
            f"from the molecule's coordinates (tolerance {tolerance:g} A)")
    return float(deviation.max()) if len(deviation) else 0.0


def check_topology(name: str, topology: app.Topology, molecule: Molecule) -> None:
    """The read-back topology has the molecule's elements in order and its bonds."""
    elements = [a.element.symbol if a.element is not None else "?" for a in topology.atoms()]
    if elements != molecule.symbols:
        first = next((i for i, (a, b) in enumerate(zip(elements, molecule.symbols)) if a != b),
                     min(len(elements), molecule.n_atoms))
        raise ExportVerificationError(f"{name}: elements differ from the molecule from atom "
                                      f"{first} on ({len(elements)} atoms read back)")
    bonds = {tuple(sorted((b[0].index, b[1].index))) for b in topology.bonds()}
    expected = {tuple(b) for b in molecule.bonds.tolist()}
    if bonds != expected:
        extra = sorted(bonds - expected)
        missing = sorted(expected - bonds)
        raise ExportVerificationError(f"{name}: bonds differ from the molecule (missing "
                                      f"{missing[:3]}, extra {extra[:3]})")


def verify_pdb(path: Path, molecule: Molecule, positions: np.ndarray) -> app.PDBFile:
    """Read ``path`` back with OpenMM and check elements, bonds and coordinates."""
    pdb = app.PDBFile(str(path))
    check_topology(path.name, pdb.topology, molecule)
    xyz = np.array(pdb.getPositions(asNumpy=True).value_in_unit(omm_unit.angstrom))
    check_coordinates(path.name, xyz, positions, PDB_COORDINATE_TOLERANCE, molecule)
    return pdb
