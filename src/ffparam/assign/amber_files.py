"""AMBER parameter files: read ``parm.dat``-style files (``gaff2.dat``) and ``frcmod`` files,
write ``frcmod`` files from a :class:`~ffparam.params.ParameterSet`, and read/write the
atom records of Tripos ``mol2`` files (atom types, charges, coordinates).

File conventions (AMBER) and the internal conventions they map to
(:mod:`ffparam.params.conventions`):

* bonds, angles: files store K of E = K (x - x0)^2 (kcal/mol/A^2, kcal/mol/rad^2) and x0
  in Angstrom / degrees; internal k = 2 K, angle in radians.
* proper torsions: ``IDIVF PK PHASE PN``: E = (PK / IDIVF) (1 + cos(|PN| phi - PHASE));
  internal k = PK / IDIVF. A negative PN means "more terms of this torsion follow".
* impropers: ``PK PHASE PN`` (no divisor), the central atom is the third type.
* Lennard-Jones (``NONB``, kind ``RE``): ``R* EPSILON`` with R* = rmin/2 (rmin_half);
  internal sigma = 2 R* / 2^(1/6).
* ``X`` is the wildcard type.

Records keep the order of the file because AMBER's ``tleap`` resolves duplicates and
wildcards by file order (see :mod:`ffparam.assign.gaff`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ffparam.errors import ConventionError, InputError, MissingFileError
from ffparam.io.atomic import write_text_atomic
from ffparam.params.conventions import (
    harmonic_from_internal,
    harmonic_to_internal,
    lj_size_from_sigma,
    lj_size_to_sigma,
    torsion_k_from_internal,
    torsion_k_to_internal,
)
from ffparam.params.parameter_set import Parameter, ParameterSet

WILDCARD = "X"

_FRCMOD_SECTIONS = {
    "MASS": "MASS", "BOND": "BOND", "ANGL": "ANGLE", "ANGLE": "ANGLE", "DIHE": "DIHE",
    "DIHEDRAL": "DIHE", "IMPR": "IMPROPER", "IMPROPER": "IMPROPER", "HBON": "HBOND",
    "HBOND": "HBOND", "NONB": "NONBON", "NONBON": "NONBON", "NONBOND": "NONBON",
    "CMAP": "CMAP", "LJEDIT": "LJEDIT", "IPOL": "IPOL",
}


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class BondRecord:
    """One ``BOND`` line: E = K (r - r0)^2.

    Attributes:
        types: the two atom types as written.
        force_constant: K in kcal/mol/A^2 (AMBER convention, half the internal k).
        length: r0 in Angstrom.
    """

    types: tuple[str, str]
    force_constant: float
    length: float

    @property
    def key(self) -> str:
        return "-".join(self.types)


@dataclass(frozen=True)
class AngleRecord:
    """One ``ANGL`` line: E = K (theta - theta0)^2, K in kcal/mol/rad^2, theta0 in degrees."""

    types: tuple[str, str, str]
    force_constant: float
    angle_degrees: float

    @property
    def key(self) -> str:
        return "-".join(self.types)


@dataclass(frozen=True)
class TorsionRecord:
    """One ``DIHE`` or ``IMPR`` line (one Fourier term).

    E = (barrier / divider) (1 + cos(periodicity phi - phase)).

    Attributes:
        types: four atom types as written (``X`` = wildcard; impropers: centre third).
        divider: IDIVF (1 for impropers).
        barrier: PK in kcal/mol.
        phase_degrees: PHASE in degrees.
        periodicity: |PN| (positive).
        more_terms: the file's PN was negative (another term of this torsion follows).
    """

    types: tuple[str, str, str, str]
    divider: float
    barrier: float
    phase_degrees: float
    periodicity: int
    more_terms: bool = False

    @property
    def key(self) -> str:
        return "-".join(self.types)

    @property
    def k(self) -> float:
        """Internal amplitude k = PK / IDIVF (kcal/mol)."""
        return torsion_k_to_internal(self.barrier, self.divider)

    @property
    def generality(self) -> int:
        """Number of wildcard types."""
        return sum(t == WILDCARD for t in self.types)


@dataclass(frozen=True)
class LJRecord:
    """One ``NONB`` (kind ``RE``) line: rmin_half R* in Angstrom, epsilon in kcal/mol."""

    type: str
    rmin_half: float
    epsilon: float

    @property
    def sigma(self) -> float:
        """sigma in Angstrom (zero crossing of 4 eps[(s/r)^12 - (s/r)^6])."""
        return lj_size_to_sigma(self.rmin_half, "rmin_half")


@dataclass
class AmberParameterFile:
    """The parsed content of one ``parm.dat`` or ``frcmod`` file, in file order.

    Attributes:
        title: first line.
        masses: type -> (mass in amu, polarizability in A^3); first occurrence kept.
        bonds, angles, propers, impropers: records in file order.
        lj: type -> Lennard-Jones record (after expanding ``NONB`` equivalences).
        path: where it was read from (None if built in memory).
    """

    title: str = ""
    masses: dict[str, tuple[float, float]] = field(default_factory=dict)
    bonds: list[BondRecord] = field(default_factory=list)
    angles: list[AngleRecord] = field(default_factory=list)
    propers: list[TorsionRecord] = field(default_factory=list)
    impropers: list[TorsionRecord] = field(default_factory=list)
    lj: dict[str, LJRecord] = field(default_factory=dict)
    path: Path | None = None

    def __repr__(self) -> str:
        return (f"AmberParameterFile({self.path or self.title!r}: {len(self.masses)} types, "
                f"{len(self.bonds)} bonds, {len(self.angles)} angles, {len(self.propers)} "
                f"torsion terms, {len(self.impropers)} impropers, {len(self.lj)} LJ)")


# ---------------------------------------------------------------------------- parsing helpers
def _split_types(line: str, n: int) -> tuple[tuple[str, ...], str]:
    """Split the ``n`` dash-joined atom types at the start of ``line`` from the rest.

    AMBER writes types as 2-character fields joined by ``-`` (``c -o ``, ``X -c3-c3-X ``);
    longer type names are accepted when they are dash-joined without spaces.
    """
    width = 3 * n - 1
    head, rest = line[:width], line[width:]
    types = tuple(t.strip() for t in head.split("-"))
    if len(types) != n or not all(types) or (rest and not rest[0].isspace()):
        match = re.match(r"\s*(" + r"\s*-\s*".join([r"([^\s-]+)"] * n) + r")(.*)$", line)
        if not match:
            raise InputError(f"cannot read {n} atom types from line {line.rstrip()!r}")
        types = tuple(match.group(i + 2) for i in range(n))
        rest = match.group(n + 2)
    return types, rest


def _floats(text: str, n: int, line: str) -> list[float]:
    fields = text.split()
    try:
        return [float(x) for x in fields[:n]]
    except ValueError:
        raise InputError(f"cannot read {n} numbers from line {line.rstrip()!r}") from None


def _bond(line: str) -> BondRecord:
    types, rest = _split_types(line, 2)
    k, r0 = _floats(rest, 2, line)
    return BondRecord(types, k, r0)  # type: ignore[arg-type]


def _angle(line: str) -> AngleRecord:
    types, rest = _split_types(line, 3)
    k, theta = _floats(rest, 2, line)
    return AngleRecord(types, k, theta)  # type: ignore[arg-type]


def _proper(line: str) -> TorsionRecord:
    types, rest = _split_types(line, 4)
    idivf, pk, phase, pn = _floats(rest, 4, line)
    return _torsion(types, idivf, pk, phase, pn, line)


def _improper(line: str) -> TorsionRecord:
    types, rest = _split_types(line, 4)
    pk, phase, pn = _floats(rest, 3, line)
    return _torsion(types, 1.0, pk, phase, pn, line)


def _torsion(types, idivf, pk, phase, pn, line) -> TorsionRecord:
    if pn == 0 or abs(pn) != round(abs(pn)):
        raise InputError(f"torsion periodicity must be a non-zero integer: {line.rstrip()!r}")
    if idivf <= 0:
        raise InputError(f"torsion divider IDIVF must be positive: {line.rstrip()!r}")
    return TorsionRecord(types, idivf, pk, phase, round(abs(pn)), pn < 0)


def _lj(line: str) -> LJRecord:
    fields = line.split()
    if len(fields) < 3:
        raise InputError(f"cannot read a Lennard-Jones line {line.rstrip()!r}")
    try:
        return LJRecord(fields[0], float(fields[1]), float(fields[2]))
    except ValueError:
        raise InputError(f"cannot read a Lennard-Jones line {line.rstrip()!r}") from None


def _mass(line: str) -> tuple[str, float, float]:
    fields = line.split()
    try:
        mass = float(fields[1])
        polar = float(fields[2]) if len(fields) > 2 and _is_float(fields[2]) else 0.0
    except (ValueError, IndexError):
        raise InputError(f"cannot read a MASS line {line.rstrip()!r}") from None
    return fields[0], mass, polar


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_lines(path: str | Path) -> tuple[Path, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"missing file: {path}")
    return path, path.read_text(errors="replace").splitlines()


# ---------------------------------------------------------------------------- readers
def read_parm_dat(path: str | Path) -> AmberParameterFile:
    """Read a main AMBER parameter file (``parm10.dat``, ``gaff.dat``, ``gaff2.dat``).

    Layout (AMBER file-format spec): title; MASS lines; blank; one line of hydrophilic
    types; BOND lines; blank; ANGL; blank; DIHE; blank; IMPR; blank; HBON; blank;
    equivalence lines (``NONB`` types sharing parameters); blank; one or more
    ``label kind`` blocks (only kind ``RE`` is supported) ended by blank lines; ``END``.
    """
    path, lines = _read_lines(path)
    out = AmberParameterFile(title=lines[0].strip() if lines else "", path=path)
    pos = 1

    def block() -> list[str]:
        nonlocal pos
        rows = []
        while pos < len(lines) and lines[pos].strip():
            rows.append(lines[pos])
            pos += 1
        pos += 1  # the blank line
        return rows

    for row in block():
        name, mass, polar = _mass(row)
        out.masses.setdefault(name, (mass, polar))
    pos += 1  # hydrophilic atom types
    out.bonds = [_bond(r) for r in block()]
    out.angles = [_angle(r) for r in block()]
    out.propers = [_proper(r) for r in block()]
    out.impropers = [_improper(r) for r in block()]
    block()  # HBON 10-12 terms: not used by GAFF/OpenMM
    equivalences = [row.split() for row in block()]
    while pos < len(lines):
        label = lines[pos].split()
        pos += 1
        if not label or label[0].upper() == "END":
            if label:
                break
            continue
        kind = label[1].upper() if len(label) > 1 else ""
        if kind != "RE":
            raise InputError(f"{path.name}: NONB kind {kind or '?'} not supported (only RE)")
        for row in block():
            rec = _lj(row)
            out.lj.setdefault(rec.type, rec)
    _apply_equivalences(out, equivalences)
    return out


def _apply_equivalences(out: AmberParameterFile, groups: list[list[str]]) -> None:
    for group in groups:
        if group and group[0] in out.lj:
            ref = out.lj[group[0]]
            for name in group[1:]:
                out.lj.setdefault(name, LJRecord(name, ref.rmin_half, ref.epsilon))


def read_frcmod(path: str | Path) -> AmberParameterFile:
    """Read an AMBER ``frcmod`` file: a title, then keyword sections (``MASS``, ``BOND``,
    ``ANGL``/``ANGLE``, ``DIHE``, ``IMPR``/``IMPROPER``, ``NONB``/``NONBON``, ...), each
    ended by a blank line. ``HBON``, ``CMAP``, ``LJEDIT`` and ``IPOL`` are skipped."""
    path, lines = _read_lines(path)
    out = AmberParameterFile(title=lines[0].strip() if lines else "", path=path)
    section = None
    for raw in lines[1:]:
        line = raw.rstrip()
        if not line.strip():
            section = None
            continue
        word = line.split()[0].upper()
        if section is None or (word in _FRCMOD_SECTIONS and line == line.lstrip()
                               and len(line.split()) == 1):
            if word not in _FRCMOD_SECTIONS:
                if word == "END":
                    break
                raise InputError(f"{path.name}: unknown frcmod section {line.strip()!r}")
            section = _FRCMOD_SECTIONS[word]
            continue
        if section == "MASS":
            name, mass, polar = _mass(line)
            out.masses.setdefault(name, (mass, polar))
        elif section == "BOND":
            out.bonds.append(_bond(line))
        elif section == "ANGLE":
            out.angles.append(_angle(line))
        elif section == "DIHE":
            out.propers.append(_proper(line))
        elif section == "IMPROPER":
            out.impropers.append(_improper(line))
        elif section == "NONBON":
            rec = _lj(line)
            out.lj.setdefault(rec.type, rec)
    return out


def frcmod_attention(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Entries of frcmod ``text`` flagged ``ATTN`` (parmchk2 found no estimate), as
    (section, atom types), e.g. ``("ANGLE", ("o", "cl", "o"))``."""
    sizes = {"MASS": 1, "BOND": 2, "ANGLE": 3, "DIHE": 4, "IMPROPER": 4, "NONBON": 1}
    found = []
    section = None
    for line in text.splitlines()[1:]:
        if not line.strip():
            section = None
            continue
        if section is None:
            section = _FRCMOD_SECTIONS.get(line.split()[0].upper())
            continue
        if "ATTN" in line and section in sizes:
            n = sizes[section]
            types = tuple(line.split()[:1]) if n == 1 else _split_types(line, n)[0]
            found.append((section, types))
    return found


