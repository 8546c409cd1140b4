"""CHARMM ``psf`` + parameter files (``prm``/``par``, ``rtf``/``top``, ``str``; CGenFF
ligand streams) + coordinates (``crd``/``cor`` or ``pdb``) in, through ParmEd's reader.

Forms: harmonic bonds and angles, Urey-Bradley 1-3 terms, periodic dihedrals (multiple
terms per quadruple), harmonic impropers (E = K (psi - psi0)^2 in the files; internal
k = 2 K), LJ from ``-epsilon`` and ``Rmin/2`` per type, the 1-4 LJ columns
(``LJ14`` pair parameters of the types that have them) and ``NBFIX`` pairs (``NBFix``).
CMAP cross terms are refused with the psf line of ``!NCRTERM``: ffparam has no functional
form for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ffparam.assign.import_common import assemble, check_atom_count
from ffparam.assign.import_structure import draft_from_structure
from ffparam.errors import ConventionError, InputError
from ffparam.io.files import read_text, require_file
from ffparam.params.system import ParameterizedSystem

PARAMETER_SUFFIXES = {".prm": "par", ".par": "par", ".inp": "par", ".rtf": "top",
                      ".top": "top", ".str": "str"}
"""Parameter file suffix -> its kind for ParmEd's CharmmParameterSet."""


def _check_psf(path: Path) -> None:
    for number, line in enumerate(read_text(path, "CHARMM psf").splitlines(), 1):
        if "!NCRTERM" in line and line.split()[0].isdigit() and int(line.split()[0]) > 0:
            raise ConventionError(f"{path.name} line {number}: {line.split()[0]} CMAP cross "
                                  "terms (!NCRTERM) are not supported by ffparam")


def _parameter_set(files: Sequence[str | Path]):
    import parmed

    kinds: dict[str, list[str]] = {"par": [], "top": [], "str": []}
    for name in files:
        path = require_file(name, "CHARMM parameter file")
        kind = PARAMETER_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise InputError(f"{path.name}: unknown CHARMM parameter file type "
                             f"{path.suffix!r}; use {', '.join(PARAMETER_SUFFIXES)}")
        kinds[kind].append(str(path))
    if not kinds["par"] and not kinds["str"]:
        raise InputError("a CHARMM psf needs parameter files (.prm/.par or .str)")
    try:
        params = parmed.charmm.CharmmParameterSet()
        for name in kinds["top"]:
            params.read_topology_file(name)
        for name in kinds["par"]:
            params.read_parameter_file(name)
        for name in kinds["str"]:
            params.read_stream_file(name)
        return params
    except (parmed.exceptions.ParmedError, ValueError, KeyError, IndexError) as exc:
        raise InputError(f"cannot read the CHARMM parameter files: {exc}") from None


def _coordinates(path: Path):
    import parmed

    try:
        if path.suffix.lower() in (".crd", ".cor"):
            return parmed.charmm.CharmmCrdFile(str(path)).coordinates.reshape(-1, 3)
        return parmed.load_file(str(path)).coordinates
    except Exception as exc:  # ParmEd raises many types on bad input
        raise InputError(f"{path.name} is not a readable coordinate file: {exc}") from None


def read_charmm(psf: str | Path, parameter_files: Sequence[str | Path],
                coordinates: str | Path | None = None) -> ParameterizedSystem:
    """The system of ``psf`` with the parameters of ``parameter_files`` (every parameter
    used in its ParameterSet); positions (Angstrom) from ``coordinates`` (crd or pdb)."""
    import parmed

    path = require_file(psf, "CHARMM psf")
    _check_psf(path)
    params = _parameter_set(parameter_files)
    try:
        struct = parmed.charmm.CharmmPsfFile(str(path))
    except (parmed.exceptions.ParmedError, ValueError, IndexError) as exc:
        raise InputError(f"{path.name} is not a readable CHARMM psf: {exc}") from None
    try:
        struct.load_parameters(params)
    except parmed.exceptions.ParmedError as exc:
        raise ConventionError(f"{path.name}: {exc}") from None
    if coordinates is not None:
        crd = require_file(coordinates, "CHARMM coordinate file")
        xyz = _coordinates(crd)
        check_atom_count(len(struct.atoms), len(xyz), path, crd)
        struct.coordinates = xyz
    return assemble(draft_from_structure(struct, path.stem, f"CHARMM {path.name}"))


__all__ = ["read_charmm"]
