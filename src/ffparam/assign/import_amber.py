"""AMBER ``prmtop`` (+ ``inpcrd``/``rst7``) in, through ParmEd's reader.

ParmEd reads every prmtop number as printed (``%E`` with 8 decimals, charges x 18.2223)
into float64, so nothing is lost; OpenMM's ``AmberPrmtopFile`` reads the same numbers.
Refused with the ``%FLAG`` line: CHARMM CMAP terms of chamber files and AMOEBA prmtops.
"""

from __future__ import annotations

from pathlib import Path

from ffparam.assign.import_common import assemble, check_atom_count
from ffparam.assign.import_structure import draft_from_structure
from ffparam.errors import ConventionError, InputError
from ffparam.io.files import read_text, require_file
from ffparam.params.system import ParameterizedSystem

UNSUPPORTED_FLAGS = {
    "CHARMM_CMAP_COUNT": "CHARMM CMAP terms",
    "AMOEBA_FORCEFIELD": "the AMOEBA polarizable force field",
}
"""prmtop ``%FLAG`` -> the functional form it declares that ffparam cannot evaluate."""


def _check_flags(path: Path) -> None:
    lines = read_text(path, "AMBER prmtop").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("%FLAG"):
            flag = line.split()[1] if len(line.split()) > 1 else ""
            if flag == "CHARMM_CMAP_COUNT" and _cmap_count(lines, number) == 0:
                continue
            if flag in UNSUPPORTED_FLAGS:
                raise ConventionError(f"{path.name} line {number}: {UNSUPPORTED_FLAGS[flag]} "
                                      f"(%FLAG {flag}) are not supported by ffparam")


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
    return assemble(draft)


__all__ = ["read_amber"]
