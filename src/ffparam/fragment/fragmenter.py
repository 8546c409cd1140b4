"""Fragments around rotatable bonds, so torsion drives of large molecules run on small ones.

:func:`fragment_for_bond` follows the Wiberg-bond-order fragmenter of Stern et al.
("Capturing non-local through-bond effects in molecular mechanics force fields: I.
Fragmenting molecules for quantum chemical torsion scans", J. Chem. Theory Comput. 2022),
which OpenFF BespokeFit uses, with GFN2-xTB bond orders (tblite) instead of AM1-ELF10:

1. start from the heavy atoms within two bonds of the central bond (the torsion quartets
   and their neighbours), add ortho substituents of rings attached to the central atoms or
   to the 1-4 atoms, and close under the keep-together rules of
   :mod:`ffparam.fragment.rules` (whole ring systems, multiple bonds, functional
   groups, charge partners); every kept heavy atom keeps its hydrogens;
2. cap each cut bond (hydrogen on carbon, methyl on heteroatoms and functional-group atoms,
   placed along the cut bond at standard lengths; a dropped sp3 carbon that would become a
   methyl cap is kept as itself instead); coordinates of kept atoms are the parent
   conformer's;
3. compare the Wiberg bond order of the central bond in fragment and parent (same parent
   coordinates); while they differ by more than ``threshold`` (0.03, as Stern et al. and
   BespokeFit), add the dropped neighbour nearest to the central bond (ties: largest parent
   WBO of the cut bond; symmetry-equivalent cuts together) and repeat. In the worst case the
   fragment grows into the whole parent.

Bond orders are reference calculations (:mod:`ffparam.fragment.bond_orders`): with a
``store`` they are kept there, so fragmenting the same molecule again computes nothing.
:func:`needs_fragmentation` is the size rule; :mod:`ffparam.fragment.mapping` maps torsion
groups and fitted parameters from a fragment back to the parent.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from rdkit import Chem

from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import CalculationError, InputError
from ffparam.fragment.bond_orders import wiberg_bond_orders
from ffparam.fragment.rules import (
    ParentAnalysis,
    bond_length,
    methyl_hydrogens,
    unit,
)

if TYPE_CHECKING:
    from ffparam.reference.store import Store

DEFAULT_WBO_THRESHOLD = 0.03
"""Largest accepted |WBO(fragment) - WBO(parent)| of the central bond (Stern et al.)."""

DEFAULT_MAX_HEAVY_ATOMS = 20
"""Parents with more heavy atoms than this are fragmented (see :func:`needs_fragmentation`)."""

SHELL_RADIUS = 2
"""Heavy atoms within this many bonds of either central atom start every fragment."""


@dataclass
class Fragment:
    """A fragment of a parent molecule built around one of its bonds.

    Attributes:
        molecule: the fragment, explicit hydrogens, one conformer (1, n_atoms, 3) Angstrom:
            parent coordinates for kept atoms, constructed positions for caps.
        atom_map: fragment atom index -> parent atom index, None for cap atoms.
        parent_bond: the bond in parent indices, as given.
        bond: the same bond in fragment indices (same orientation).
        parent_dihedral: the parent's scan dihedral (``Topology.dihedral_for_bond``).
        dihedral: that dihedral in fragment indices (all four atoms are kept atoms).
        parent_wbo: Wiberg bond order of the central bond in the parent.
        wbo: the same in the fragment (NaN if the last fragment's calculation failed).
        threshold: accepted |wbo - parent_wbo|.
        caps: (fragment index of the capped atom, ``"H"`` or ``"CH3"``) per cut bond.
        history: (heavy atoms, central-bond WBO) of every fragment tried, in order.
        method: the method that gave the bond orders.
    """

    molecule: Molecule
    atom_map: tuple[int | None, ...]
    parent_bond: tuple[int, int]
    bond: tuple[int, int]
    parent_dihedral: tuple[int, int, int, int]
    dihedral: tuple[int, int, int, int]
    parent_wbo: float
    wbo: float
    threshold: float
    caps: tuple[tuple[int, str], ...] = ()
    history: tuple[tuple[int, float], ...] = ()
    method: str = "gfn2-xtb"

    @property
    def wbo_difference(self) -> float:
        """|WBO(fragment) - WBO(parent)| of the central bond (dimensionless)."""
        return abs(self.wbo - self.parent_wbo)

    @property
    def converged(self) -> bool:
        """Whether the central bond's WBO is within ``threshold`` of the parent's."""
        return bool(self.wbo_difference <= self.threshold)

    @property
    def n_heavy_atoms(self) -> int:
        return int((self.molecule.atomic_numbers > 1).sum())

    @property
    def is_whole_molecule(self) -> bool:
        """True when the fragment grew into the parent itself (nothing cut; ``molecule`` is
        then the parent with the one conformer used, same atom order)."""
        return not self.caps

    @property
    def parent_to_fragment(self) -> dict[int, int]:
        """Parent atom index -> fragment atom index, for kept atoms."""
        return {p: f for f, p in enumerate(self.atom_map) if p is not None}

    def summary(self) -> dict[str, Any]:
        """Plain numbers for reports and metrics.json."""
        return {
            "parent_bond": list(self.parent_bond), "bond": list(self.bond),
            "smiles": self.molecule.to_smiles(), "n_atoms": self.molecule.n_atoms,
            "n_heavy_atoms": self.n_heavy_atoms, "parent_wbo": self.parent_wbo,
            "wbo": self.wbo, "wbo_difference": self.wbo_difference,
            "threshold": self.threshold, "converged": self.converged,
            "whole_molecule": self.is_whole_molecule, "method": self.method,
            "caps": {"H": sum(1 for _, c in self.caps if c == "H"),
                     "CH3": sum(1 for _, c in self.caps if c == "CH3")},
            "growth": [{"n_heavy_atoms": n, "wbo": w} for n, w in self.history],
        }


def needs_fragmentation(molecule: Molecule,
                        max_heavy_atoms: int = DEFAULT_MAX_HEAVY_ATOMS) -> bool:
    """Whether torsion drives of ``molecule`` should run on fragments: more than
    ``max_heavy_atoms`` heavy atoms.

    The default of 20 is about the size of the fragments the rules above build for
    drug-like bonds (two rings, or a ring and a functional group, with their neighbours:
    median 15, range 7-23 heavy atoms over the 48 rotatable bonds of the seven drugs of
    ``benchmarks/bench_fragment.py``), so a parent at or under it would give
    fragments barely smaller than itself, and scanning it directly keeps the whole
    environment at little extra cost.
    """
    return int((molecule.atomic_numbers > 1).sum()) > max_heavy_atoms


def fragment_for_bond(molecule: Molecule, bond: tuple[int, int], wbo: np.ndarray | None = None,
                      threshold: float = DEFAULT_WBO_THRESHOLD, method: str = "gfn2-xtb",
                      conformer: int = 0, store: Store | None = None,
                      executor=None) -> Fragment:
    """The smallest fragment (by the rules above) around ``bond`` whose central-bond WBO is
    within ``threshold`` of the parent's.

    Args:
        molecule: the parent; its conformer ``conformer`` (Angstrom) gives the geometry for
            the bond orders and the fragment's coordinates (without conformers one ETKDG +
            MMFF94 conformer is generated, seeded).
        bond: (j, k) parent atom indices of a non-ring bond.
        wbo: the parent's Wiberg bond orders (n_atoms, n_atoms) on that conformer, if
            already computed (:func:`~ffparam.fragment.bond_orders.wiberg_bond_orders`).
        threshold: accepted |WBO(fragment) - WBO(parent)| (dimensionless).
        method: xtb method for the bond orders.
        conformer: which parent conformer to use.
        store: the Store that keeps (and already holds) the bond-order calculations; an
            in-memory one for this call when None.
        executor: where the calculations run (in process when None).
    """
    if store is None:
        from ffparam.reference.store import Store

        with Store(":memory:") as own:
            return fragment_for_bond(molecule, bond, wbo, threshold, method, conformer, own,
                                     executor)
    molecule = _with_geometry(molecule)
    j, k = (int(a) for a in bond)
    rd_bond = molecule.rdmol.GetBondBetweenAtoms(j, k)
    if rd_bond is None:
        raise InputError(f"atoms {j} and {k} of {molecule.name} are not bonded")
    if rd_bond.IsInRing():
        raise InputError(f"bond {j}-{k} of {molecule.name} is in a ring; only non-ring bonds "
                         "rotate")
    if wbo is None:
        wbo = wiberg_bond_orders(molecule, conformer, method, store, executor)
    wbo = np.asarray(wbo, dtype=np.float64)
    if wbo.shape != (molecule.n_atoms, molecule.n_atoms):
        raise InputError(f"wbo must have shape ({molecule.n_atoms}, {molecule.n_atoms}), "
                         f"got {wbo.shape}")
    info = ParentAnalysis.of(molecule)
    parent_wbo = float(wbo[j, k])
    coords = molecule.conformers[conformer]
    atoms = info.close(info.shell((j, k), SHELL_RADIUS))
    atoms = info.complete(atoms | info.ortho_substituents(info.shell((j, k), 1)))
    history: list[tuple[int, float]] = []
    while True:
        built = build_fragment(info, atoms, coords, f"{molecule.name}_frag_{j}_{k}")
        fragment_molecule, atom_map, caps = built
        if not caps:  # grew into the parent: the parent itself, its own WBO
            fragment_molecule = molecule.with_conformers(coords[None])
            value = parent_wbo
        else:
            fj, fk = atom_map.index(j), atom_map.index(k)
            try:
                value = float(wiberg_bond_orders(fragment_molecule, 0, method, store,
                                                 executor)[fj, fk])
            except CalculationError:
                value = float("nan")
        history.append((len(atoms), value))
        if not caps or abs(value - parent_wbo) <= threshold:
            break
        atoms = info.complete(atoms | _next_substituents(info, atoms, (j, k), wbo))
    to_fragment = {p: f for f, p in enumerate(atom_map) if p is not None}
    parent_dihedral = tuple(int(a) for a in Topology(molecule).dihedral_for_bond((j, k)))
    return Fragment(
        molecule=fragment_molecule, atom_map=tuple(atom_map), parent_bond=(j, k),
        bond=(to_fragment[j], to_fragment[k]), parent_dihedral=parent_dihedral,
        dihedral=tuple(to_fragment[a] for a in parent_dihedral), parent_wbo=parent_wbo,
        wbo=value, threshold=threshold, caps=tuple(caps), history=tuple(history),
        method=method,
    )


def fragment_molecule(molecule: Molecule, bonds: list[tuple[int, int]] | None = None,
                      threshold: float = DEFAULT_WBO_THRESHOLD, method: str = "gfn2-xtb",
                      conformer: int = 0, store: Store | None = None,
                      executor=None) -> list[Fragment]:
    """Fragments for ``bonds`` (default: the parent's rotatable bonds), with the parent's
    bond orders computed once (every calculation through ``store``, see
    :func:`fragment_for_bond`)."""
    from ffparam.reference.store import Store

    molecule = _with_geometry(molecule)
    if bonds is None:
        bonds = [tuple(b) for b in Topology(molecule).rotatable_bonds.tolist()]
    with Store(":memory:") if store is None else nullcontext(store) as used:
        wbo = wiberg_bond_orders(molecule, conformer, method, used, executor)
        return [fragment_for_bond(molecule, b, wbo, threshold, method, conformer, used,
                                  executor) for b in bonds]


def build_fragment(info: ParentAnalysis, atoms: set[int], coords: np.ndarray, name: str
                   ) -> tuple[Molecule, list[int | None], list[tuple[int, str]]]:
    """The capped fragment holding heavy atoms ``atoms`` of the parent (and their hydrogens).

    Args:
        info: the parent's analysis.
        atoms: parent heavy-atom indices to keep.
        coords: parent coordinates (n_atoms, 3) Angstrom.
        name: the fragment's name.

    Returns:
        (fragment Molecule with one conformer, fragment -> parent index map with None for
        caps, [(fragment index of the capped atom, "H" | "CH3")]). Kept atoms come first in
        parent order, caps after them.
    """
    parent = Chem.Mol(info.molecule.rdmol)
    Chem.Kekulize(parent, clearAromaticFlags=True)
    hydrogens = {n.GetIdx() for a in atoms for n in parent.GetAtomWithIdx(a).GetNeighbors()
                 if n.GetAtomicNum() == 1}
    keep = sorted(set(atoms) | hydrogens)
    index = {p: f for f, p in enumerate(keep)}
    rw = Chem.RWMol()
    for p in keep:
        source = parent.GetAtomWithIdx(p)
        atom = Chem.Atom(source.GetAtomicNum())
        atom.SetFormalCharge(source.GetFormalCharge())
        atom.SetIsotope(source.GetIsotope())
        atom.SetNumRadicalElectrons(source.GetNumRadicalElectrons())
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for b in parent.GetBonds():
        a, c = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        if a in index and c in index:
            rw.AddBond(index[a], index[c], b.GetBondType())
    positions = [coords[p] for p in keep]
    atom_map: list[int | None] = list(keep)
    caps: list[tuple[int, str]] = []
    for a, b in info.cut_bonds(atoms):
        z_a = parent.GetAtomWithIdx(a).GetAtomicNum()
        axis = unit(coords[b] - coords[a])
        if info.methyl_cap(a):
            carbon = coords[a] + bond_length(z_a, 6) * axis
            c = _add_atom(rw, 6, index[a], positions, atom_map, carbon)
            for h in methyl_hydrogens(carbon, axis, np.array(positions)):
                _add_atom(rw, 1, c, positions, atom_map, h)
            caps.append((index[a], "CH3"))
        else:
            _add_atom(rw, 1, index[a], positions, atom_map, coords[a] + bond_length(z_a, 1) * axis)
            caps.append((index[a], "H"))
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises several sanitization exception types
        raise CalculationError(f"fragment {name} is not a valid molecule: {exc}") from None
    fragment = Molecule(mol, np.array(positions)[None], name)
    Chem.AssignStereochemistryFrom3D(fragment.rdmol)
    return fragment, atom_map, caps


def _add_atom(rw: Chem.RWMol, z: int, bonded_to: int, positions: list, atom_map: list,
              xyz: np.ndarray) -> int:
    atom = Chem.Atom(z)
    atom.SetNoImplicit(True)
    idx = rw.AddAtom(atom)
    rw.AddBond(bonded_to, idx, Chem.BondType.SINGLE)
    positions.append(np.asarray(xyz, dtype=np.float64))
    atom_map.append(None)
    return idx


def _next_substituents(info: ParentAnalysis, atoms: set[int], bond: tuple[int, int],
                       wbo: np.ndarray) -> set[int]:
    """Dropped heavy neighbours to add next: the one nearest the central bond (in bonds),
    ties broken by the largest parent WBO of the cut bond, with every cut of the same
    symmetry classes at the same distance (keeps symmetric fragments symmetric)."""
    cuts = info.cut_bonds(atoms)
    distance = info.distance[list(bond)].min(axis=0)
    a, b = min(cuts, key=lambda ab: (distance[ab[1]], -wbo[ab[0], ab[1]], ab))
    sym = info.symmetry
    pair = (sym[a], sym[b])
    return {y for x, y in cuts if (sym[x], sym[y]) == pair and distance[y] == distance[b]}


def _with_geometry(molecule: Molecule) -> Molecule:
    if molecule.n_conformers:
        return molecule
    return molecule.generate_conformers(1, seed=0xF00D)
