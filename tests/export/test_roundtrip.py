"""Round trips: every export read back by OpenMM's (or ParmEd's) own readers, evaluated
with ffparam.mm.evaluate_openmm (not the export box's evaluator), must reproduce ffparam's
MMEngine energies within 1e-4 kcal/mol at every conformer; plus the file-format traps
checked in the files themselves (AMBER K = k/2, SCEE/SCNB, GROMACS defaults and pairs,
one count per 1-4 pair in rings, PDB names and CONECT, one ffxml type per atom).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import openmm
import parmed
import pytest
from openmm import app

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.export import FORMATS, export_system, verify_export
from ffparam.mm import MMEngine, evaluate_openmm
from tests.export.conftest import CASES

TOL = 1e-4
NO_CUTOFF = {"nonbondedMethod": app.NoCutoff, "constraints": None}


def reread_energies(fmt: str, outdir, system) -> np.ndarray:
    """Energies (n_conf,) kcal/mol of the exported files, read independently."""
    mol = system.molecule
    if fmt == "offxml":
        reread = SmirnoffForceField.load(outdir / "molecule.offxml").parameterize(
            mol, charges=system.charges())
        return MMEngine(reread).compute(mol.conformers, forces=False).energy.numpy()
    if fmt == "openmm":
        omm = openmm.XmlSerializer.deserialize((outdir / "molecule.system.xml").read_text())
    elif fmt == "ffxml":
        pdb = app.PDBFile(str(outdir / "molecule.pdb"))
        omm = app.ForceField(str(outdir / "molecule.forcefield.xml")).createSystem(
            pdb.topology, **NO_CUTOFF)
    elif fmt == "gromacs":
        omm = app.GromacsTopFile(str(outdir / "molecule.top")).createSystem(**NO_CUTOFF)
    else:
        omm = app.AmberPrmtopFile(str(outdir / "molecule.prmtop")).createSystem(**NO_CUTOFF)
    energies, _, _ = evaluate_openmm(omm, mol.conformers)
    return energies


@pytest.fixture(scope="module")
def exported(systems, tmp_path_factory):
    """name -> (system, report, outdir), exported once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            outdir = tmp_path_factory.mktemp(name)
            system = systems(name)
            cache[name] = (system, export_system(system, outdir), outdir)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_format_reproduces_ffparam(exported, name):
    system, report, outdir = exported(name)
    reference = MMEngine(system).compute(system.molecule.conformers, forces=False)
    ref = reference.energy.numpy()
    assert np.ptp(ref) > 0.1, "conformers must differ in energy for the check to bite"
    assert np.all(np.abs(reference.terms_numpy()["ProperTorsions"]) > 1e-3)
    gaff = name.endswith("gaff2")
    expected = [f for f in FORMATS if not (gaff and f == "offxml")]
    assert sorted(report.checks) == sorted(expected)
    for fmt in expected:
        energies = reread_energies(fmt, outdir, system)
        np.testing.assert_allclose(energies, ref, rtol=0, atol=TOL, err_msg=fmt)
        assert report.max_abs_de[fmt] <= TOL
        assert report.checks[fmt].n_conformers == system.molecule.n_conformers
    if gaff:
        assert "GAFF2" in report.skipped["offxml"]
    manifest = json.loads((outdir / "molecule.export.json").read_text())
    assert manifest["verification"]["amber"]["max_abs_de_kcal_mol"] <= TOL
    assert not list(outdir.glob(".ffparam-export-*"))


@pytest.mark.parametrize("name", ["cyclobutanol-sage", "cyclohexylammonium-sage",
                                  "acetaminophen-gaff2"])
def test_amber_prmtop_conventions(exported, name):
    """K = k/2 in the file, SCEE 1.2 / SCNB 2.0 on every dihedral that owns a 1-4 pair,
    and each 1-4 pair of the molecule owned by exactly one dihedral."""
    system, _, outdir = exported(name)
    parm = parmed.amber.AmberParm(str(outdir / "molecule.prmtop"))
    group = system.term_group("Bonds")
    values = system.parameters.vector()
    i, j = group.atoms[0]
    k_internal = values[group.param_index["k"][0]]
    bond = next(b for b in parm.bonds if {b.atom1.idx, b.atom2.idx} == {i, j})
    assert bond.type.k == pytest.approx(k_internal / 2, rel=1e-7)
    owners = [d for d in parm.dihedrals if not d.ignore_end and not d.improper]
    ends = [tuple(sorted((d.atom1.idx, d.atom4.idx))) for d in owners]
    assert len(ends) == len(set(ends))
    assert set(ends) == {tuple(p) for p in system.topology.pairs_14.tolist()}
    for d in owners:
        assert d.type.scee == pytest.approx(1.2, rel=1e-6)
        epsilon = (d.atom1.epsilon * d.atom4.epsilon) ** 0.5
        if epsilon > 0:  # zero-epsilon pairs (GAFF2 ho) carry no LJ 1-4 at all
            assert d.type.scnb == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("name", ["cyclobutanol-sage", "cyclohexylammonium-sage"])
