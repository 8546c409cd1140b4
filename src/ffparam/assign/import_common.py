"""Existing force fields in: the format-neutral :class:`ImportDraft` every reader fills,
and :func:`assemble` that turns it into a :class:`ParameterizedSystem` with every
parameter of the file in its ParameterSet (so any of them can be freed, refitted and
exported again).

Parameters are keyed by the atom types of the file (``CT-HC``, ``c3-c3-c3-hc``); terms of
the same types with different values (a file may give one term its own values) get a
``#2``, ``#3`` ... suffix. Partial charges are per atom (``atom:i``), LJ per atom type
(``vdW``), pair overrides per type pair (``NBFix`` for every pair of those types, ``LJ14``
for 1-4 pairs only, already scaled).

Nonbonded pairs follow the file: pairs within three bonds are excluded from the full
list; 1-4 pairs take the file's per-pair Coulomb scale and LJ (scale of the combined
per-type LJ, or an ``LJ14`` override); pairs within three bonds that the file gives no
1-4 interaction to are kept as zero-scaled rows, so :func:`ffparam.mm.to_openmm` excludes
them as the file does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem

from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.params.builder import build_system
from ffparam.params.parameter_set import Parameter, ParameterKey, ParameterSet
from ffparam.params.system import NonbondedTerms, ParameterizedSystem

BONDED_SECTIONS = ("Bonds", "Angles", "ProperTorsions", "ImproperTorsions", "UreyBradley",
                   "HarmonicImpropers")
"""Sections an importer fills (forms: harmonic bond/angle, periodic torsion, Urey-Bradley,
harmonic improper; Ryckaert-Bellemans torsions are converted exactly to periodic ones)."""


@dataclass
class Pair14:
    """One 1-4 pair as the file defines it.

    Attributes:
        atoms: (i, j), 0-based.
        coulomb_scale: factor on q_i q_j / r.
        lj_scale: factor on the combined per-type LJ, used when ``lj`` is None.
        lj: (sigma Angstrom, epsilon kcal/mol) of this pair, already scaled, or None.
    """

    atoms: tuple[int, int]
    coulomb_scale: float
    lj_scale: float = 1.0
    lj: tuple[float, float] | None = None


@dataclass
class ImportDraft:
    """Everything a reader takes from the files, in internal units (Angstrom, kcal/mol,
    radians, e, amu), before parameters are made.

    ``terms``: section -> rows (atoms, type key, values, fixed): harmonic k of
    E = k/2 (x - x0)^2, periodic torsion fields ``k#``/``phase#`` with ``periodicity#``
    in fixed. ``lj``: atom type -> (sigma, epsilon). ``nbfix``: (type a, type b) ->
    (sigma, epsilon) of every pair of those types that is not 1-4.
    """

    name: str
    atomic_numbers: list[int]
    masses: list[float]
    bonds: list[tuple[int, int]]
    atom_types: list[str]
    charges: np.ndarray
    lj: dict[str, tuple[float, float]]
    terms: dict[str, list[tuple[tuple[int, ...], str, dict[str, float], dict]]]
    pairs_14: list[Pair14]
    combining_rule: str = "lorentz-berthelot"
    nbfix: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    positions: np.ndarray | None = None
    source: str = ""


# ---------------------------------------------------------------- molecule
def molecule_from_graph(draft: ImportDraft) -> Molecule:
    """An RDKit-backed Molecule with the file's atoms and bonds. Bond orders and formal
    charges come from RDKit's ``DetermineBondOrders`` on the coordinates when it succeeds
    (small molecules), else every bond is single (the energy does not use them)."""
    rw = Chem.RWMol()
    for z in draft.atomic_numbers:
        atom = Chem.Atom(int(z))
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for i, j in draft.bonds:
        rw.AddBond(int(i), int(j), Chem.BondType.SINGLE)
    mol = rw.GetMol()
    mol.UpdatePropertyCache(strict=False)
    positions = draft.positions
    conformers = np.zeros((0, len(draft.atomic_numbers), 3)) if positions is None \
        else np.asarray(positions, dtype=float).reshape(1, -1, 3)
    ordered = _with_bond_orders(mol, conformers, round(float(np.sum(draft.charges))))
    return Molecule(ordered if ordered is not None else mol, conformers, draft.name)


def _with_bond_orders(mol: Chem.Mol, conformers: np.ndarray, charge: int) -> Chem.Mol | None:
    if not len(conformers) or mol.GetNumAtoms() > 120 or mol.GetNumAtoms() == 0:
        return None
    from rdkit.Chem import rdDetermineBonds
    from rdkit.Geometry import Point3D

    trial = Chem.Mol(mol)
    conf = Chem.Conformer(trial.GetNumAtoms())
    for i, (x, y, z) in enumerate(conformers[0]):
        conf.SetAtomPosition(i, Point3D(float(x), float(y), float(z)))
    trial.AddConformer(conf, assignId=True)
    try:
        rdDetermineBonds.DetermineBondOrders(trial, charge=charge)
        Chem.SanitizeMol(trial)
    except Exception:
        return None
    trial.RemoveAllConformers()
    return trial


# ---------------------------------------------------------------- parameters
class _Ids:
    """Type key -> parameter id, a ``#n`` suffix for each other set of values."""

    def __init__(self) -> None:
        self.by_values: dict[tuple, str] = {}
        self.count: Counter = Counter()

    def get(self, section: str, key: str, values: dict[str, float], fixed: dict) -> str:
        signature = (section, key, tuple(sorted(values.items())), tuple(sorted(fixed.items())))
        pid = self.by_values.get(signature)
        if pid is None:
            self.count[(section, key)] += 1
            n = self.count[(section, key)]
            pid = key if n == 1 else f"{key}#{n}"
            self.by_values[signature] = pid
        return pid


