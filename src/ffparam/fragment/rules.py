"""Which atoms a fragment must keep, and where its caps go.

Rules (after Stern et al., J. Chem. Theory Comput. 2022, the WBO fragmenter BespokeFit
uses), all on heavy atoms; a kept heavy atom always keeps its hydrogens:

* ring systems (rings sharing an atom: fused, bridged, spiro) are kept whole, so no ring
  bond is ever cut;
* atoms joined by a double, triple or aromatic bond stay together (C=O, S=O, P=O, C=C,
  C#N), and a charged atom keeps its bonded partners of opposite charge (N+-O-), so a
  fragment carries only charges its parent's local groups carry;
* functional groups in :data:`FUNCTIONAL_GROUPS` stay whole (amides, esters and acids,
  sulfonamides and sulfonates, phosphates, amidines, nitro);
* ortho substituents of a ring bonded to the central bond or to a 1-4 atom are kept (their
  first atom, then the rules above).

Caps: a cut bond a-b (a kept, b dropped) is capped along the a->b direction. A carbon ``a``
outside the functional groups gets a hydrogen at the standard C-H length; a heteroatom or a
functional-group atom gets a methyl carbon at the a-C length with three hydrogens
(tetrahedral, staggered away from the fragment), so an ether stays an ether, an amine keeps
its substitution degree and an amide keeps an alkyl on its carbonyl carbon. Where the
dropped atom is itself an sp3 carbon outside rings and groups, it is kept instead of a
synthetic methyl (real geometry; its own cuts get hydrogens).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology

FUNCTIONAL_GROUPS: dict[str, str] = {
    "amide": "[#6X3](=[#8X1,#16X1])[#7]",
    "ester_acid": "[#6X3](=[#8X1])[#8X2,#8X1-]",
    "amidine": "[#6X3](=[#7])[#7]",
    "sulfonyl_heteroatom": "[#16X4](=[#8X1])(=[#8X1])[#7,#8]",
    "sulfinyl_heteroatom": "[#16X3](=[#8X1])[#7,#8]",
    "phosphoryl_heteroatom": "[#15X4](=[#8X1,#16X1])[#7,#8,#16]",
    "nitro": "[#7+](=[#8X1])[#8X1-]",
}
"""Functional groups kept whole (SMARTS; every matched atom is kept together)."""

X_H_LENGTH: dict[int, float] = {6: 1.09, 7: 1.01, 8: 0.96, 16: 1.34, 15: 1.42, 14: 1.48, 5: 1.19,
                                34: 1.46}
"""Standard X-H bond lengths, Angstrom (typical equilibrium values: C-H 1.09, N-H 1.01,
O-H 0.96, S-H 1.34 ...); other elements use the sum of covalent radii."""

C_H_LENGTH = X_H_LENGTH[6]
TETRAHEDRAL_ANGLE = np.arccos(-1.0 / 3.0)
"""109.47 degrees in radians: the X-C-H angle of a methyl cap."""


@dataclass
class ParentAnalysis:
    """Everything about the parent that fragmenting any of its bonds needs.

    Attributes:
        molecule: the parent.
        heavy: sorted heavy-atom indices.
        ring_system: atom -> ring-system id (-1 outside rings), (n_atoms,) int64.
        ring_systems: id -> atom set.
        keep_with: heavy atom -> heavy atoms that must come with it (multiple bonds,
            charge partners, functional groups), transitively closed by :meth:`close`.
        group_atoms: atoms that belong to a functional group (get methyl caps).
        symmetry: symmetry classes (n_atoms,).
        distance: topological distance matrix (n_atoms, n_atoms), bonds.
    """

    molecule: Molecule
    heavy: list[int]
    ring_system: np.ndarray
    ring_systems: dict[int, set[int]]
    keep_with: dict[int, set[int]]
    group_atoms: set[int]
    symmetry: np.ndarray
    distance: np.ndarray

    @classmethod
    def of(cls, molecule: Molecule) -> ParentAnalysis:
        mol = molecule.rdmol
        n = mol.GetNumAtoms()
        heavy = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1]
        ring_system, ring_systems = _ring_systems(mol)
        keep_with: dict[int, set[int]] = {i: set() for i in heavy}
        for bond in mol.GetBonds():
            a, b = bond.GetBeginAtom(), bond.GetEndAtom()
            if a.GetAtomicNum() == 1 or b.GetAtomicNum() == 1:
                continue
            multiple = bond.GetBondType() != Chem.BondType.SINGLE or bond.GetIsAromatic()
            ionic = a.GetFormalCharge() * b.GetFormalCharge() < 0
            if multiple or ionic:
                keep_with[a.GetIdx()].add(b.GetIdx())
                keep_with[b.GetIdx()].add(a.GetIdx())
        group_atoms: set[int] = set()
        for smarts in FUNCTIONAL_GROUPS.values():
            for match in mol.GetSubstructMatches(Chem.MolFromSmarts(smarts), uniquify=True):
                group_atoms.update(match)
                for i in match:
                    keep_with[i].update(j for j in match if j != i)
        distance = Chem.GetDistanceMatrix(mol).astype(np.int64)
        symmetry = Topology(molecule).symmetry_classes
        return cls(molecule, heavy, ring_system, ring_systems, keep_with, group_atoms,
                   symmetry, distance.reshape(n, n))

    def close(self, atoms: set[int]) -> set[int]:
        """Heavy atoms ``atoms`` plus everything the rules say must come with them."""
        out = set(atoms)
        queue = list(out)
        while queue:
            i = queue.pop()
            new = set(self.keep_with.get(i, ()))
            if self.ring_system[i] >= 0:
                new |= self.ring_systems[int(self.ring_system[i])]
            for j in new - out:
                out.add(j)
                queue.append(j)
        return out

    def complete(self, atoms: set[int]) -> set[int]:
        """:meth:`close`, then keep the real atom instead of a methyl cap where one fits:
        a dropped sp3 carbon outside rings and groups bonded to an atom that would get a
        methyl cap (its own cuts then get hydrogens; an O-CH3 stays the parent's)."""
        out = self.close(atoms)
        mol = self.molecule.rdmol
        for a, b in self.cut_bonds(out):
            atom = mol.GetAtomWithIdx(b)
            if (self.methyl_cap(a) and atom.GetAtomicNum() == 6 and not atom.IsInRing()
                    and atom.GetHybridization() == Chem.HybridizationType.SP3
                    and not self.keep_with.get(b) and b not in self.group_atoms):
                out.add(b)
        return out

    def shell(self, bond: tuple[int, int], radius: int) -> set[int]:
        """Heavy atoms within ``radius`` bonds of either atom of ``bond``."""
        d = self.distance[list(bond)].min(axis=0)
        return {i for i in self.heavy if d[i] <= radius}

    def ortho_substituents(self, anchors: set[int]) -> set[int]:
        """First atoms of substituents ortho to a ring attachment: for every non-ring bond
        x-r with x in ``anchors`` and r a ring atom, the heavy non-ring neighbours s of r's
        ring neighbours o (excluding x itself)."""
        mol = self.molecule.rdmol
        out = set()
        for x in anchors:
            for r in mol.GetAtomWithIdx(x).GetNeighbors():
                if not r.IsInRing() or mol.GetBondBetweenAtoms(x, r.GetIdx()).IsInRing():
                    continue
                for o in r.GetNeighbors():
                    if not mol.GetBondBetweenAtoms(r.GetIdx(), o.GetIdx()).IsInRing():
                        continue
                    for s in o.GetNeighbors():
                        bond = mol.GetBondBetweenAtoms(o.GetIdx(), s.GetIdx())
                        if s.GetAtomicNum() > 1 and not bond.IsInRing() and s.GetIdx() != x:
                            out.add(s.GetIdx())
        return out

    def cut_bonds(self, atoms: set[int]) -> list[tuple[int, int]]:
        """Bonds (a, b), a kept heavy atom, b a dropped heavy atom, sorted."""
        mol = self.molecule.rdmol
        return sorted((a, n.GetIdx()) for a in atoms for n in mol.GetAtomWithIdx(a).GetNeighbors()
                      if n.GetAtomicNum() > 1 and n.GetIdx() not in atoms)

    def methyl_cap(self, atom: int) -> bool:
        """Whether a cut at ``atom`` gets a methyl (heteroatoms, functional-group atoms)."""
        return self.molecule.rdmol.GetAtomWithIdx(atom).GetAtomicNum() != 6 \
            or atom in self.group_atoms


def _ring_systems(mol: Chem.Mol) -> tuple[np.ndarray, dict[int, set[int]]]:
    """Ring systems: rings merged while they share an atom."""
    systems: list[set[int]] = []
    for ring in mol.GetRingInfo().AtomRings():
        merged = set(ring)
        rest = []
        for system in systems:
            if system & merged:
                merged |= system
            else:
                rest.append(system)
        systems = [*rest, merged]
    index = np.full(mol.GetNumAtoms(), -1, dtype=np.int64)
    for k, system in enumerate(systems):
        index[sorted(system)] = k
    return index, dict(enumerate(systems))


def bond_length(z_a: int, z_b: int) -> float:
    """Standard single-bond length a-b in Angstrom: tabulated X-H lengths, else the sum of
    covalent radii (RDKit's table)."""
    if 1 in (z_a, z_b):
        other = z_b if z_a == 1 else z_a
        if other in X_H_LENGTH:
            return X_H_LENGTH[other]
    table = Chem.GetPeriodicTable()
    return float(table.GetRcovalent(z_a) + table.GetRcovalent(z_b))


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` (..., 3) scaled to unit length along the last axis."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def methyl_hydrogens(carbon: np.ndarray, axis: np.ndarray, others: np.ndarray,
                     n_trials: int = 24) -> np.ndarray:
    """Three methyl hydrogens (3, 3) Angstrom on ``carbon``, at C-H 1.09 Angstrom and
    109.47 degrees from ``-axis`` (``axis`` the unit vector from the capped atom to the
    carbon), turned about the axis to the staggering (of ``n_trials``) that keeps them
    farthest from ``others`` (m, 3)."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    v = unit(np.cross(axis, helper))
    w = np.cross(axis, v)
    tilt = np.pi - TETRAHEDRAL_ANGLE
    phases = np.linspace(0.0, 2 * np.pi / 3, n_trials, endpoint=False)[:, None] \
        + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])[None]  # (trials, 3)
    dirs = (np.cos(tilt) * axis[None, None]
            + np.sin(tilt) * (np.cos(phases)[..., None] * v + np.sin(phases)[..., None] * w))
    trials = carbon + C_H_LENGTH * dirs  # (trials, 3 H, 3)
    if len(others) == 0:
        return trials[0]
    gaps = np.linalg.norm(trials[:, :, None, :] - others[None, None], axis=-1).min(axis=(1, 2))
    return trials[int(np.argmax(gaps))]