# ---------------------------------------------------------------------------- to internal
def bond_parameter(record: BondRecord, pid: str | None = None) -> Parameter:
    """Internal bond parameter: k = 2 K (kcal/mol/A^2), length (A)."""
    return Parameter(pid or record.key,
                     {"k": harmonic_to_internal(record.force_constant, "K"),
                      "length": record.length})


def angle_parameter(record: AngleRecord, pid: str | None = None) -> Parameter:
    """Internal angle parameter: k = 2 K (kcal/mol/rad^2), angle in radians."""
    return Parameter(pid or record.key,
                     {"k": harmonic_to_internal(record.force_constant, "K"),
                      "angle": math.radians(record.angle_degrees)})


def torsion_parameter(terms: Sequence[TorsionRecord], pid: str | None = None) -> Parameter:
    """Internal periodic torsion with one ``k#``/``phase#`` pair per term (k = PK/IDIVF,
    phase in radians) and ``fixed['periodicity#']``; terms in the given order."""
    if not terms:
        raise InputError("a torsion parameter needs at least one term")
    values: dict[str, float] = {}
    fixed: dict[str, int] = {}
    for n, term in enumerate(terms, start=1):
        values[f"k{n}"] = term.k
        values[f"phase{n}"] = math.radians(term.phase_degrees)
        fixed[f"periodicity{n}"] = term.periodicity
    return Parameter(pid or terms[0].key, values, fixed)


