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
    mol = matching_molecule(molecule.rdmol)
    radius = isolating_radius(molecule, bond, max_radius)
    return torsion_smirks(mol, tuple(bond), radius)


def isolating_radius(molecule: Molecule, bond: tuple[int, int], max_radius: int = 8) -> int:
    """Smallest environment radius at which the wildcard-ended torsion SMIRKS of ``bond``
    matches only the bond's symmetry class."""
    topology = Topology(molecule)
    mol = matching_molecule(molecule.rdmol)
    want = equivalent_bonds(topology, bond)
    for radius in range(1, max_radius + 1):
        matches = find_matches(mol, torsion_smirks(mol, tuple(bond), radius))
        if {tuple(sorted(m)) for m in matches[:, 1:3].tolist()} == want:
            return radius
    raise InputError(f"no bespoke SMIRKS up to radius {max_radius} isolates bond {bond}")


def matched_central_bonds(molecule: Molecule, smirks: str) -> set[tuple[int, int]]:
    """Central bonds (sorted pairs) of the torsions that ``smirks`` matches in ``molecule``."""
    matches = find_matches(matching_molecule(molecule.rdmol), smirks)
    return {tuple(sorted(m)) for m in np.asarray(matches)[:, 1:3].tolist()}


def _canonical_torsions(rows: np.ndarray) -> set[tuple[int, ...]]:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    return {tuple(r) if r[0] < r[3] else tuple(r[::-1]) for r in rows.tolist()}


def torsion_groups(topology: Topology, bond: tuple[int, int]) -> list[set[tuple[int, ...]]]:
    """Torsions around ``bond`` and its symmetry-equivalent bonds, grouped by the symmetry
    classes of their four atoms (a group shares one bespoke parameter)."""
    cls = topology.symmetry_classes
    groups: dict[tuple[int, ...], set[tuple[int, ...]]] = {}
    for b in equivalent_bonds(topology, bond):
        for row in _canonical_torsions(topology.torsions_around(b)):
            key = tuple(int(cls[a]) for a in row)
            key = min(key, key[::-1])
            groups.setdefault(key, set()).add(row)
    return [groups[k] for k in sorted(groups)]


def bespoke_torsion_type_smirks(molecule: Molecule, bond: tuple[int, int],
                                max_radius: int = 8) -> list[tuple[str, set[tuple[int, ...]]]]:
    """One SMIRKS per torsion group around ``bond`` (see :func:`torsion_groups`), each
    matching exactly its group's torsions:
    ``[$(env_i):1]~[$(env_j):2]-;!@[$(env_k):3]~[$(env_l):4]`` with the central
    environments at the radius that isolates the bond and the end environments grown until
    the group is isolated. Returns (smirks, torsions) pairs, torsions as (i, j, k, l) with
    i < l."""
    topology = Topology(molecule)
    mol = matching_molecule(molecule.rdmol)
    radius = isolating_radius(molecule, bond, max_radius)
    central = mol.GetBondBetweenAtoms(*map(int, bond))
    symbol = BOND_SYMBOLS.get(central.GetBondType(), "~") + (
        ";@" if central.IsInRing() else ";!@")
    out = []
    for group in torsion_groups(topology, bond):
        i, j, k, last = sorted(group)[0]
        env_j = environment_smarts(mol, j, radius)
        env_k = environment_smarts(mol, k, radius)
        for end_radius in range(0, max_radius + 1):
            smirks = (f"[$({environment_smarts(mol, i, end_radius)}):1]~[$({env_j}):2]{symbol}"
                      f"[$({env_k}):3]~[$({environment_smarts(mol, last, end_radius)}):4]")
            if _canonical_torsions(find_matches(mol, smirks)) == group:
                out.append((smirks, group))
                break
        else:
            raise InputError(f"no SMIRKS isolates torsion group {sorted(group)[0]} of bond "
                             f"{tuple(bond)}")
    return out


def _canonical_rows(rows) -> set[tuple[int, ...]]:
    rows = np.asarray(rows, dtype=np.int64)
    return {tuple(r) if r[0] < r[-1] else tuple(r[::-1]) for r in rows.tolist()}


def bespoke_valence_smirks(molecule: Molecule, atoms: tuple[int, ...],
                           max_radius: int = 8) -> tuple[str, set[tuple[int, ...]]]:
    """A SMIRKS for the bond (2 atoms) or angle (3 atoms) ``atoms`` that matches exactly the
    terms whose atoms share its symmetry classes: ``[$(env_a):1]-[$(env_b):2]`` or
    ``[$(env_a):1]~[$(env_b):2]~[$(env_c):3]``, environments grown until isolated.
    Returns (smirks, matched term rows in canonical direction)."""
    topology = Topology(molecule)
    mol = matching_molecule(molecule.rdmol)
    cls = topology.symmetry_classes
    table = topology.bonds if len(atoms) == 2 else topology.angles
    want_key = tuple(int(cls[a]) for a in atoms)
    want = {row for row in _canonical_rows(table)
            if tuple(int(cls[a]) for a in row) in (want_key, want_key[::-1])}
    for radius in range(0, max_radius + 1):
        parts = []
        for n, atom in enumerate(atoms):
            parts.append(f"[$({environment_smarts(mol, atom, radius)}):{n + 1}]")
            if n + 1 < len(atoms):
                bond = mol.GetBondBetweenAtoms(int(atom), int(atoms[n + 1]))
                parts.append(BOND_SYMBOLS.get(bond.GetBondType(), "~"))
        smirks = "".join(parts)
        if _canonical_rows(find_matches(mol, smirks)) == want:
            return smirks, want
    raise InputError(f"no SMIRKS up to radius {max_radius} isolates term {tuple(atoms)}")
