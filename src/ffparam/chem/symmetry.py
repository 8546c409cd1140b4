"""Graph symmetry of a molecule given only by its elements and one geometry.

Bonds are perceived from the geometry (RDKit ``DetermineConnectivity``, distance based);
the automorphisms of the resulting graph (elements and connectivity only, no bond orders,
no chirality) are the atom permutations a symmetric model must be invariant under.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds


def connectivity_from_geometry(numbers: np.ndarray, positions: np.ndarray) -> Chem.Mol:
    """An RDKit molecule of the atoms ``numbers`` at ``positions`` (Angstrom) with single
    bonds perceived from the interatomic distances (raises what RDKit raises on failure)."""
    table = Chem.GetPeriodicTable()
    lines = [str(len(numbers)), ""] + [
        f"{table.GetElementSymbol(int(z))} {x:.6f} {y:.6f} {w:.6f}"
        for z, (x, y, w) in zip(numbers, positions)
    ]
    mol = Chem.MolFromXYZBlock("\n".join(lines))
    rdDetermineBonds.DetermineConnectivity(mol)
    return mol


def molecule_automorphisms(
    numbers: np.ndarray, positions: np.ndarray, limit: int = 64
) -> np.ndarray:
    """(P, n) atom permutations that map the bond graph onto itself (identity first).

    Bonds are perceived from the geometry (:func:`connectivity_from_geometry`, Angstrom);
    matching uses elements and connectivity only. The permutations form a group, which
    keeps a kernel averaged over them symmetric; a group larger than ``limit`` (or a failed
    perception) gives the identity alone rather than a subset that is not a group.
    """
    n = len(numbers)
    identity = np.arange(n)[None]
    try:
        mol = connectivity_from_geometry(numbers, positions)
        matches = mol.GetSubstructMatches(
            mol, uniquify=False, useChirality=False, maxMatches=limit + 1
        )
    except Exception:  # perception failure: no symmetrization
        return identity
    if len(matches) > limit:
        return identity
    perms = [np.asarray(m) for m in matches if len(m) == n]
    perms = [p for p in perms if not np.array_equal(p, identity[0])]
    return np.concatenate([identity, np.asarray(perms, dtype=np.int64).reshape(-1, n)])


__all__ = ["connectivity_from_geometry", "molecule_automorphisms"]
