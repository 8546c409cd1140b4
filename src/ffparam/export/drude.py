"""Export a system with Drude oscillators to OpenMM: ``B.system.xml`` (NonbondedForce +
``DrudeForce``, from :func:`ffparam.mm.drude.build_openmm_drude`) and ``B.pdb`` holding
the atoms and then the Drude particles in the System's particle order (atom ``n_atoms +
k`` is the Drude of ``drude.parents[k]``, named ``D`` + its parent's name, element none,
at its relaxed position for the first conformer), and ``B.forcefield.xml``: an OpenMM
ffxml whose residue template holds the Drude particles (types ``<res>-D<name>``, mass 0,
bonded to their parents, charge q_D; parents carry q - q_D), a ``<NonbondedForce>`` entry
(sigma 1 nm, epsilon 0) per Drude type and a ``<DrudeForce>`` with one ``<Particle>`` per
Drude type (``type1`` the Drude, ``type2`` its parent, charge q_D, polarizability nm^3,
Thole): ``ForceField.createSystem`` on the PDB (or on a topology without Drudes after
``Modeller.addExtraParticles``) builds the same System (OpenMM's DrudeGenerator screens
every excluded Drude pair with thole_i + thole_j and moves 0.4 amu from each parent).
Drude types with ``hbond_thole`` add a ``<CustomNonbondedForce>`` (bondCutoff 3, the
expression of :data:`ffparam.mm.drude.HBOND_THOLE_ENERGY`, per-atom q/s/h); a donor H
1-4 to a screened acceptor is refused there (its Drude is four bonds away, so the ffxml's
bond exclusions would count a pair the System XML and the engine leave out).

Verified like every export: the files are read back (the ffxml through
``openmm.app.ForceField.createSystem`` on the PDB's topology) (``openmm.XmlSerializer``,
``openmm.app.PDBFile``); the System is evaluated at the PDB's particle positions and with
OpenMM's own Drude relaxation (``DrudeSCFIntegrator`` at fixed cores) at every conformer,
and compared with :class:`~ffparam.mm.drude.DrudeEngine`. Files are staged and published
only when every check passes (:class:`ffparam.export.files.StagingDirectory`).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import openmm
from openmm import app
from openmm import unit as omm_unit

from ffparam.errors import ExportVerificationError, InputError
from ffparam.export.exporter import (
    DEFAULT_FORCE_TOLERANCE,
    DEFAULT_TOLERANCE,
    ExportReport,
    file_names,
    manifest_name,
)
from ffparam.export.files import StagingDirectory
from ffparam.export.topology import (
    PDB_COORDINATE_TOLERANCE,
    atom_names,
    check_coordinates,
    check_topology,
    openmm_topology,
)
from ffparam.export.verify import FormatCheck
from ffparam.mm import evaluate_openmm
from ffparam.mm.drude import (
    DrudeEngine,
    build_openmm_drude,
    evaluate_openmm_drude_scf,
    hbond_thole_force,
)
from ffparam.params.system import ParameterizedSystem
from ffparam.units import NM_PER_ANGSTROM

READER = "openmm.XmlSerializer + openmm.app.PDBFile + DrudeSCFIntegrator"
FFXML_READER = "openmm.app.ForceField + openmm.app.PDBFile + DrudeSCFIntegrator"


def drude_topology(system: ParameterizedSystem, residue_name: str = "MOL") -> app.Topology:
    """The molecule's OpenMM topology plus one element-less atom ``D<parent name>`` per
    Drude particle (appended in ``drude.parents`` order, bonded to its parent)."""
    topology = openmm_topology(system.molecule, residue_name)
    atoms = list(topology.atoms())
    residue = next(topology.residues())
    names = atom_names(system.molecule)
    for k, parent in enumerate(system.drude.parents.tolist()):
        name = f"D{names[parent]}"[:4]
        drude = topology.addAtom(name, None, residue, id=str(system.n_atoms + k + 1))
        topology.addBond(atoms[parent], drude)
    return topology


def drude_pdb_text(system: ParameterizedSystem, positions: np.ndarray,
                   residue_name: str = "MOL") -> str:
    """PDB text of the atoms (``positions`` (n_atoms, 3) Angstrom) and their relaxed Drude
    particles."""
    xyz = np.asarray(positions, dtype=float).reshape(1, system.n_atoms, 3)
    drudes = DrudeEngine(system).drude_positions(xyz)[0]
    full = np.concatenate([xyz[0], drudes]) * NM_PER_ANGSTROM
    buffer = io.StringIO()
    app.PDBFile.writeFile(drude_topology(system, residue_name),
                          omm_unit.Quantity(full, omm_unit.nanometer), buffer, keepIds=True)
    return buffer.getvalue()


def export_drude(system: ParameterizedSystem, outdir: str | Path, basename: str = "molecule",
                 positions: np.ndarray | None = None, residue_name: str = "MOL",
                 tolerance: float = DEFAULT_TOLERANCE,
                 force_tolerance: float = DEFAULT_FORCE_TOLERANCE) -> ExportReport:
    """Write, read back, verify and publish ``B.system.xml`` and ``B.pdb`` of a Drude
    system (format ``openmm``); returns the :class:`ExportReport` (also the manifest).

    Raises:
        ExportVerificationError: a file read back does not reproduce ffparam's energies
            (max |dE| > ``tolerance`` kcal/mol or |dF| > ``force_tolerance`` kcal/mol/A);
            nothing is published.
    """
    if system.drude is None:
        raise InputError("system has no Drude particles (use params.drude.add_drude)")
    if not basename or Path(basename).name != basename:
        raise InputError(f"basename must be a plain file name stem, got {basename!r}")
    if positions is None:
        system.molecule.require_conformers()
        positions = system.molecule.conformers
    positions = np.asarray(positions, dtype=float).reshape(-1, system.n_atoms, 3)
    report = ExportReport(Path(outdir), tolerance=tolerance)
    xml_name, pdb_name = file_names(basename)["openmm"]
    ff_name = file_names(basename)["ffxml"][0]
    with StagingDirectory(outdir, basename) as stage:
        stage.file(xml_name).write_text(openmm.XmlSerializer.serialize(
            build_openmm_drude(system).system))
        stage.file(pdb_name).write_text(drude_pdb_text(system, positions[0], residue_name))
        stage.file(ff_name).write_text(drude_ffxml_text(system, residue_name))
        report.checks["openmm"] = verify_drude_export(
            system, stage.file(xml_name), stage.file(pdb_name), positions, tolerance,
            force_tolerance)
        report.checks["ffxml"] = verify_drude_export(
            system, stage.file(ff_name), stage.file(pdb_name), positions, tolerance,
            force_tolerance)
        report.files["openmm"] = [xml_name, pdb_name]
        report.files["ffxml"] = [ff_name, pdb_name]
        stage.publish([xml_name, pdb_name, ff_name], manifest_name(basename),
                      report.to_dict())
    report.manifest = report.outdir / manifest_name(basename)
    return report


def verify_drude_export(system: ParameterizedSystem, xml_path: Path, pdb_path: Path,
                        positions: np.ndarray, tolerance: float = DEFAULT_TOLERANCE,
                        force_tolerance: float = DEFAULT_FORCE_TOLERANCE) -> FormatCheck:
    """Read both files back and compare with the DrudeEngine (see the module docstring);
    ``xml_path`` is a serialized System or, named ``*.forcefield.xml``, an ffxml."""
    ffxml = Path(xml_path).name.endswith(".forcefield.xml")
    try:
        pdb = app.PDBFile(str(pdb_path))
        read = (app.ForceField(str(xml_path)).createSystem(
            pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None,
            removeCMMotion=False) if ffxml
            else openmm.XmlSerializer.deserialize(Path(xml_path).read_text()))
    except Exception as exc:  # readers raise ValueError, KeyError, bare Exception, ...
        raise ExportVerificationError(f"openmm export {Path(xml_path).name}: cannot read it "
                                      f"back: {type(exc).__name__}: {exc}") from None
    n, n_total = system.n_atoms, system.n_atoms + len(system.drude)
    if read.getNumParticles() != n_total or pdb.topology.getNumAtoms() != n_total:
        raise ExportVerificationError(
            f"openmm export: {read.getNumParticles()} System particles and "
            f"{pdb.topology.getNumAtoms()} PDB atoms, expected {n} atoms + "
            f"{len(system.drude)} Drude particles")
    xyz = np.array(pdb.getPositions(asNumpy=True).value_in_unit(omm_unit.angstrom))
    check_topology(Path(pdb_path).name, _atoms_only(pdb.topology, n), system.molecule)
    engine = DrudeEngine(system)
    ours = engine.compute(positions)
    expected = np.concatenate([positions[0], engine.drude_positions(positions[:1])[0]])
    check_coordinates(Path(pdb_path).name, xyz, expected, PDB_COORDINATE_TOLERANCE,
                      system.molecule)
    at_pdb, forces, _ = evaluate_openmm(read, expected[None])
    scf, _ = evaluate_openmm_drude_scf(read, positions, n)
    de = max(abs(float(at_pdb[0] - ours.energy[0])),
             float(np.abs(scf - ours.energy.numpy()).max()))
    df = float(np.abs(forces[0, :n] - ours.forces[0].numpy()).max())
    if de > tolerance or df > force_tolerance:
        raise ExportVerificationError(
            f"openmm export {Path(xml_path).name}: |dE| {de:.3g} kcal/mol, |dF| {df:.3g} "
            f"kcal/mol/A against ffparam's Drude engine (tolerances {tolerance:g}, "
            f"{force_tolerance:g})")
    if ffxml:
        return FormatCheck("ffxml", FFXML_READER, de, df, len(positions))
    return FormatCheck("openmm", READER, de, df, len(positions))


def drude_ffxml_text(system: ParameterizedSystem, residue_name: str = "MOL") -> str:
    """The ffxml of a Drude system (see the module docstring): the fixed-charge ffxml of
    :func:`ffparam.export.ffxml.ffxml_text` plus the Drude particles and ``DrudeForce``."""
    from ffparam.export.ffxml import ffxml_text
    from ffparam.export.terms import flat_terms

    drude, p = system.drude, system.parameters.vector()
    root = ET.fromstring(ffxml_text(system.molecule, flat_terms(system), residue_name,
                                    system.source))
    names = atom_names(system.molecule)
    residue = root.find("Residues/Residue")
    atoms = {a.get("name"): a for a in residue.findall("Atom")}
    nonbonded = root.find("NonbondedForce")
    force = ET.SubElement(root, "DrudeForce")  # after NonbondedForce, as OpenMM requires
    q_d, alpha, thole = drude.charges(p), drude.alphas(p), p[drude.thole_index]
    for k, parent in enumerate(drude.parents.tolist()):
        name = f"D{names[parent]}"[:4]
        parent_type, drude_type = f"{residue_name}-{names[parent]}", f"{residue_name}-{name}"
        ET.SubElement(root.find("AtomTypes"), "Type", name=drude_type,
                      attrib={"class": drude_type}, mass="0.0")
        core = atoms[names[parent]]
        core.set("charge", repr(float(core.get("charge")) - float(q_d[k])))
        ET.SubElement(residue, "Atom", name=name, type=drude_type, charge=repr(float(q_d[k])))
        ET.SubElement(residue, "Bond", atomName1=names[parent], atomName2=name)
        ET.SubElement(nonbonded, "Atom", type=drude_type, sigma="1.0", epsilon="0.0")
        ET.SubElement(force, "Particle", type1=drude_type, type2=parent_type,
                      charge=repr(float(q_d[k])),
                      polarizability=repr(float(alpha[k]) * NM_PER_ANGSTROM**3),
                      thole=repr(float(thole[k])))
    _add_hbond_ffxml(system, root, residue_name)
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _add_hbond_ffxml(system: ParameterizedSystem, root: ET.Element, residue_name: str
                     ) -> None:
    """The ``hbond_thole`` screening as an ffxml ``<CustomNonbondedForce>`` (module
    docstring); nothing when the system has none."""
    force = hbond_thole_force(system)
    if force is None:
        return
    drude = system.drude
    pairs_14 = {tuple(sorted(pair)) for pair in system.topology.pairs_14.tolist()}
    screened = drude.parents[drude.hbond_index >= 0].tolist()
    if any(tuple(sorted((a, h))) in pairs_14 for a in screened for h in drude.donors.tolist()):
        raise InputError("hbond_thole with a donor hydrogen 1-4 to a screened acceptor "
                         "cannot be written as ffxml (bond-count exclusions); use the "
                         "System XML")
    names = atom_names(system.molecule)
    types = [f"{residue_name}-{names[i]}" for i in range(system.n_atoms)]
    types += [f"{residue_name}-{f'D{names[a]}'[:4]}" for a in drude.parents.tolist()]
    out = ET.SubElement(root, "CustomNonbondedForce", energy=force.getEnergyFunction(),
                        bondCutoff="3")
    for k in range(force.getNumPerParticleParameters()):
        ET.SubElement(out, "PerParticleParameter", name=force.getPerParticleParameterName(k))
    for i, name in enumerate(types):
        q, s, h = force.getParticleParameters(i)
        ET.SubElement(out, "Atom", type=name, q=repr(q), s=repr(s), h=repr(h))


def _atoms_only(topology: app.Topology, n_atoms: int) -> app.Topology:
    """A copy of ``topology`` without its Drude particles (the atoms after ``n_atoms``)."""
    out = app.Topology()
    residue = out.addResidue("MOL", out.addChain("A"))
    atoms = [out.addAtom(a.name, a.element, residue) for a in topology.atoms()
             if a.index < n_atoms]
    for bond in topology.bonds():
        if bond[0].index < n_atoms and bond[1].index < n_atoms:
            out.addBond(atoms[bond[0].index], atoms[bond[1].index])
    return out
