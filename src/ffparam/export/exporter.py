"""``export_system``: write a parameterized molecule in every format, read each file back,
and publish the files only if every one reproduces ffparam's energies.

Formats and files (``B`` = basename):

=========  =====================================  =====================================
format     files                                  read back by
=========  =====================================  =====================================
openmm     ``B.system.xml``, ``B.pdb``            ``openmm.XmlSerializer``, ``PDBFile``
ffxml      ``B.forcefield.xml``, ``B.pdb``        ``openmm.app.ForceField.createSystem``
gromacs    ``B.top``, ``B.gro``                   ``openmm.app.GromacsTopFile``, ParmEd
amber      ``B.prmtop``, ``B.inpcrd``             ``openmm.app.AmberPrmtopFile``
offxml     ``B.offxml``                           ffparam's SMIRNOFF loader + MMEngine
charmm     ``B.psf``, ``B.prm``, ``B.pdb``        ``openmm.app.CharmmPsfFile``
=========  =====================================  =====================================

``charmm`` is written only when asked for (it is not in the default :data:`FORMATS`: it
needs unscaled 1-4 pairs, which most force fields do not have).

plus the manifest ``B.export.json`` (written last, only after every check passed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openmm
import parmed
from openmm import app
from openmm import unit as omm_unit

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.errors import ConventionError, ExportVerificationError, InputError
from ffparam.export import amber, charmm, ffxml, gromacs, offxml, openmm_files
from ffparam.export.files import StagingDirectory
from ffparam.export.terms import FlatTerms, flat_terms
from ffparam.export.topology import check_coordinates, check_topology, pdb_text, verify_pdb
from ffparam.export.verify import (
    Evaluation,
    FormatCheck,
    compare,
    openmm_evaluation,
    reference_evaluation,
)
from ffparam.mm.openmm_export import build_openmm
from ffparam.params.parameter_set import ParameterSet
from ffparam.params.system import ParameterizedSystem

FORMATS: tuple[str, ...] = ("openmm", "ffxml", "gromacs", "amber", "offxml")
"""The formats written by default."""
KNOWN_FORMATS: tuple[str, ...] = (*FORMATS, "charmm")
"""Every format :func:`export_system` can write."""
MANIFEST_FORMAT = "ffparam-export/1"
DEFAULT_TOLERANCE = 1e-4
"""kcal/mol: max |E_file - E_ffparam| allowed at any conformer (issue 5)."""
DEFAULT_FORCE_TOLERANCE = 1e-3
"""kcal/mol/A: max force component difference allowed."""


def file_names(basename: str) -> dict[str, list[str]]:
    """Format -> the file names it writes."""
    return {"openmm": [f"{basename}.system.xml", f"{basename}.pdb"],
            "ffxml": [f"{basename}.forcefield.xml", f"{basename}.pdb"],
            "gromacs": [f"{basename}.top", f"{basename}.gro"],
            "amber": [f"{basename}.prmtop", f"{basename}.inpcrd"],
            "offxml": [f"{basename}.offxml"],
            "charmm": [f"{basename}.psf", f"{basename}.prm", f"{basename}.pdb"]}


def manifest_name(basename: str) -> str:
    return f"{basename}.export.json"


@dataclass
class ExportReport:
    """What :func:`export_system` wrote and how well each file reproduces ffparam.

    Attributes:
        outdir: output directory.
        files: format -> file names in ``outdir``.
        checks: format -> :class:`FormatCheck` (max |dE| kcal/mol, max |dF| kcal/mol/A).
        skipped: format -> reason it was not written.
        tolerance: the energy gate, kcal/mol.
        offxml_parameters: ids of the parameters added to / changed in the starting
            SMIRNOFF force field by the offxml export.
        manifest: path of the manifest (None until published).
    """

    outdir: Path
    files: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, FormatCheck] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE
    offxml_parameters: list[str] = field(default_factory=list)
    manifest: Path | None = None

    @property
    def max_abs_de(self) -> dict[str, float]:
        """Format -> max |E_file - E_ffparam| over conformers, kcal/mol."""
        return {fmt: check.max_abs_de for fmt, check in self.checks.items()}

    def paths(self, fmt: str) -> list[Path]:
        return [self.outdir / name for name in self.files.get(fmt, [])]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``metrics.json`` and the manifest)."""
        return {
            "format": MANIFEST_FORMAT,
            "tolerance_kcal_mol": self.tolerance,
            "files": self.files,
            "verification": {fmt: {"reader": c.reader, "max_abs_de_kcal_mol": c.max_abs_de,
                                   "max_abs_df_kcal_mol_A": c.max_abs_df,
                                   "n_conformers": c.n_conformers}
                             for fmt, c in self.checks.items()},
            "skipped": self.skipped,
            "offxml_parameters": self.offxml_parameters,
        }