def lj_parameter(record: LJRecord, pid: str | None = None) -> Parameter:
    """Internal vdW parameter: sigma (A) from rmin_half, epsilon (kcal/mol)."""
    return Parameter(pid or record.type, {"sigma": record.sigma, "epsilon": record.epsilon})


# ---------------------------------------------------------------------------- frcmod writer
def _type_key(pid: str, n: int, section: str) -> tuple[str, ...]:
    types = tuple(pid.split("-"))
    if len(types) != n or not all(re.fullmatch(r"[A-Za-z0-9+*']{1,2}", t) for t in types):
        raise ConventionError(f"{section} id {pid!r} is not {n} dash-joined AMBER atom types "
                              "of at most 2 characters; cannot write it to a frcmod file")
    return types


def _fmt_types(types: Iterable[str]) -> str:
    return "-".join(f"{t:<2s}" for t in types)


def frcmod_text(params: ParameterSet, masses: dict[str, float] | None = None,
                title: str = "ffparam parameters") -> str:
    """A frcmod file for an atom-type keyed :class:`ParameterSet`.

    Converts internal -> AMBER: K = k/2 (bonds, angles), angles and phases in degrees,
    torsions written with IDIVF 1 and PK = k, multi-term torsions with negative PN on all
    but the last term, impropers (``ImproperTorsions``, central atom third) as ``PK PHASE
    PN``, vdW as ``R* = rmin/2`` and epsilon. ``masses`` (type -> amu) fills ``MASS``.
    """
    out = [title.strip() or "ffparam parameters", "MASS"]
    for name, mass in (masses or {}).items():
        out.append(f"{name:<2s} {mass:10.4f}")
    out += ["", "BOND"]
    for par in params.parameters("Bonds"):
        k = harmonic_from_internal(par.values["k"], "K")
        out.append(f"{_fmt_types(_type_key(par.id, 2, 'Bonds'))}  {k:12.6f}  "
                   f"{par.values['length']:10.6f}")
    out += ["", "ANGLE"]
    for par in params.parameters("Angles"):
        k = harmonic_from_internal(par.values["k"], "K")
        out.append(f"{_fmt_types(_type_key(par.id, 3, 'Angles'))}  {k:12.6f}  "
                   f"{math.degrees(par.values['angle']):12.6f}")
    out += ["", "DIHE"]
    for par in params.parameters("ProperTorsions"):
        types = _fmt_types(_type_key(par.id, 4, "ProperTorsions"))
        terms = _torsion_terms(par)
        for i, (k, phase, per) in enumerate(terms):
            pn = -per if i < len(terms) - 1 else per
            pk = torsion_k_from_internal(k, 1.0)
            out.append(f"{types}   1  {pk:14.8f}  {math.degrees(phase):12.6f}  {pn:6.1f}")
    out += ["", "IMPROPER"]
    for par in params.parameters("ImproperTorsions"):
        types = _fmt_types(_type_key(par.id, 4, "ImproperTorsions"))
        terms = _torsion_terms(par)
        if len(terms) != 1:
            raise ConventionError(f"improper {par.id} has {len(terms)} terms; AMBER impropers "
                                  "have one")
        k, phase, per = terms[0]
        out.append(f"{types}      {k:14.8f}  {math.degrees(phase):12.6f}  {per:6.1f}")
    out += ["", "NONBON"]
    for par in params.parameters("vdW"):
        (name,) = _type_key(par.id, 1, "vdW")
        rmin_half = lj_size_from_sigma(par.values["sigma"], "rmin_half")
        out.append(f"  {name:<2s}      {rmin_half:12.8f}  {par.values['epsilon']:12.8f}")
    out += ["", ""]
    return "\n".join(out)


