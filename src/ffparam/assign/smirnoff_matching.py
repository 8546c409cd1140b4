"""SMIRKS matching with SMIRNOFF semantics (RDKit substructure search).

* The molecule is matched in its Kekulé form re-aromatized with the MDL model (the
  ``OEAroModel_MDL`` aromaticity that every OpenFF force field names), explicit hydrogens.
* Each pattern's tagged atoms ``:1 .. :n`` give the matched tuple; all matches are
  enumerated (``uniquify=False``), chirality is honoured (``useChirality=True``).
* Matched tuples are put in a canonical order before they are compared: bonds, angles
  and proper torsions are read in either direction (reversed when the first index is
  larger than the last); impropers keep the centre (tag 2) and sort the other three.
* The last pattern in file order that matches a tuple wins.

Compiled patterns are cached per SMIRKS; the bookkeeping (canonical order, lookup of
matches among the topology's terms, last-match resolution) is done on integer arrays.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rdkit import Chem

from ffparam.errors import InputError

MAX_MATCHES = 2**31 - 1


def matching_molecule(rdmol: Chem.Mol) -> Chem.Mol:
    """A copy of ``rdmol`` prepared for SMIRNOFF matching: Kekulé bonds, MDL aromaticity,
    explicit hydrogens kept, stereo kept."""
    mol = Chem.Mol(rdmol)
    mol.RemoveAllConformers()
    Chem.Kekulize(mol, clearAromaticFlags=True)
    Chem.SetAromaticity(mol, Chem.AromaticityModel.AROMATICITY_MDL)
    mol.UpdatePropertyCache(strict=False)
    return mol


@lru_cache(maxsize=8192)
def compile_smirks(smirks: str) -> tuple[Chem.Mol, tuple[int, ...]]:
    """(RDKit query, query atom index of tag 1, 2, ...) for ``smirks`` (cached)."""
    query = Chem.MolFromSmarts(smirks)
    if query is None:
        raise InputError(f"RDKit cannot parse the SMIRKS {smirks!r}")
    tags = {a.GetAtomMapNum(): a.GetIdx() for a in query.GetAtoms() if a.GetAtomMapNum()}
    if sorted(tags) != list(range(1, len(tags) + 1)):
        raise InputError(f"SMIRKS {smirks!r} must tag atoms :1..:n without gaps")
    return query, tuple(tags[k] for k in sorted(tags))


def find_matches(mol: Chem.Mol, smirks: str) -> np.ndarray:
    """All matches of ``smirks`` in ``mol`` as tagged-atom tuples, int64 (n_matches, n_tags)
    (tag order; duplicates removed)."""
    query, order = compile_smirks(smirks)
    hits = mol.GetSubstructMatches(query, uniquify=False, useChirality=True,
                                   maxMatches=MAX_MATCHES)
    if not hits:
        return np.zeros((0, len(order)), dtype=np.int64)
    arr = np.asarray(hits, dtype=np.int64)[:, list(order)]
    return np.unique(arr, axis=0)


def canonical_valence(rows: np.ndarray) -> np.ndarray:
    """Bond/angle/torsion tuples (n, k) read in canonical direction: reversed where the
    first index exceeds the last (OpenFF ``ValenceDict``)."""
    rows = np.asarray(rows, dtype=np.int64)
    flip = rows[:, 0] > rows[:, -1]
    out = rows.copy()
    out[flip] = rows[flip, ::-1]
    return out


def canonical_improper(rows: np.ndarray) -> np.ndarray:
    """Improper tuples (n, 4) as (a, centre, b, c) with the centre (position 1) kept and
    the other three sorted ascending into positions 0, 2, 3 (OpenFF ``ImproperDict``)."""
    rows = np.asarray(rows, dtype=np.int64)
    others = np.sort(rows[:, [0, 2, 3]], axis=1)
    return np.stack([others[:, 0], rows[:, 1], others[:, 1], others[:, 2]], axis=1)


def encode(rows: np.ndarray, n_atoms: int) -> np.ndarray:
    """Integer code of each row (n, k) of atom indices < ``n_atoms`` (mixed radix)."""
    rows = np.asarray(rows, dtype=np.int64)
    k = rows.shape[1]
    if float(n_atoms) ** k >= 2.0**62:
        raise InputError(f"molecule too large for {k}-atom term codes ({n_atoms} atoms)")
    code = np.zeros(len(rows), dtype=np.int64)
    for col in range(k):
        code = code * n_atoms + rows[:, col]
    return code


def last_match(
    mol: Chem.Mol,
    smirks_list: list[str],
    canonical,
) -> tuple[np.ndarray, np.ndarray]:
    """Every canonical tuple matched by any pattern, and the index (in ``smirks_list``) of
    the last pattern that matches it.

    Args:
        mol: molecule from :func:`matching_molecule`.
        smirks_list: patterns in file order, all with the same number of tags k.
        canonical: function (n, k) -> (n, k) putting tuples in canonical order.

    Returns:
        (tuples int64 (m, k) sorted by code, pattern index int64 (m,)).
    """
    n_atoms = mol.GetNumAtoms()
    codes, owners, rows = [], [], []
    for index, smirks in enumerate(smirks_list):
        found = find_matches(mol, smirks)
        if len(found):
            found = canonical(found)
            rows.append(found)
            codes.append(encode(found, n_atoms))
            owners.append(np.full(len(found), index, dtype=np.int64))
    if not rows:
        k = len(compile_smirks(smirks_list[0])[1]) if smirks_list else 0
        return np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=np.int64)
    all_rows, all_codes, all_owners = (np.concatenate(rows), np.concatenate(codes),
                                       np.concatenate(owners))
    # last occurrence of each code = first occurrence in the reversed arrays
    _, first_in_reversed = np.unique(all_codes[::-1], return_index=True)
    keep = len(all_codes) - 1 - first_in_reversed
    return all_rows[keep], all_owners[keep]


def lookup(terms: np.ndarray, matched: np.ndarray, owners: np.ndarray,
           n_atoms: int) -> np.ndarray:
    """Pattern index for each canonical ``terms`` row (n, k), -1 where none matched."""
    if len(terms) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(matched) == 0:
        return np.full(len(terms), -1, dtype=np.int64)
    matched_codes = encode(matched, n_atoms)
    order = np.argsort(matched_codes)
    sorted_codes = matched_codes[order]
    term_codes = encode(terms, n_atoms)
    pos = np.clip(np.searchsorted(sorted_codes, term_codes), 0, len(sorted_codes) - 1)
    hit = sorted_codes[pos] == term_codes
    return np.where(hit, owners[order][pos], -1)


__all__ = [
    "canonical_improper",
    "canonical_valence",
    "compile_smirks",
    "find_matches",
    "last_match",
    "lookup",
    "matching_molecule",
]