@dataclass
class _Job:
    """Shared inputs of one export run."""

    system: ParameterizedSystem
    positions: np.ndarray
    reference: Evaluation
    basename: str
    residue_name: str
    tolerance: float
    force_tolerance: float
    terms: FlatTerms

    @property
    def molecule(self):
        return self.system.molecule


def export_system(
    system: ParameterizedSystem,
    outdir: str | Path,
    formats: tuple[str, ...] | list[str] = FORMATS,
    smirnoff: SmirnoffForceField | str | Path | None = None,
    extra: ParameterSet | None = None,
    basename: str = "molecule",
    positions: np.ndarray | None = None,
    residue_name: str = "MOL",
    tolerance: float = DEFAULT_TOLERANCE,
    force_tolerance: float = DEFAULT_FORCE_TOLERANCE,
    on_unsupported: str = "raise",
) -> ExportReport:
    """Export ``system`` to ``outdir`` and verify every file by reading it back.

    Args:
        system: the parameterized molecule (its current parameter values are exported).
        outdir: output directory (created if missing).
        formats: subset of :data:`KNOWN_FORMATS` (default :data:`FORMATS`).
        smirnoff: starting SMIRNOFF force field for ``offxml`` (object, name or path);
            default: the one named in ``system.source``.
        extra: SMIRKS-keyed parameters to add to it; default: every parameter the system
            uses that the starting force field lacks or holds with other values.
        basename: file name stem.
        positions: (n_conformers, n_atoms, 3) Angstrom for the energy checks and (first
            conformer) the coordinate files; default the molecule's conformers.
        residue_name: PDB/GROMACS/ffxml residue name (1-3 characters).
        tolerance: max |dE| kcal/mol at any conformer.
        force_tolerance: max force component difference kcal/mol/A.
        on_unsupported: ``"raise"`` (default) a :class:`ConventionError` when a format
            cannot hold a term form (e.g. Morse bonds in AMBER files), or ``"skip"`` the
            format and record why in :attr:`ExportReport.skipped`.

    Returns:
        The :class:`ExportReport` (also written as ``<basename>.export.json``).

    Raises:
        ExportVerificationError: a file read back does not reproduce ffparam's energies
            (nothing of this run is published; files of an earlier run stay untouched,
            its manifest included).
        ConventionError: a format cannot hold a term (with ``on_unsupported="raise"``).
    """
    formats = _check_formats(formats, on_unsupported)
    if not basename or Path(basename).name != basename:
        raise InputError(f"basename must be a plain file name stem, got {basename!r}")
    job = _job(system, positions, basename, residue_name, tolerance, force_tolerance)
    report = ExportReport(Path(outdir), tolerance=tolerance)
    names = file_names(basename)
    with StagingDirectory(outdir, basename) as stage:
        for fmt in formats:
            try:
                result = _EXPORTERS[fmt](job, stage, smirnoff, extra, report)
            except ConventionError as exc:
                if on_unsupported == "raise":
                    raise
                report.skipped[fmt] = str(exc)
                continue
            if result is None:
                continue
            report.checks[fmt] = result
            report.files[fmt] = names[fmt]
        published = list(dict.fromkeys(n for fmt in report.files for n in report.files[fmt]))
        stage.publish(published, manifest_name(basename), report.to_dict())
    report.manifest = report.outdir / manifest_name(basename)
    return report


