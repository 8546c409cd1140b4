"""AMBER ``prmtop`` (+ ``inpcrd``/``rst7``) in, through ParmEd's reader.

ParmEd reads every prmtop number as printed (``%E`` with 8 decimals, charges x 18.2223)
into float64, so nothing is lost; OpenMM's ``AmberPrmtopFile`` reads the same numbers.
Refused with the ``%FLAG`` line: CHARMM CMAP terms of chamber files and AMOEBA prmtops.
"""

from __future__ import annotations

import math
from pathlib import Path

from ffparam.assign.import_common import assemble, check_atom_count
from ffparam.assign.import_structure import draft_from_structure
from ffparam.errors import ConventionError, InputError
from ffparam.io.files import read_text, require_file
from ffparam.params.system import ParameterizedSystem

UNSUPPORTED_FLAGS = {
    "CHARMM_CMAP_COUNT": "CHARMM CMAP terms are not supported by ffparam",
    "AMOEBA_FORCEFIELD": "the AMOEBA polarizable force field is not supported by ffparam",
    "LENNARD_JONES_CCOEF": "12-6-4 Lennard-Jones C4 terms are not supported by ffparam",
    "CTITLE": "chamber (CHARMM in AMBER format) files are not supported; read the psf "
              "with its CHARMM parameter files instead",
}
"""prmtop ``%FLAG`` -> why ffparam cannot evaluate the file."""


def _check_flags(path: Path) -> None:
    lines = read_text(path, "AMBER prmtop").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("%FLAG"):
            flag = line.split()[1] if len(line.split()) > 1 else ""
            if flag == "CHARMM_CMAP_COUNT" and _cmap_count(lines, number) == 0:
                continue
            if flag in UNSUPPORTED_FLAGS:
                raise ConventionError(f"{path.name} line {number} (%FLAG {flag}): "
                                      f"{UNSUPPORTED_FLAGS[flag]}")


def _cmap_count(lines: list[str], flag_line: int) -> int:
    for line in lines[flag_line:flag_line + 3]:
        if not line.startswith("%"):
            return int(line.split()[0]) if line.split() else 0
    return 0


def read_amber(prmtop: str | Path, coordinates: str | Path | None = None
               ) -> ParameterizedSystem:
    """The system of ``prmtop`` with every parameter in its ParameterSet; positions
    (Angstrom) from ``coordinates`` (inpcrd/rst7) as the molecule's conformer if given."""
    import parmed

    path = require_file(prmtop, "AMBER prmtop")
    _check_flags(path)
    try:
        struct = parmed.amber.AmberParm(str(path))
    except (parmed.exceptions.ParmedError, ValueError, IndexError) as exc:
        raise InputError(f"{path.name} is not a readable AMBER prmtop: {exc}") from None
    if coordinates is not None:
        crd = require_file(coordinates, "AMBER coordinate file")
        try:
            xyz = parmed.load_file(str(crd)).coordinates
        except Exception as exc:
            raise InputError(f"{crd.name} is not a readable coordinate file: {exc}") from None
        xyz = xyz.reshape(-1, 3) if xyz.ndim == 2 else xyz[0]
        check_atom_count(len(struct.atoms), len(xyz), path, crd)
        struct.coordinates = xyz
    draft = draft_from_structure(struct, path.stem, f"AMBER {path.name}")
    if struct.has_NBFIX():
        _add_nbfix(struct, draft)
    return assemble(draft)


def _add_nbfix(struct, draft) -> None:
    """Pair LJ of the prmtop's A/B tables that differs from the combined per-type LJ
    (NBFIX, e.g. from ParmEd's changeLJPair): ``NBFix`` pairs, and on 1-4 pairs of those
    types the same LJ divided by SCNB (AMBER uses the table for 1-4 pairs too)."""
    pd = struct.parm_data
    ntypes = pd["POINTERS"][1]
    first = {}
    for atom in struct.atoms:
        first.setdefault(str(atom.type), atom.nb_idx)
    names = sorted(first)
    for x, ta in enumerate(names):
        for tb in names[x:]:
            idx = pd["NONBONDED_PARM_INDEX"][ntypes * (first[ta] - 1) + first[tb] - 1] - 1
            a, b = pd["LENNARD_JONES_ACOEF"][idx], pd["LENNARD_JONES_BCOEF"][idx]
            if a <= 0.0 or b <= 0.0:
                continue
            sigma, epsilon = (a / b) ** (1.0 / 6.0), b * b / (4.0 * a)
            (sa, ea), (sb, eb) = draft.lj[ta], draft.lj[tb]
            if not (math.isclose(sigma, 0.5 * (sa + sb), rel_tol=1e-6)
                    and math.isclose(epsilon, math.sqrt(ea * eb), rel_tol=1e-6)):
                draft.nbfix[(ta, tb)] = (sigma, epsilon)
    types = draft.atom_types
    for pair in draft.pairs_14:
        i, j = pair.atoms
        fix = draft.nbfix.get(tuple(sorted((types[i], types[j]))))
        if fix is not None and pair.lj is None:
            pair.lj, pair.lj_scale = (fix[0], fix[1] * pair.lj_scale), 1.0


__all__ = ["read_amber"]
