"""Bespoke SMIRKS: a torsion pattern that matches one rotatable bond (and its symmetry
equivalents) and nothing else in the molecule.

The pattern is ``[*:1]~[$(env_j):2]-;!@[$(env_k):3]~[*:4]``: the end atoms are wildcards
(every torsion around the bond gets the bespoke parameter), and each central atom carries a
recursive SMARTS describing its environment out to ``radius`` bonds (element, connectivity,
hydrogen count, formal charge, aromaticity, bond orders). The radius grows until the
pattern's matches are exactly the bond's symmetry class. Appended after the starting force
field's torsions, the pattern wins by SMIRNOFF's last-match rule.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from ffparam.assign.smirnoff_matching import find_matches, matching_molecule
from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import InputError

BOND_SYMBOLS = {
    Chem.BondType.SINGLE: "-",
    Chem.BondType.DOUBLE: "=",
    Chem.BondType.TRIPLE: "#",
    Chem.BondType.AROMATIC: ":",
}


def atom_primitive(atom: Chem.Atom) -> str:
    """SMARTS primitive: element, connectivity X, total H, formal charge, aromaticity."""
    charge = atom.GetFormalCharge()
    aromatic = "a" if atom.GetIsAromatic() else "A"
    return (f"#{atom.GetAtomicNum()}X{atom.GetTotalDegree()}H{atom.GetTotalNumHs(True)}"
            f"{charge:+d};{aromatic}")


def environment_smarts(mol: Chem.Mol, root: int, radius: int) -> str:
    """SMARTS of the atoms within ``radius`` bonds of ``root``, written starting at it."""
    env_bonds = Chem.FindAtomEnvironmentOfRadiusN(mol, radius, root) if radius > 0 else []
    atoms = {root}
    for b in env_bonds:
        bond = mol.GetBondWithIdx(b)
        atoms.update((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
    symbols = [f"[{atom_primitive(a)}]" for a in mol.GetAtoms()]
    bond_symbols = [BOND_SYMBOLS.get(b.GetBondType(), "~") for b in mol.GetBonds()]
    return Chem.MolFragmentToSmiles(
        mol, atomsToUse=sorted(atoms), bondsToUse=list(env_bonds) or None,
        atomSymbols=symbols, bondSymbols=bond_symbols, rootedAtAtom=root,
        canonical=False, allBondsExplicit=True, allHsExplicit=False, isomericSmiles=False,
    )


def torsion_smirks(mol: Chem.Mol, bond: tuple[int, int], radius: int) -> str:
    """The wildcard-ended torsion SMIRKS for ``bond`` at environment ``radius``."""
    j, k = bond
    env_j = environment_smarts(mol, j, radius)
    env_k = environment_smarts(mol, k, radius)
    central = mol.GetBondBetweenAtoms(j, k)
    if central is None:
        raise InputError(f"atoms {j} and {k} are not bonded")
    symbol = BOND_SYMBOLS.get(central.GetBondType(), "~")
    ring = "@" if central.IsInRing() else "!@"
    return f"[*:1]~[$({env_j}):2]{symbol};{ring}[$({env_k}):3]~[*:4]"


def equivalent_bonds(topology: Topology, bond: tuple[int, int]) -> set[tuple[int, int]]:
    """Bonds whose two atoms' symmetry classes equal those of ``bond`` (either way)."""
    cls = topology.symmetry_classes
    want = tuple(sorted((int(cls[bond[0]]), int(cls[bond[1]]))))
    return {tuple(sorted(b)) for b in topology.bonds.tolist()
            if tuple(sorted((int(cls[b[0]]), int(cls[b[1]])))) == want}


def bespoke_torsion_smirks(molecule: Molecule, bond: tuple[int, int],
                           max_radius: int = 8) -> str:
    """A SMIRKS whose matches in ``molecule`` are exactly the torsions around ``bond`` and
    around its symmetry-equivalent bonds.

    Raises InputError when no radius up to ``max_radius`` separates the bond from a
    chemically different one (does not happen for real molecules: the whole-molecule
    environment is unique up to symmetry).
    """
    topology = Topology(molecule)
    mol = matching_molecule(molecule.rdmol)
    want = equivalent_bonds(topology, bond)
    for radius in range(1, max_radius + 1):
        smirks = torsion_smirks(mol, tuple(bond), radius)
        matches = find_matches(mol, smirks)
        central = {tuple(sorted(m)) for m in matches[:, 1:3].tolist()}
        if central == want:
            return smirks
    raise InputError(f"no bespoke SMIRKS up to radius {max_radius} isolates bond {bond}")


def matched_central_bonds(molecule: Molecule, smirks: str) -> set[tuple[int, int]]:
    """Central bonds (sorted pairs) of the torsions that ``smirks`` matches in ``molecule``."""
    matches = find_matches(matching_molecule(molecule.rdmol), smirks)
    return {tuple(sorted(m)) for m in np.asarray(matches)[:, 1:3].tolist()}