def _torsion_terms(par: Parameter) -> list[tuple[float, float, int]]:
    terms = []
    for name in par.values:
        m = re.fullmatch(r"k(\d+)", name)
        if m:
            n = m.group(1)
            terms.append((par.values[name], par.values[f"phase{n}"],
                          int(par.fixed[f"periodicity{n}"])))
    return terms


def write_frcmod(params: ParameterSet, path: str | Path, masses: dict[str, float] | None = None,
                 title: str = "ffparam parameters") -> Path:
    """Write :func:`frcmod_text` to ``path`` (atomically) and return the path."""
    return write_text_atomic(path, frcmod_text(params, masses, title))


def read_frcmod_parameters(path: str | Path) -> ParameterSet:
    """Read a frcmod into an atom-type keyed :class:`ParameterSet` in internal units
    (the inverse of :func:`write_frcmod`); torsion terms sharing a key form one parameter."""
    data = read_frcmod(path)
    out = ParameterSet()
    for rec in data.bonds:
        out.add("Bonds", bond_parameter(rec))
    for rec in data.angles:
        out.add("Angles", angle_parameter(rec))
    for section, records in (("ProperTorsions", data.propers),
                             ("ImproperTorsions", data.impropers)):
        grouped: dict[str, list[TorsionRecord]] = {}
        for rec in records:
            grouped.setdefault(rec.key, []).append(rec)
        for key, terms in grouped.items():
            out.add(section, torsion_parameter(terms, key))
    for rec in data.lj.values():
        out.add("vdW", lj_parameter(rec))
    return out