def test_gromacs_defaults_and_pairs(exported, name):
    system, _, outdir = exported(name)
    text = (outdir / "molecule.top").read_text()
    defaults = re.search(r"\[ defaults \]\n;.*\n(.*)\n", text).group(1).split()
    assert defaults[:3] == ["1", "2", "yes"]
    assert float(defaults[3]) == pytest.approx(0.5)
    assert float(defaults[4]) == pytest.approx(1 / 1.2, rel=1e-9)
    block = text.split("[ pairs ]")[1].split("[")[0]
    pairs = [tuple(sorted(int(x) - 1 for x in line.split()[:2]))
             for line in block.splitlines() if line and not line.startswith(";")]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == {tuple(p) for p in system.topology.pairs_14.tolist()}


def test_pdb_and_ffxml_layout(exported):
    system, _, outdir = exported("chlorothioanisole-sage")
    mol = system.molecule
    pdb = app.PDBFile(str(outdir / "molecule.pdb"))
    names = [a.name for a in pdb.topology.atoms()]
    assert len(set(names)) == mol.n_atoms and names[:3] == ["C1", "S1", "C2"]
    assert [r.name for r in pdb.topology.residues()] == ["MOL"]
    assert pdb.topology.getNumBonds() == len(mol.bonds)
    assert "CONECT" in (outdir / "molecule.pdb").read_text()
    root = ET.parse(outdir / "molecule.forcefield.xml").getroot()
    assert len(root.find("AtomTypes")) == mol.n_atoms
    charges = [float(a.get("charge")) for a in root.find("Residues/Residue").iter("Atom")]
    np.testing.assert_allclose(charges, system.charges(), rtol=0, atol=1e-15)
    nonbonded = root.find("NonbondedForce")
    assert float(nonbonded.get("coulomb14scale")) == pytest.approx(1 / 1.2, rel=1e-9)
    assert float(nonbonded.get("lj14scale")) == 0.5
    smirnoff_impropers = root.find("PeriodicTorsionForce[@ordering='smirnoff']")
    n_improper_keys = len(system.term_group("ImproperTorsions")) // 3
    assert len(smirnoff_impropers.findall("Improper")) == n_improper_keys
    group = system.term_group("ImproperTorsions")
    k_rows = system.parameters.vector()[group.param_index["k"]] * group.scale  # kcal/mol
    k_file = sorted({float(e.get("k1")) for e in smirnoff_impropers.findall("Improper")})
    np.testing.assert_allclose(k_file, sorted(set(k_rows * 4.184)), rtol=1e-12)
    assert np.allclose(group.scale, 1 / 3)


def test_verify_export_rechecks_files(exported):
    system, report, outdir = exported("cyclobutanol-sage")
    checks = verify_export(system, outdir)
    assert sorted(checks) == sorted(report.checks)
    for fmt, check in checks.items():
        assert check.max_abs_de == pytest.approx(report.checks[fmt].max_abs_de, abs=1e-9)


def test_gaff2_amber_types_and_masses(exported):
    system, _, outdir = exported("acetaminophen-gaff2")
    parm = parmed.amber.AmberParm(str(outdir / "molecule.prmtop"))
    assert [a.type for a in parm.atoms] == list(system.nonbonded.vdw_ids)
    np.testing.assert_allclose([a.mass for a in parm.atoms], system.molecule.masses, atol=1e-6)
    assert math.isclose(sum(a.charge for a in parm.atoms), 0.0, abs_tol=1e-6)


def test_ffxml_keeps_symmetric_atoms_apart(systems, tmp_path):
    """Methyl hydrogens and mirror-image ring atoms get distinct charges (net charge
    kept); OpenMM's template matcher must still map every atom onto its own type."""
    system = systems("chlorothioanisole-sage")
    vector = system.parameters.vector()
    idx = system.nonbonded.charge_index
    shifts = np.linspace(-0.03, 0.03, system.n_atoms)
    vector[idx] += shifts - shifts.mean()
    skewed = system.with_parameters(system.parameters.with_vector(vector))
    report = export_system(skewed, tmp_path, formats=("ffxml",))
    assert report.max_abs_de["ffxml"] <= TOL
    energies = reread_energies("ffxml", tmp_path, skewed)
    ref = MMEngine(skewed).compute(skewed.molecule.conformers, forces=False).energy.numpy()
    np.testing.assert_allclose(energies, ref, rtol=0, atol=TOL)