def verify_export(
    system: ParameterizedSystem,
    outdir: str | Path,
    formats: tuple[str, ...] | list[str] | None = None,
    basename: str = "molecule",
    positions: np.ndarray | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    force_tolerance: float = DEFAULT_FORCE_TOLERANCE,
) -> dict[str, FormatCheck]:
    """Re-verify files already in ``outdir`` (e.g. on a resumed run) against ``system``.

    ``formats`` defaults to those present (all of a format's files exist). Raises
    :class:`ExportVerificationError` on the first mismatch, :class:`InputError` if a
    requested format's files are missing.
    """
    outdir = Path(outdir)
    names = file_names(basename)
    if formats is None:
        formats = [f for f in KNOWN_FORMATS if all((outdir / n).exists() for n in names[f])]
    formats = _check_formats(formats, "raise")
    for fmt in formats:
        missing = [n for n in names[fmt] if not (outdir / n).exists()]
        if missing:
            raise InputError(f"{fmt} export incomplete in {outdir}: missing {', '.join(missing)}")
    job = _job(system, positions, basename, "MOL", tolerance, force_tolerance)
    return {fmt: _VERIFIERS[fmt](job, {n: outdir / n for n in names[fmt]}) for fmt in formats}


# ---------------------------------------------------------------------- set-up
def _check_formats(formats, on_unsupported: str) -> list[str]:
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in KNOWN_FORMATS]
    if unknown:
        raise InputError(f"unknown export format(s) {', '.join(unknown)}; known: "
                         f"{', '.join(KNOWN_FORMATS)}")
    if on_unsupported not in ("raise", "skip"):
        raise InputError(f"on_unsupported must be 'raise' or 'skip', got {on_unsupported!r}")
    return list(dict.fromkeys(formats))