# ---------------------------------------------------------------------------- mol2
@dataclass
class Mol2Atoms:
    """Atom records of a Tripos mol2 file.

    Attributes:
        names: atom names (n_atoms,).
        types: atom types (e.g. GAFF2 ``c3``) (n_atoms,).
        charges: partial charges in e, float64 (n_atoms,).
        coordinates: float64 (n_atoms, 3) Angstrom.
        bonds: int64 (n_bonds, 2), 0-based atom indices.
    """

    names: list[str]
    types: list[str]
    charges: np.ndarray
    coordinates: np.ndarray
    bonds: np.ndarray


def read_mol2(path: str | Path) -> Mol2Atoms:
    """Read the first molecule's ATOM and BOND records of a mol2 file."""
    path, lines = _read_lines(path)
    section = None
    names, types, charges, coords, bonds = [], [], [], [], []
    for line in lines:
        if line.startswith("@<TRIPOS>"):
            if section in ("ATOM", "BOND") and line[9:].strip() == "MOLECULE":
                break
            section = line[9:].strip()
            continue
        fields = line.split()
        if not fields:
            continue
        try:
            if section == "ATOM":
                names.append(fields[1])
                coords.append([float(x) for x in fields[2:5]])
                types.append(fields[5])
                charges.append(float(fields[8]) if len(fields) > 8 else 0.0)
            elif section == "BOND":
                bonds.append((int(fields[1]) - 1, int(fields[2]) - 1))
        except (ValueError, IndexError):
            raise InputError(f"{path.name}: cannot read mol2 line {line.strip()!r}") from None
    if not names:
        raise InputError(f"{path.name}: no @<TRIPOS>ATOM records")
    return Mol2Atoms(names, types, np.array(charges, dtype=np.float64),
                     np.array(coords, dtype=np.float64).reshape(-1, 3),
                     np.array(bonds, dtype=np.int64).reshape(-1, 2))


