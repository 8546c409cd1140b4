"""A :class:`ParameterizedSystem` flattened to explicit per-term parameters, and the check
that a file format can carry them.

Every term gets its effective parameters in internal units (kcal/mol, Angstrom, rad,
harmonic E = k/2 (x - x0)^2, periodic E = k (1 + cos(n phi - phase)), LJ sigma form), with
the term's ``scale`` (e.g. 1/3 per SMIRNOFF improper permutation) already applied to k.
Writers of AMBER/GROMACS/ffxml files work from this table only.

Forms those formats cannot carry (Morse bonds, Urey-Bradley, harmonic impropers, NBFIX
pair overrides, geometric combining, 1-4 scaling that differs between pairs) are listed
in :attr:`FlatTerms.unsupported`; :func:`require_standard_forms` turns them into a clear
:class:`~ffparam.errors.ConventionError` naming the term and the format.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from ffparam.chem.molecule import Molecule
from ffparam.errors import ConventionError
from ffparam.forms import FORMS, STANDARD_TABLES
from ffparam.params.system import ParameterizedSystem


@dataclass
class FlatTerms:
    """Explicit per-term parameters of one molecule (internal units).

    Attributes:
        bond_atoms (n_b, 2), bond_k (kcal/mol/A^2, E = k/2 (r - r0)^2), bond_length (A).
        angle_atoms (n_a, 3), angle_k (kcal/mol/rad^2), angle_theta (rad).
        torsion_atoms (n_t, 4), torsion_periodicity (int), torsion_phase (rad),
            torsion_k (kcal/mol), torsion_group (term group name per row).
        charges (e), sigma (A), epsilon (kcal/mol): per atom (n_atoms,).
        vdw_ids: per-atom vdW parameter id (for atom type names).
        pairs_14 (n_14, 2): the scaled pairs; coulomb_14, lj_14: their scales.
        unsupported: human-readable names of terms outside these standard forms.
    """

    bond_atoms: np.ndarray
    bond_k: np.ndarray
    bond_length: np.ndarray
    angle_atoms: np.ndarray
    angle_k: np.ndarray
    angle_theta: np.ndarray
    torsion_atoms: np.ndarray
    torsion_periodicity: np.ndarray
    torsion_phase: np.ndarray
    torsion_k: np.ndarray
    torsion_group: list[str]
    charges: np.ndarray
    sigma: np.ndarray
    epsilon: np.ndarray
    vdw_ids: list[str]
    pairs_14: np.ndarray
    coulomb_14: float
    lj_14: float
    unsupported: list[str] = field(default_factory=list)


def flat_terms(system: ParameterizedSystem) -> FlatTerms:
    """Flatten ``system`` at its current parameter values."""
    p = system.parameters.vector()
    unsupported: list[str] = []
    rows: dict[str, list] = {table: [] for table in STANDARD_TABLES}
    for g in system.terms:
        form = FORMS.get(g.form)
        if form.standard is None:
            if len(g):
                unsupported.append(f"{form.label} ({g.name}, {len(g)} terms, e.g. atoms "
                                   f"{'-'.join(map(str, g.atoms[0].tolist()))})")
            continue
        scaled = form.scaled({f: p[g.param_index[f]] for f in form.fields}, g.scale)
        values = [scaled[f] for f in form.fields]  # the table's fields, in order
        extra = (g.periodicity, [g.name] * len(g)) if form.standard == "torsion" else ()
        rows[form.standard].append((g.atoms, *values, *extra))
    bonds = _stack(rows["bond"], (2, 1, 1))
    angles = _stack(rows["angle"], (3, 1, 1))
    torsions = _stack([(r[0], r[3], r[2], r[1]) for r in rows["torsion"]], (4, 1, 1, 1))
    groups = [name for r in rows["torsion"] for name in r[4]]

    nb = system.nonbonded
    topo = system.topology
    coulomb_14, lj_14, pairs_14 = _one_four(system, unsupported)
    if len(nb.nbfix_rows):
        i, j = nb.pairs[nb.nbfix_rows[0]]
        unsupported.append(f"NBFIX pair overrides ({len(nb.nbfix_rows)} pairs, e.g. atoms "
                           f"{i}-{j})")
    if nb.combining_rule != "lorentz-berthelot":
        unsupported.append(f"the {nb.combining_rule} combining rule")
    n = topo.n_atoms
    return FlatTerms(
        bond_atoms=bonds[0].reshape(-1, 2).astype(np.int64), bond_k=bonds[1],
        bond_length=bonds[2],
        angle_atoms=angles[0].reshape(-1, 3).astype(np.int64), angle_k=angles[1],
        angle_theta=angles[2],
        torsion_atoms=torsions[0].reshape(-1, 4).astype(np.int64),
        torsion_periodicity=torsions[1].astype(np.int64), torsion_phase=torsions[2],
        torsion_k=torsions[3], torsion_group=groups,
        charges=p[nb.charge_index].reshape(n), sigma=p[nb.sigma_index].reshape(n),
        epsilon=p[nb.epsilon_index].reshape(n),
        vdw_ids=list(nb.vdw_ids) if len(nb.vdw_ids) == n else [""] * n,
        pairs_14=pairs_14, coulomb_14=coulomb_14, lj_14=lj_14, unsupported=unsupported)


def _stack(parts: list[tuple], widths: tuple[int, ...]) -> list[np.ndarray]:
    """Concatenate per-group arrays field by field; field ``c`` has ``widths[c]`` columns
    (1 = a flat vector)."""
    out = []
    for c, width in enumerate(widths):
        chunks = [np.asarray(part[c], dtype=float).reshape(-1, width) for part in parts]
        stacked = np.concatenate(chunks) if chunks else np.zeros((0, width))
        out.append(stacked if width > 1 else stacked.reshape(-1))
    return out


def _one_four(system: ParameterizedSystem, unsupported: list[str]
              ) -> tuple[float, float, np.ndarray]:
    """The 1-4 scales and pairs, checking that the pair list is the topology's standard
    one (1-2/1-3 excluded, 1-4 scaled uniformly, everything else full)."""
    nb, topo = system.nonbonded, system.topology
    pairs = np.sort(np.asarray(nb.pairs, dtype=np.int64).reshape(-1, 2), axis=1)
    scaled = (nb.coulomb_scale != 1.0) | (nb.lj_scale != 1.0)
    settings = system.parameters.settings
    c14 = float(settings.get("coulomb_14_scale", 1 / 1.2))
    lj14 = float(settings.get("lj_14_scale", 0.5))
    p14 = {tuple(r) for r in np.sort(topo.pairs_14, axis=1).tolist()}
    got14 = {tuple(r) for r in pairs[scaled].tolist()}
    full = {tuple(r) for r in pairs[~scaled].tolist()}
    want_full = {tuple(r) for r in topo.nonbonded_pairs.tolist()}
    if len(full) + len(got14) != len(pairs):
        unsupported.append("a nonbonded pair list with repeated pairs")
    if not scaled.any():
        c14, lj14 = 1.0, 1.0
    else:
        c_values = np.unique(nb.coulomb_scale[scaled])
        lj_values = np.unique(nb.lj_scale[scaled])
        if len(c_values) > 1 or len(lj_values) > 1:
            unsupported.append(f"1-4 scaling that differs between pairs (Coulomb "
                               f"{c_values.tolist()[:3]}, LJ {lj_values.tolist()[:3]})")
        c14, lj14 = float(c_values[0]), float(lj_values[0])
    if got14 - p14 or (p14 - got14 and (c14, lj14) != (1.0, 1.0)):
        odd = sorted((got14 - p14) | (p14 - got14))[:3]
        unsupported.append(f"a 1-4 pair list that is not the bonded graph's (pairs {odd})")
    if full | got14 != want_full | p14:
        odd = sorted((full | got14) ^ (want_full | p14))[:3]
        unsupported.append(f"a nonbonded pair list that is not the bonded graph's (pairs {odd})")
    return c14, lj14, np.array(sorted(p14), dtype=np.int64).reshape(-1, 2)


def require_standard_forms(terms: FlatTerms, fmt: str) -> None:
    """Raise :class:`ConventionError` if ``terms`` hold a form ``fmt`` cannot write."""
    if terms.unsupported:
        raise ConventionError(
            f"cannot write {terms.unsupported[0]} to {fmt} files (supported there: harmonic "
            "bonds and angles, periodic torsions, Lennard-Jones with Lorentz-Berthelot "
            "combining and one 1-4 scaling); the OpenMM System XML export carries every form")


_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def atom_type_names(molecule: Molecule, terms: FlatTerms, max_length: int = 5) -> list[str]:
    """One type per distinct (vdW id, element, sigma, epsilon); named by the vdW id when
    every id is a plain token of at most ``max_length`` characters (GAFF2's ``c3``,
    ``hc``), else element + number (``C1``, ``C2``, ``H1``)."""
    keys = [(vid, sym, float(s), float(e)) for vid, sym, s, e in
            zip(terms.vdw_ids, molecule.symbols, terms.sigma, terms.epsilon)]
    unique = list(dict.fromkeys(keys))
    ids = [k[0] for k in unique]
    if all(_TYPE_NAME.match(i) and len(i) <= max_length for i in ids) and \
            len(set(ids)) == len(unique):
        names = {k: k[0] for k in unique}
    else:
        counts: dict[str, int] = {}
        names = {}
        for k in unique:
            counts[k[1]] = counts.get(k[1], 0) + 1
            names[k] = f"{k[1]}{counts[k[1]]}"
    return [names[k] for k in keys]


def bonded_chain(atoms: tuple[int, ...], bonded: set[tuple[int, int]]) -> bool:
    """True if consecutive atoms of ``atoms`` are bonded (a proper torsion path)."""
    return all(tuple(sorted((a, b))) in bonded for a, b in itertools.pairwise(atoms))


def improper_centre(atoms: tuple[int, ...], bonded: set[tuple[int, int]]) -> int | None:
    """Position (0-3) of the atom bonded to the three others, or None."""
    for pos, centre in enumerate(atoms):
        others = [a for k, a in enumerate(atoms) if k != pos]
        if all(tuple(sorted((centre, o))) in bonded for o in others):
            return pos
    return None
