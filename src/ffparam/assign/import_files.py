"""Existing force fields in: one entry point over the readers of AMBER, GROMACS, CHARMM
and OpenMM ffxml files (:mod:`ffparam.assign.import_amber`, ``import_gromacs``,
``import_charmm``, ``import_ffxml``), and the ``--ff`` / ``--from`` text of the CLI.

The format follows the topology's suffix; coordinates, when not given, come from the
file of the same name beside it (first found, in the order of :data:`COORDINATES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffparam.errors import InputError
from ffparam.params.system import ParameterizedSystem

FORMATS: dict[str, str] = {".prmtop": "amber", ".parm7": "amber", ".top": "gromacs",
                           ".psf": "charmm", ".pdb": "ffxml"}
"""Topology suffix -> format (a PDB is read with OpenMM ffxml files)."""

COORDINATES: dict[str, tuple[str, ...]] = {
    "amber": (".inpcrd", ".rst7", ".ncrst", ".restrt"), "gromacs": (".gro",),
    "charmm": (".crd", ".cor", ".pdb"), "ffxml": ()}
"""Format -> suffixes of the coordinate file looked for beside the topology."""


def import_format(path: str | Path) -> str | None:
    """The format of a topology file by its suffix, or None if it is not one."""
    return FORMATS.get(Path(path).suffix.lower())


def sibling_coordinates(path: str | Path) -> Path | None:
    """The coordinate file of the same name beside topology ``path``, if there is one."""
    path = Path(path)
    for suffix in COORDINATES.get(import_format(path) or "", ()):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def import_force_field(path: str | Path, coordinates: str | Path | None = None,
                       parameter_files: Sequence[str | Path] = (),
                       include_dirs: Sequence[str | Path] = (),
                       residue_templates: dict[str, str] | None = None
                       ) -> ParameterizedSystem:
    """Read an existing force field into a :class:`ParameterizedSystem` with every
    parameter in its ParameterSet.

    Args:
        path: AMBER ``.prmtop``/``.parm7``, GROMACS ``.top``, CHARMM ``.psf``, or a
            ``.pdb`` to apply OpenMM ffxml files to.
        coordinates: inpcrd/rst7, gro, crd/pdb (Angstrom inside); default the file of the
            same name beside ``path`` if any (the molecule then has no conformer).
        parameter_files: CHARMM prm/rtf/str files (psf), or ffxml files (pdb).
        include_dirs: GROMACS ``#include`` folders after the top's own.
        residue_templates: ffxml only: residue name -> template name.
    """
    kind = import_format(path)
    if kind is None:
        raise InputError(f"{Path(path).name}: not a force-field file; use "
                         f"{', '.join(FORMATS)}")
    if coordinates is None and kind != "ffxml":
        coordinates = sibling_coordinates(path)
    extra = [str(p) for p in parameter_files]
    if kind not in ("charmm", "ffxml") and extra:
        raise InputError(f"{Path(path).name} holds its parameters; parameter files "
                         f"({Path(extra[0]).name}) apply to a psf or a pdb only")
    if kind == "amber":
        from ffparam.assign.import_amber import read_amber

        return read_amber(path, coordinates)
    if kind == "gromacs":
        from ffparam.assign.import_gromacs import read_gromacs

        return read_gromacs(path, coordinates, include_dirs)
    if kind == "charmm":
        from ffparam.assign.import_charmm import read_charmm

        return read_charmm(path, extra, coordinates)
    from ffparam.assign.import_ffxml import read_ffxml

    system = read_ffxml(path, extra, residue_templates)
    if coordinates is not None:
        _set_coordinates(system, coordinates, path)
    return system


def _set_coordinates(system: ParameterizedSystem, coordinates: str | Path,
                     path: str | Path) -> None:
    from ffparam.assign.import_common import check_atom_count
    from ffparam.chem.molecule import Molecule

    xyz = Molecule.from_file(coordinates).conformers[0]
    check_atom_count(system.n_atoms, len(xyz), path, coordinates)
    system.topology.molecule = system.molecule.with_conformers(np.asarray(xyz, float)[None])


def system_for_molecule(molecule, text: str, base_dir: str | Path | None = None
                        ) -> ParameterizedSystem:
    """An existing force field (``TOPOLOGY[,PARAMETER_FILE...]``, see
    :func:`parse_ff_files`; relative paths against ``base_dir``) bound to ``molecule``,
    whose atoms must be the file's atoms in the file's order (same elements and bonds):
    the start of a bespoke or ``ffparam fit`` run from that force field. The file's
    charges are kept."""
    from ffparam.chem.topology import Topology
    from ffparam.params.system import ParameterizedSystem

    path, files = parse_ff_files(text)
    if base_dir is not None:
        path = path if path.is_absolute() else Path(base_dir) / path
        files = [p if p.is_absolute() else Path(base_dir) / p for p in files]
    if import_format(path) == "ffxml":
        raise InputError(f"{path.name}: an OpenMM ffxml force field needs the residues of a "
                         "PDB; start from a prmtop, top or psf of the molecule instead")
    imported = import_force_field(path, None, files)
    _check_same_molecule(molecule, imported.molecule, path)
    return ParameterizedSystem(Topology(molecule), imported.parameters, imported.terms,
                               imported.nonbonded, imported.source)


def _check_same_molecule(molecule, other, path: Path) -> None:
    """InputError unless ``molecule`` has ``other``'s atoms (elements, order) and bonds."""
    if molecule.n_atoms != other.n_atoms:
        raise InputError(f"{molecule.name} has {molecule.n_atoms} atoms but {path.name} has "
                         f"{other.n_atoms}; give the molecule in the file's atom order")
    mine, theirs = molecule.atomic_numbers, other.atomic_numbers
    bad = np.flatnonzero(mine != theirs)
    if len(bad):
        i = int(bad[0])
        raise InputError(f"atom {i + 1} of {molecule.name} is {molecule.symbols[i]} but "
                         f"{other.symbols[i]} in {path.name}; give the molecule in the "
                         "file's atom order")
    bonds = {tuple(b) for b in molecule.bonds.tolist()}
    file_bonds = {tuple(b) for b in other.bonds.tolist()}
    if bonds != file_bonds:
        a, b = sorted(bonds ^ file_bonds)[0]
        raise InputError(f"bond {a + 1}-{b + 1} is in only one of {molecule.name} and "
                         f"{path.name}; the molecule must have the file's bonds")


def parse_ff_files(text: str) -> tuple[Path, list[Path]]:
    """``TOPOLOGY[,PARAMETER_FILE...]`` (the ``--ff``/``--from`` value of an existing
    force field, e.g. ``lig.psf,par_all36_cgenff.prm,lig.str``) -> (topology, files)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise InputError("empty force-field file list")
    return Path(items[0]), [Path(item) for item in items[1:]]


def is_force_field_files(text: str) -> bool:
    """True when ``text`` names an existing force field (a prmtop, top or psf first)."""
    first = text.split(",", 1)[0].strip()
    return import_format(first) in ("amber", "gromacs", "charmm")


__all__ = ["COORDINATES", "FORMATS", "import_force_field", "import_format",
           "is_force_field_files", "parse_ff_files", "sibling_coordinates",
           "system_for_molecule"]