def write_mol2(path: str | Path, symbols: Sequence[str], coordinates: np.ndarray,
               types: Sequence[str], charges: np.ndarray, bonds: np.ndarray,
               bond_orders: Sequence[str] | None = None, name: str = "MOL",
               residue: str = "MOL") -> Path:
    """Write a single-residue mol2 file with the given atom types and charges.

    Atom names are element + running number (``C1``, ``H3``); coordinates (Angstrom) are
    written with 6 decimals and charges with 10, so tools that read them (tleap) see the
    same numbers ffparam uses. ``bond_orders`` are mol2 codes (``1``, ``2``, ``ar``...).
    """
    coordinates = np.asarray(coordinates, dtype=np.float64).reshape(-1, 3)
    charges = np.asarray(charges, dtype=np.float64)
    n = len(symbols)
    if coordinates.shape[0] != n or len(types) != n or charges.shape != (n,):
        raise InputError("mol2: need one coordinate, type and charge per atom")
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    orders = list(bond_orders) if bond_orders is not None else ["1"] * len(bonds)
    counts: dict[str, int] = {}
    lines = ["@<TRIPOS>MOLECULE", name, f"{n:5d} {len(bonds):5d}     1     0     0",
             "SMALL", "USER_CHARGES", "", "@<TRIPOS>ATOM"]
    for i, (sym, xyz, typ, q) in enumerate(zip(symbols, coordinates, types, charges), 1):
        counts[sym] = counts.get(sym, 0) + 1
        atom_name = f"{sym}{counts[sym]}"
        lines.append(f"{i:7d} {atom_name:<6s} {xyz[0]:14.6f} {xyz[1]:14.6f} {xyz[2]:14.6f} "
                     f"{typ:<4s} {1:5d} {residue:<6s} {q:16.10f}")
    lines.append("@<TRIPOS>BOND")
    for i, ((a, b), order) in enumerate(zip(bonds.tolist(), orders), 1):
        lines.append(f"{i:6d} {a + 1:5d} {b + 1:5d} {order}")
    lines += ["@<TRIPOS>SUBSTRUCTURE", f"     1 {residue:<6s}      1 ****               0 "
              "****  ****    0 ROOT", ""]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path


__all__ = [
    "AmberParameterFile",
    "AngleRecord",
    "BondRecord",
    "LJRecord",
    "Mol2Atoms",
    "TorsionRecord",
    "angle_parameter",
    "bond_parameter",
    "frcmod_attention",
    "frcmod_text",
    "lj_parameter",
    "read_frcmod",
    "read_frcmod_parameters",
    "read_mol2",
    "read_parm_dat",
    "torsion_parameter",
    "write_frcmod",
    "write_mol2",
]
