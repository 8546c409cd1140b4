"""Topology: the bonded graph terms of a molecule as index arrays.

All arrays are int64 with rows of atom indices (0-based, the molecule's atom order).
Conventions:

* bonds (n, 2) with i < j; angles (n, 3) i-j-k with j the apex and i < k;
* propers (n, 4) i-j-k-l along bonds, one row per distinct torsion, with i < l;
* impropers (n, 4) as (a, c, b, d): ``c`` the trivalent centre in position 1, as in the
  SMIRNOFF ``[*:1]~[X3:2](~[*:3])~[*:4]`` pattern;
* pairs_14 (n, 2): ends of proper torsions that are not also 1-2 or 1-3 pairs;
* exclusions (n, 2): all 1-2 and 1-3 pairs (nonbonded interactions removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from rdkit import Chem

from ffparam.chem.molecule import Molecule


@dataclass
class Topology:
    """Bonded terms, nonbonded pair lists, rotatable bonds and symmetry of one molecule."""

    molecule: Molecule
    bonds: np.ndarray = field(init=False)
    angles: np.ndarray = field(init=False)
    propers: np.ndarray = field(init=False)
    impropers: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        mol = self.molecule.rdmol
        self.bonds = self.molecule.bonds
        neighbours = [sorted(n.GetIdx() for n in a.GetNeighbors()) for a in mol.GetAtoms()]
        self._neighbours = neighbours
        angles = []
        for j, nbrs in enumerate(neighbours):
            for a in range(len(nbrs)):
                for b in range(a + 1, len(nbrs)):
                    angles.append((nbrs[a], j, nbrs[b]))
        self.angles = np.array(angles, dtype=np.int64).reshape(-1, 3)
        propers = set()
        for j, k in self.bonds:
            for i in neighbours[j]:
                if i == k:
                    continue
                for m in neighbours[k]:
                    if m in (j, i):
                        continue
                    row = (i, j, k, m) if i < m else (m, k, j, i)
                    propers.add(row)
        self.propers = np.array(sorted(propers), dtype=np.int64).reshape(-1, 4)
        impropers = [
            (nbrs[0], c, nbrs[1], nbrs[2]) for c, nbrs in enumerate(neighbours) if len(nbrs) == 3
        ]
        self.impropers = np.array(impropers, dtype=np.int64).reshape(-1, 4)

    @property
    def n_atoms(self) -> int:
        return self.molecule.n_atoms

    def neighbours(self, atom: int) -> list[int]:
        return list(self._neighbours[atom])

    @cached_property
    def exclusions(self) -> np.ndarray:
        """1-2 and 1-3 pairs (n, 2), i < j, sorted."""
        pairs = {tuple(sorted(b)) for b in self.bonds.tolist()}
        pairs |= {tuple(sorted((a[0], a[2]))) for a in self.angles.tolist()}
        return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)

    @cached_property
    def pairs_14(self) -> np.ndarray:
        """1-4 pairs (n, 2), i < j: torsion ends that are not 1-2 or 1-3 (rings)."""
        excluded = set(map(tuple, self.exclusions.tolist()))
        pairs = {tuple(sorted((p[0], p[3]))) for p in self.propers.tolist()}
        pairs = {p for p in pairs if p not in excluded and p[0] != p[1]}
        return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)

    @cached_property
    def nonbonded_pairs(self) -> np.ndarray:
        """All pairs i < j interacting at full strength (not excluded, not 1-4), (n, 2)."""
        n = self.n_atoms
        i, j = np.triu_indices(n, k=1)
        mask = np.ones((n, n), dtype=bool)
        for arr in (self.exclusions, self.pairs_14):
            if len(arr):
                mask[arr[:, 0], arr[:, 1]] = False
        keep = mask[i, j]
        return np.stack([i[keep], j[keep]], axis=1).astype(np.int64)

    @cached_property
    def rotatable_bonds(self) -> np.ndarray:
        """Rotatable bonds (n, 2), i < j: single, not in a ring, both ends bonded to at
        least one other heavy atom, neither end linear (sp, torsion undefined)."""
        return self.find_rotatable_bonds(include_terminal_rotors=False)

    def find_rotatable_bonds(self, include_terminal_rotors: bool = False) -> np.ndarray:
        """Rotatable bonds; with ``include_terminal_rotors`` also bonds to terminal rotors
        such as methyl, hydroxyl or amino groups (an end whose only other neighbours are
        hydrogens), which a torsion scan can still drive."""
        mol = self.molecule.rdmol
        rows = []
        for bond in mol.GetBonds():
            if bond.GetBondType() != Chem.BondType.SINGLE or bond.IsInRing():
                continue
            a, b = bond.GetBeginAtom(), bond.GetEndAtom()
            if a.GetDegree() < 2 or b.GetDegree() < 2 or _is_linear(a) or _is_linear(b):
                continue
            if not include_terminal_rotors and (_heavy_degree(a) < 2 or _heavy_degree(b) < 2):
                continue
            rows.append(sorted((a.GetIdx(), b.GetIdx())))
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    @cached_property
    def symmetry_classes(self) -> np.ndarray:
        """Symmetry-equivalent atom classes (n_atoms,), int64: equal value = equivalent
        by graph symmetry (RDKit canonical ranking without tie breaking)."""
        ranks = Chem.CanonicalRankAtoms(self.molecule.rdmol, breakTies=False)
        _, classes = np.unique(np.array(list(ranks)), return_inverse=True)
        return classes.astype(np.int64)

    def is_symmetric_terminal_rotor(self, bond: tuple[int, int]) -> bool:
        """True if one end of ``bond`` carries only symmetry-equivalent terminal atoms
        (methyl, CF3, NH2, NH3+): rotating it gives an n-fold symmetric profile that a
        torsion scan adds nothing to. A phenyl or t-butyl end is not terminal (its
        substituents have further neighbours), so such bonds are scanned."""
        classes = self.symmetry_classes
        for centre, other in (bond, bond[::-1]):
            subs = [n for n in self._neighbours[centre] if n != other]
            if (len(subs) >= 2 and len({int(classes[s]) for s in subs}) == 1
                    and all(len(self._neighbours[s]) == 1 for s in subs)):
                return True
        return False

    def torsions_around(self, bond: tuple[int, int]) -> np.ndarray:
        """Proper torsions whose central bond is ``bond`` (either direction), (n, 4)."""
        j, k = sorted(bond)
        mid = np.sort(self.propers[:, 1:3], axis=1)
        return self.propers[(mid[:, 0] == j) & (mid[:, 1] == k)]

    def dihedral_for_bond(self, bond: tuple[int, int]) -> tuple[int, int, int, int]:
        """A representative dihedral i-j-k-l for scanning ``bond``: heaviest neighbours."""
        j, k = bond
        nums = self.molecule.atomic_numbers

        def pick(centre: int, other: int) -> int:
            cands = [n for n in self._neighbours[centre] if n != other]
            return max(cands, key=lambda n: (nums[n], -n))

        return (pick(j, k), j, k, pick(k, j))


def _heavy_degree(atom: Chem.Atom) -> int:
    return sum(1 for n in atom.GetNeighbors() if n.GetAtomicNum() > 1)


def _is_linear(atom: Chem.Atom) -> bool:
    return atom.GetHybridization() == Chem.HybridizationType.SP and atom.GetDegree() == 2