def _source_parameters(draft: ImportDraft) -> tuple[ParameterSet, dict]:
    """Every distinct parameter of the draft, and section -> term rows for build_system."""
    coulomb, lj = _common_scales(draft)
    source = ParameterSet(settings={"coulomb_14_scale": coulomb, "lj_14_scale": lj,
                                    "combining_rule": draft.combining_rule,
                                    "name": draft.source or draft.name})
    ids, rows = _Ids(), {}
    for section, terms in draft.terms.items():
        out = rows.setdefault(section, [])
        for atoms, key, values, fixed in terms:
            pid = ids.get(section, key, values, fixed)
            if (section, pid) not in source:
                source.add(section, Parameter(pid, dict(values), dict(fixed)))
            out.append((tuple(atoms), pid, 1.0))
    for atom_type, (sigma, epsilon) in draft.lj.items():
        source.add("vdW", Parameter(atom_type, {"epsilon": float(epsilon),
                                                "sigma": float(sigma)}))
    return source, {s: r for s, r in rows.items() if r}


def _common_scales(draft: ImportDraft) -> tuple[float, float]:
    """The most common 1-4 Coulomb and LJ scales (the ParameterSet's global settings)."""
    coulomb = Counter(p.coulomb_scale for p in draft.pairs_14)
    lj = Counter(p.lj_scale for p in draft.pairs_14 if p.lj is None)
    return (coulomb.most_common(1)[0][0] if coulomb else 1.0 / 1.2,
            lj.most_common(1)[0][0] if lj else 0.5)


def assemble(draft: ImportDraft) -> ParameterizedSystem:
    """The :class:`ParameterizedSystem` of ``draft`` (see the module doc)."""
    n = len(draft.atomic_numbers)
    if not (len(draft.masses) == len(draft.atom_types) == len(draft.charges) == n):
        raise InputError(f"{draft.name}: atom records disagree on the number of atoms")
    molecule = molecule_from_graph(draft)
    topology = Topology(molecule)
    source, rows = _source_parameters(draft)
    system = build_system(topology, source, rows, draft.atom_types, draft.charges,
                          label=draft.source or draft.name)
    params = system.parameters
    params.settings.update(source.settings)
    system.nonbonded = _nonbonded(draft, topology, params)
    return system


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _nonbonded(draft: ImportDraft, topology: Topology, params: ParameterSet) -> NonbondedTerms:
    """Pair lists of the file: full pairs, its 1-4 pairs, zero rows for the rest within
    three bonds; NBFix (full pairs) and LJ14 (1-4 pairs) overrides."""
    excluded = {tuple(p) for p in topology.exclusions.tolist()}
    near = excluded | {tuple(sorted(p)) for p in topology.propers[:, [0, 3]].tolist()}
    pairs14 = {tuple(sorted(p.atoms)): p for p in draft.pairs_14}
    n = len(draft.atomic_numbers)
    i, j = np.triu_indices(n, k=1)
    mask = np.ones((n, n), dtype=bool)
    for a, b in near | set(pairs14):
        mask[a, b] = False
    full = np.stack([i[mask[i, j]], j[mask[i, j]]], axis=1).reshape(-1, 2)
    zero = sorted(near - set(pairs14) - excluded)
    special = sorted(pairs14)
    pairs = np.concatenate([full, np.array(special + zero, dtype=np.int64).reshape(-1, 2)])
    cs = np.concatenate([np.ones(len(full)), [pairs14[p].coulomb_scale for p in special],
                         np.zeros(len(zero))])
    ls = np.concatenate([np.ones(len(full)),
                         [1.0 if pairs14[p].lj else pairs14[p].lj_scale for p in special],
                         np.zeros(len(zero))])
    index = lambda section, pid, f: params.index(ParameterKey(section, pid, f))  # noqa: E731
    nb = NonbondedTerms(
        np.array([index("Charges", f"atom:{a}", "charge") for a in range(n)], np.int64),
        np.array([index("vdW", t, "sigma") for t in draft.atom_types], np.int64),
        np.array([index("vdW", t, "epsilon") for t in draft.atom_types], np.int64),
        pairs.astype(np.int64), cs, ls, combining_rule=draft.combining_rule,
        vdw_ids=list(draft.atom_types))
    _overrides(nb, draft, params, len(full), special)
    return nb


