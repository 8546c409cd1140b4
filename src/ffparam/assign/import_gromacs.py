"""GROMACS ``.top``/``.itp`` + ``.gro`` in, including OPLS-AA topologies.

Reading: ParmEd's ``GromacsTopologyFile`` parses every number with ``float`` (no rounding,
unlike its writer, see :mod:`ffparam.export.gromacs`) and applies ``[ defaults ]``:
comb-rule 2 -> Lorentz-Berthelot, 1 and 3 -> geometric (OPLS), ``[ pairs ]`` parameters
from ``[ pairtypes ]`` or, with gen-pairs, the combined LJ times fudgeLJ, and fudgeQQ on
their charge products. Ryckaert-Bellemans dihedrals (funct 3) become exact periodic terms
(:func:`~ffparam.assign.import_common.rb_to_periodic`); funct 2 impropers are harmonic
impropers, angle funct 5 adds a Urey-Bradley term.

Before ParmEd sees the file, ffparam walks it and its ``#include`` files (following
``#define``/``#ifdef``/``#ifndef``/``#else``/``#endif``) so that a missing include and any
directive or function type it cannot evaluate is refused with its file and line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ffparam.assign.import_common import assemble, check_atom_count
from ffparam.assign.import_structure import draft_from_structure
from ffparam.errors import ConventionError, InputError, MissingFileError
from ffparam.io.files import read_text, require_file
from ffparam.params.system import ParameterizedSystem

SUPPORTED_FUNCTIONS: dict[str, dict[int, str]] = {
    "bonds": {1: "harmonic"}, "bondtypes": {1: "harmonic"},
    "angles": {1: "harmonic", 5: "Urey-Bradley"}, "angletypes": {1: "harmonic",
                                                                 5: "Urey-Bradley"},
    "dihedrals": {1: "periodic", 2: "harmonic improper", 3: "Ryckaert-Bellemans",
                  4: "periodic improper", 9: "multiple periodic"},
    "dihedraltypes": {1: "periodic", 2: "harmonic improper", 3: "Ryckaert-Bellemans",
                      4: "periodic improper", 9: "multiple periodic"},
    "pairs": {1: "LJ/Coulomb 1-4 pair"}, "pairtypes": {1: "LJ 1-4 pair"},
}
"""Directive -> function type -> name, for the directives with function types ffparam reads."""

FUNCTION_COLUMN = {"bonds": 2, "bondtypes": 2, "angles": 3, "angletypes": 3, "dihedrals": 4,
                   "pairs": 2, "pairtypes": 2}
"""Directive -> 0-based column of its function type (dihedraltypes: 2 or 4, see below)."""

PLAIN_DIRECTIVES = {"defaults", "atomtypes", "moleculetype", "atoms", "system", "molecules",
                    "nonbond_params", "implicit_genborn_params"}
"""Directives without function types that ffparam reads (or that change no gas-phase
energy of the files it reads: implicit-solvent radii)."""

IGNORED_DIRECTIVES = {"position_restraints", "dihedral_restraints", "distance_restraints",
                      "orientation_restraints", "angle_restraints", "angle_restraints_z"}
"""Restraints: not part of the force field; OpenMM's reader skips them too."""

GROMACS_NAMES = {
    ("bonds", 2): "GROMOS-96 bonds", ("bonds", 3): "Morse bonds", ("bonds", 4): "cubic bonds",
    ("bonds", 5): "connections", ("bonds", 6): "harmonic potentials",
    ("bonds", 7): "FENE bonds", ("bonds", 8): "tabulated bonds", ("bonds", 10): "restraints",
    ("angles", 2): "GROMOS-96 angles", ("angles", 6): "quartic angles",
    ("angles", 8): "tabulated angles", ("dihedrals", 5): "Fourier dihedrals",
    ("dihedrals", 8): "tabulated dihedrals", ("dihedrals", 10): "restricted dihedrals",
    ("dihedrals", 11): "combined bending-torsion potentials",
}


def _resolve_include(name: str, here: Path, include_dirs: Sequence[Path]) -> Path | None:
    for folder in (here.parent, *include_dirs):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


def _function_type(section: str, fields: list[str]) -> int | None:
    if section == "dihedraltypes":  # 2 atom types (funct in column 2) or 4 (column 4)
        column = 2 if len(fields) > 2 and fields[2].isdigit() else 4
    else:
        column = FUNCTION_COLUMN.get(section)
    if column is None or len(fields) <= column:
        return None
    try:
        return int(fields[column])
    except ValueError:
        return None