def _job(system: ParameterizedSystem, positions, basename: str, residue_name: str,
         tolerance: float, force_tolerance: float) -> _Job:
    if positions is None:
        system.molecule.require_conformers()
        positions = system.molecule.conformers
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim == 2:
        positions = positions[None]
    if positions.ndim != 3 or positions.shape[1:] != (system.n_atoms, 3) or not len(positions):
        raise InputError(f"positions must be (n_conformers, {system.n_atoms}, 3) Angstrom, "
                         f"got {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise InputError("positions contain non-finite values")
    reference = reference_evaluation(system, positions)
    return _Job(system, positions, reference, basename, residue_name, float(tolerance),
                float(force_tolerance), flat_terms(system))


def _create_kwargs() -> dict[str, Any]:
    return {"nonbondedMethod": app.NoCutoff, "constraints": None, "removeCMMotion": False}


# ---------------------------------------------------------------------- per format
def _export_openmm(job: _Job, stage: StagingDirectory, *_) -> FormatCheck:
    xml_name, pdb_name = file_names(job.basename)["openmm"]
    stage.file(xml_name).write_text(openmm_files.system_xml(job.system))
    stage.file(pdb_name).write_text(pdb_text(job.molecule, job.positions[0], job.residue_name))
    return _verify_openmm(job, {xml_name: stage.file(xml_name), pdb_name: stage.file(pdb_name)})


def _verify_openmm(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    xml_path, pdb_path = paths.values()
    _read("openmm", pdb_path, "openmm.app.PDBFile",
          lambda: verify_pdb(pdb_path, job.molecule, job.positions[0]))
    read = _read("openmm", xml_path, "openmm.XmlSerializer",
                 lambda: openmm.XmlSerializer.deserialize(xml_path.read_text()))
    return _compare_openmm(job, "openmm", "openmm.XmlSerializer", read, xml_path.name)


def _export_ffxml(job: _Job, stage: StagingDirectory, *_) -> FormatCheck:
    ff_name, pdb_name = file_names(job.basename)["ffxml"]
    text = ffxml.ffxml_text(job.molecule, job.terms, job.residue_name, job.system.source)
    stage.file(ff_name).write_text(text)
    if not stage.file(pdb_name).exists():
        stage.file(pdb_name).write_text(pdb_text(job.molecule, job.positions[0],
                                                 job.residue_name))
    return _verify_ffxml(job, {ff_name: stage.file(ff_name), pdb_name: stage.file(pdb_name)})


def _verify_ffxml(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    ff_path, pdb_path = paths.values()
    pdb = _read("ffxml", pdb_path, "openmm.app.PDBFile",
                lambda: verify_pdb(pdb_path, job.molecule, job.positions[0]))
    read = _read("ffxml", ff_path, "openmm.app.ForceField", lambda: app.ForceField(
        str(ff_path)).createSystem(pdb.topology, **_create_kwargs()))
    return _compare_openmm(job, "ffxml", "openmm.app.ForceField", read, ff_path.name)


def _export_gromacs(job: _Job, stage: StagingDirectory, *_) -> FormatCheck:
    top_name, gro_name = file_names(job.basename)["gromacs"]
    text = gromacs.top_text(job.molecule, job.terms, job.residue_name, job.system.source,
                            gromacs.gromacs_nonbonded(job.system, job.terms),
                            gromacs.gromacs_bonded(job.system))
    stage.file(top_name).write_text(text)
    stage.file(gro_name).write_text(gromacs.gro_text(job.molecule, job.positions[0],
                                                     job.residue_name))
    return _verify_gromacs(job, {top_name: stage.file(top_name), gro_name: stage.file(gro_name)})


def _verify_gromacs(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    top_path, gro_path = paths.values()
    gro = _read("gromacs", gro_path, "openmm.app.GromacsGroFile",
                lambda: app.GromacsGroFile(str(gro_path)))
    xyz = np.array(gro.getPositions(asNumpy=True).value_in_unit(omm_unit.angstrom))
    check_coordinates(gro_path.name, xyz, job.positions[0],
                      gromacs.GRO_COORDINATE_TOLERANCE, job.molecule)
    top = _read("gromacs", top_path, "openmm.app.GromacsTopFile",
                lambda: app.GromacsTopFile(str(top_path)))
    check_topology(top_path.name, top.topology, job.molecule)
    read = _read("gromacs", top_path, "openmm.app.GromacsTopFile",
                 lambda: top.createSystem(**_create_kwargs()))
    first = _compare_openmm(job, "gromacs", "openmm.app.GromacsTopFile", read, top_path.name)

    def parmed_system() -> openmm.System:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = parmed.load_file(str(top_path), xyz=str(gro_path))
            return structure.createSystem(**_create_kwargs())

    read = _read("gromacs", top_path, "parmed.load_file", parmed_system)
    second = _compare_openmm(job, "gromacs", "parmed.load_file", read, top_path.name)
    worst = max((first, second), key=lambda c: c.max_abs_de)
    return FormatCheck("gromacs", "openmm.app.GromacsTopFile + parmed.load_file",
                       worst.max_abs_de, max(first.max_abs_df, second.max_abs_df),
                       worst.n_conformers)


def _export_amber(job: _Job, stage: StagingDirectory, *_) -> FormatCheck:
    prmtop_name, inpcrd_name = file_names(job.basename)["amber"]
    amber.write_amber(job.molecule, job.terms, job.system.topology.exclusions,
                      job.positions[0], stage.file(prmtop_name), stage.file(inpcrd_name),
                      job.residue_name)
    return _verify_amber(job, {prmtop_name: stage.file(prmtop_name),
                               inpcrd_name: stage.file(inpcrd_name)})


def _verify_amber(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    prmtop_path, inpcrd_path = paths.values()
    prmtop = _read("amber", prmtop_path, "openmm.app.AmberPrmtopFile",
                   lambda: app.AmberPrmtopFile(str(prmtop_path)))
    check_topology(prmtop_path.name, prmtop.topology, job.molecule)
    inpcrd = _read("amber", inpcrd_path, "openmm.app.AmberInpcrdFile",
                   lambda: app.AmberInpcrdFile(str(inpcrd_path)))
    xyz = np.array(inpcrd.getPositions(asNumpy=True).value_in_unit(omm_unit.angstrom))
    check_coordinates(inpcrd_path.name, xyz, job.positions[0],
                      amber.INPCRD_COORDINATE_TOLERANCE, job.molecule)
    read = _read("amber", prmtop_path, "openmm.app.AmberPrmtopFile",
                 lambda: prmtop.createSystem(**_create_kwargs()))
    return _compare_openmm(job, "amber", "openmm.app.AmberPrmtopFile", read, prmtop_path.name)


def _export_charmm(job: _Job, stage: StagingDirectory, *_) -> FormatCheck:
    psf_name, prm_name, pdb_name = file_names(job.basename)["charmm"]
    psf, prm = charmm.charmm_texts(job.system, job.terms, job.residue_name)
    stage.file(psf_name).write_text(psf)
    stage.file(prm_name).write_text(prm)
    if not stage.file(pdb_name).exists():
        stage.file(pdb_name).write_text(pdb_text(job.molecule, job.positions[0],
                                                 job.residue_name))
    return _verify_charmm(job, {n: stage.file(n) for n in (psf_name, prm_name, pdb_name)})


def _verify_charmm(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    psf_path, prm_path, pdb_path = paths.values()
    _read("charmm", pdb_path, "openmm.app.PDBFile",
          lambda: verify_pdb(pdb_path, job.molecule, job.positions[0]))
    psf = _read("charmm", psf_path, "openmm.app.CharmmPsfFile",
                lambda: app.CharmmPsfFile(str(psf_path)))
    check_topology(psf_path.name, psf.topology, job.molecule)
    read = _read("charmm", prm_path, "openmm.app.CharmmParameterSet", lambda: psf.createSystem(
        app.CharmmParameterSet(str(prm_path)), nonbondedMethod=app.NoCutoff,
        constraints=None, removeCMMotion=False))
    return _compare_openmm(job, "charmm", "openmm.app.CharmmPsfFile", read, psf_path.name)


def _export_offxml(job: _Job, stage: StagingDirectory, smirnoff, extra,
                   report: ExportReport) -> FormatCheck | None:
    base, reason = offxml.starting_forcefield(job.system, smirnoff)
    if base is None:
        report.skipped["offxml"] = reason
        return None
    if extra is None:
        extra = offxml.changed_parameters(job.system, base)
    (name,) = file_names(job.basename)["offxml"]
    offxml.write_offxml(base, stage.file(name), extra)
    report.offxml_parameters = [f"{section}/{par.id}" for section, par in extra]
    return _verify_offxml(job, {name: stage.file(name)})


def _verify_offxml(job: _Job, paths: dict[str, Path]) -> FormatCheck:
    (path,) = paths.values()
    reread = _read("offxml", path, "SmirnoffForceField.load", lambda: SmirnoffForceField.load(
        path).parameterize(job.molecule, charges=job.system.charges()))
    got = reference_evaluation(reread, job.positions)
    return compare("offxml", "ffparam SmirnoffForceField.load + MMEngine", job.system,
                   job.reference, got, build_openmm(reread).system, job.tolerance,
                   job.force_tolerance, path.name)


def _read(fmt: str, path: Path, reader: str, load):
    """``load()``, with any failure (a corrupted or tampered file) turned into a one-line
    :class:`ExportVerificationError` naming the file and the reader."""
    try:
        return load()
    except ExportVerificationError:
        raise
    except Exception as exc:  # readers raise ValueError, KeyError, bare Exception, ...
        detail = " ".join(str(exc).split())[:300]
        raise ExportVerificationError(f"{fmt} export {path.name}: {reader} cannot read it: "
                                      f"{type(exc).__name__}: {detail}") from None


def _compare_openmm(job: _Job, fmt: str, reader: str, read: openmm.System,
                    what: str) -> FormatCheck:
    if read.getNumParticles() != job.system.n_atoms:
        raise ExportVerificationError(f"{fmt} export {what} has {read.getNumParticles()} "
                                      f"particles, the molecule {job.system.n_atoms} atoms")
    got = openmm_evaluation(read, job.positions)
    return compare(fmt, reader, job.system, job.reference, got, read, job.tolerance,
                   job.force_tolerance, what)


_EXPORTERS = {"openmm": _export_openmm, "ffxml": _export_ffxml, "gromacs": _export_gromacs,
              "amber": _export_amber, "offxml": _export_offxml, "charmm": _export_charmm}
_VERIFIERS = {"openmm": _verify_openmm, "ffxml": _verify_ffxml, "gromacs": _verify_gromacs,
              "amber": _verify_amber, "offxml": _verify_offxml, "charmm": _verify_charmm}


__all__ = ["DEFAULT_TOLERANCE", "FORMATS", "KNOWN_FORMATS", "ExportReport", "export_system",
           "file_names", "manifest_name", "verify_export"]