def _overrides(nb: NonbondedTerms, draft: ImportDraft, params: ParameterSet, n_full: int,
               special: list[tuple[int, int]]) -> None:
    """NBFix rows for full pairs of NBFIX'd types, LJ14 rows for 1-4 pairs with their own
    LJ; the parameters are added to ``params`` (new sections go last, so earlier indices
    stay valid)."""
    types, ids = draft.atom_types, _Ids()
    rows, sig, eps = [], [], []
    targets = []
    if draft.nbfix:
        for row in range(n_full):
            a, b = nb.pairs[row]
            fix = draft.nbfix.get(_key(types[a], types[b]))
            if fix is not None:
                targets.append((row, "NBFix", "|".join(_key(types[a], types[b])), fix))
    pairs14 = {tuple(sorted(p.atoms)): p for p in draft.pairs_14}
    for offset, pair in enumerate(special):
        lj = pairs14[pair].lj
        if lj is not None:
            a, b = pair
            targets.append((n_full + offset, "LJ14", "|".join(_key(types[a], types[b])), lj))
    for row, section, key, (sigma, epsilon) in targets:
        values = {"epsilon": float(epsilon), "sigma": float(sigma)}
        pid = ids.get(section, key, values, {})
        if (section, pid) not in params:
            params.add(section, Parameter(pid, values))
        rows.append(row)
        sig.append(params.index(ParameterKey(section, pid, "sigma")))
        eps.append(params.index(ParameterKey(section, pid, "epsilon")))
    nb.nbfix_rows = np.array(rows, dtype=np.int64)
    nb.nbfix_sigma_index = np.array(sig, dtype=np.int64)
    nb.nbfix_epsilon_index = np.array(eps, dtype=np.int64)


# ---------------------------------------------------------------- helpers for readers
def type_key(types: list[str] | tuple[str, ...], symmetric: bool = True) -> str:
    """``a-b-c`` of a term's atom types, the smaller of both directions if ``symmetric``."""
    forward = tuple(types)
    if symmetric and tuple(reversed(forward)) < forward:
        forward = tuple(reversed(forward))
    return "-".join(forward)


def rb_to_periodic(c: list[float]) -> list[tuple[float, float, int]]:
    """Ryckaert-Bellemans E = sum_n C_n cos^n(psi), psi = phi - 180 deg (n = 0..5,
    kcal/mol) as exact periodic terms (k, phase rad, n) of E = k (1 + cos(n phi - phase)).

    With D_n = (-1)^n C_n, E = a0 + sum_m a_m cos(m phi): a1 = D1 + 3/4 D3 + 5/8 D5,
    a2 = (D2 + D4)/2, a3 = D3/4 + 5/16 D5, a4 = D4/8, a5 = D5/16, a0 = D0 + D2/2 + 3/8 D4.
    Terms m >= 2 are a_m (1 + cos m phi); the constant and the m = 1 term are carried by
    A (1 + cos phi) + B (1 + cos(phi - pi)) with A - B = a1 and A + B = a0 - sum a_m>=2,
    so the energy (constant included) is unchanged everywhere.
    """
    d = [float(v) * (-1) ** n for n, v in enumerate(list(c) + [0.0] * (6 - len(c)))]
    a = [d[0] + d[2] / 2 + 3 * d[4] / 8, d[1] + 3 * d[3] / 4 + 5 * d[5] / 8,
         (d[2] + d[4]) / 2, d[3] / 4 + 5 * d[5] / 16, d[4] / 8, d[5] / 16]
    rest = sum(a[2:])
    big_a, big_b = (a[0] - rest + a[1]) / 2, (a[0] - rest - a[1]) / 2
    terms = [(big_a, 0.0, 1), (big_b, float(np.pi), 1)]
    terms += [(a[m], 0.0, m) for m in range(2, 6) if a[m] != 0.0]
    return terms


def periodic_fields(terms: list[tuple[float, float, int]]) -> tuple[dict, dict]:
    """(values, fixed) of a periodic-torsion parameter with ``terms`` (k kcal/mol, phase
    rad, periodicity)."""
    values, fixed = {}, {}
    for n, (k, phase, per) in enumerate(terms, 1):
        values[f"k{n}"], values[f"phase{n}"] = float(k), float(phase)
        fixed[f"periodicity{n}"] = int(per)
    return values, fixed


def check_atom_count(n_topology: int, n_coordinates: int, topology: Path | str,
                     coordinates: Path | str) -> None:
    """InputError when a coordinate file does not have the topology's atoms."""
    if n_topology != n_coordinates:
        raise InputError(f"{Path(coordinates).name} has {n_coordinates} atoms but "
                         f"{Path(topology).name} has {n_topology}")


__all__ = ["BONDED_SECTIONS", "ImportDraft", "Pair14", "assemble", "check_atom_count",
           "molecule_from_graph", "periodic_fields", "rb_to_periodic", "type_key"]