class _Walker:
    """Walk a topology and its includes, checking directives and function types."""

    def __init__(self, include_dirs: Sequence[Path], defines: dict[str, str]) -> None:
        self.include_dirs = list(include_dirs)
        self.defines = dict(defines)
        self.depth = 0

    def walk(self, path: Path) -> None:
        self.depth += 1
        if self.depth > 50:
            raise InputError(f"{path.name}: #include nested more than 50 deep")
        active, section = [True], None
        for number, raw in enumerate(read_text(path, "GROMACS topology").splitlines(), 1):
            line = raw.split(";", 1)[0].strip()
            if not line:
                continue
            if line.startswith("#"):
                self._directive(line, path, number, active)
                continue
            if not all(active):
                continue
            match = re.fullmatch(r"\[\s*(\w+)\s*\]", line)
            if match:
                section = match.group(1).lower()
                self._check_section(section, path, number)
                continue
            self._check_line(section, line.split(), path, number)
        self.depth -= 1

    def _directive(self, line: str, path: Path, number: int, active: list[bool]) -> None:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in ("#ifdef", "#ifndef"):
            defined = rest.split()[0] in self.defines if rest else False
            active.append(defined if word == "#ifdef" else not defined)
        elif word == "#else" and len(active) > 1:
            active[-1] = not active[-1]
        elif word == "#endif" and len(active) > 1:
            active.pop()
        elif not all(active):
            return
        elif word == "#define" and rest:
            name, _, value = rest.partition(" ")
            self.defines[name] = value.strip()
        elif word == "#undef" and rest:
            self.defines.pop(rest.split()[0], None)
        elif word == "#include":
            name = rest.strip('"<> ')
            found = _resolve_include(name, path, self.include_dirs)
            if found is None:
                raise MissingFileError(f"{path.name} line {number}: #include \"{name}\" not "
                                       f"found (looked in {path.parent}"
                                       + "".join(f", {d}" for d in self.include_dirs) + ")")
            self.walk(found)

    @staticmethod
    def _check_section(section: str, path: Path, number: int) -> None:
        if section in SUPPORTED_FUNCTIONS or section in PLAIN_DIRECTIVES \
                or section in IGNORED_DIRECTIVES:
            return
        raise ConventionError(f"{path.name} line {number}: [ {section} ] is not supported "
                              "by ffparam's GROMACS reader")

    def _check_line(self, section: str | None, fields: list[str], path: Path,
                    number: int) -> None:
        if section == "defaults" and fields and fields[0] != "1":
            raise ConventionError(f"{path.name} line {number}: nbfunc {fields[0]} "
                                  "(Buckingham) is not supported; only 1 (Lennard-Jones)")
        if section not in SUPPORTED_FUNCTIONS:
            return
        funct = _function_type(section, fields)
        if funct is None or funct in SUPPORTED_FUNCTIONS[section]:
            return
        kind = GROMACS_NAMES.get((section.removesuffix("types"), funct), f"function type {funct}")
        raise ConventionError(f"{path.name} line {number}: {kind} ([ {section} ] funct "
                              f"{funct}) are not supported by ffparam")


def read_gromacs(top: str | Path, coordinates: str | Path | None = None,
                 include_dirs: Sequence[str | Path] = (),
                 defines: dict[str, str] | None = None) -> ParameterizedSystem:
    """The system of a GROMACS ``top`` with every parameter in its ParameterSet; positions
    (Angstrom) from a ``.gro`` ``coordinates`` file as the molecule's conformer if given.
    ``include_dirs``: folders searched for ``#include`` files after the top's folder."""
    import parmed

    path = require_file(top, "GROMACS topology")
    dirs = [Path(d) for d in include_dirs]
    _Walker(dirs, defines or {}).walk(path)
    xyz = None
    if coordinates is not None:
        gro = require_file(coordinates, "GROMACS coordinate file")
        try:
            xyz = parmed.load_file(str(gro), skip_bonds=True).coordinates
        except Exception as exc:
            raise InputError(f"{gro.name} is not a readable .gro file: {exc}") from None
    struct = _parmed_top(path, dirs, defines)
    if xyz is not None:
        check_atom_count(len(struct.atoms), len(xyz), path, coordinates)
        struct.coordinates = xyz
    return assemble(draft_from_structure(struct, path.stem, f"GROMACS {path.name}"))


def _parmed_top(path: Path, dirs: list[Path], defines: dict[str, str] | None):
    import warnings

    import parmed
    import parmed.gromacs as gmx

    saved = gmx.GROMACS_TOPDIR
    try:
        if dirs:
            gmx.GROMACS_TOPDIR = str(dirs[0])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            struct = parmed.gromacs.GromacsTopologyFile(str(path), defines=defines)
    except (parmed.exceptions.ParmedError, ValueError, KeyError, IndexError) as exc:
        raise InputError(f"{path.name} is not a readable GROMACS topology: {exc}") from None
    finally:
        gmx.GROMACS_TOPDIR = saved
    del caught  # 1-4 pairs missing from [ pairs ] are zero, as in GROMACS: nothing lost
    return struct


__all__ = ["SUPPORTED_FUNCTIONS", "read_gromacs"]
