"""Drude ffxml export: ``openmm.app.ForceField`` with a ``<DrudeForce>`` and the Drude
particles in the residue template rebuilds the System (energies equal ffparam's Drude
engine and the System XML's to 1e-6 relative), also from a topology without Drudes through
``Modeller.addExtraParticles``; a tampered polarizability is caught."""

import numpy as np
import openmm
import pytest
from openmm import app

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import ExportVerificationError
from ffparam.export.drude import drude_ffxml_text, export_drude, verify_drude_export
from ffparam.export.topology import openmm_topology
from ffparam.mm.drude import DrudeEngine, evaluate_openmm_drude_scf
from ffparam.params.drude import add_drude
from ffparam.units import NM_PER_ANGSTROM
from tests.mm.element_typed import element_typed_system


@pytest.fixture(scope="module", params=["sage-acetone", "element-chlorobenzene"])
def system(request):
    if request.param == "sage-acetone":
        mol = Molecule.from_smiles("CC(C)=O", name="acetone").generate_conformers(1, seed=7)
        return add_drude(assign_parameters(mol, "sage", charges="gasteiger"))
    mol = Molecule.from_smiles("Clc1ccccc1", name="cb").generate_conformers(1, seed=3)
    return add_drude(element_typed_system(mol))


def _coords(system):
    rng = np.random.default_rng(5)
    return system.molecule.conformers[:1] + rng.normal(0, 0.05, (2, system.n_atoms, 3))


def test_ffxml_rebuilds_the_drude_system(system, tmp_path):
    coords = _coords(system)
    report = export_drude(system, tmp_path, "m", positions=coords)
    assert report.files["ffxml"] == ["m.forcefield.xml", "m.pdb"]
    energy = float(np.abs(DrudeEngine(system).compute(coords, forces=False).energy).min())
    check = report.checks["ffxml"]
    assert check.max_abs_de < 1e-6 * max(energy, 1.0) and check.n_conformers == 2
    pdb = app.PDBFile(str(tmp_path / "m.pdb"))
    built = app.ForceField(str(tmp_path / "m.forcefield.xml")).createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    serialized = openmm.XmlSerializer.deserialize((tmp_path / "m.system.xml").read_text())
    ours, theirs = (next(f for f in s.getForces() if isinstance(f, openmm.DrudeForce))
                    for s in (serialized, built))
    assert theirs.getNumParticles() == ours.getNumParticles() == len(system.drude)
    assert theirs.getNumScreenedPairs() == ours.getNumScreenedPairs()
    for k in range(ours.getNumParticles()):
        a, b = ours.getParticleParameters(k), theirs.getParticleParameters(k)
        assert a[:2] == b[:2]
        assert b[5]._value == pytest.approx(a[5]._value, rel=1e-12)  # charge
        assert b[6]._value == pytest.approx(a[6]._value, rel=1e-12)  # alpha nm^3
    masses = [built.getParticleMass(i)._value for i in range(built.getNumParticles())]
    np.testing.assert_allclose(masses, [serialized.getParticleMass(i)._value
                                        for i in range(serialized.getNumParticles())])


def test_add_extra_particles_from_a_topology_without_drudes(system):
    """Modeller.addExtraParticles places the Drudes from the ffxml's template; OpenMM's own
    Drude relaxation then gives ffparam's energy."""
    coords = _coords(system)
    forcefield = app.ForceField()
    forcefield.loadFile(_as_file(drude_ffxml_text(system)))
    modeller = app.Modeller(openmm_topology(system.molecule), coords[0] * NM_PER_ANGSTROM)
    modeller.addExtraParticles(forcefield)
    n = system.n_atoms
    assert modeller.topology.getNumAtoms() == n + len(system.drude)
    built = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff,
                                    constraints=None)
    scf, _ = evaluate_openmm_drude_scf(built, coords, n)
    ours = DrudeEngine(system).compute(coords, forces=False).energy.numpy()
    np.testing.assert_allclose(scf, ours, rtol=1e-6, atol=1e-6)


def test_tampered_ffxml_polarizability_is_caught(system, tmp_path):
    coords = _coords(system)
    export_drude(system, tmp_path, "m", positions=coords)
    path = tmp_path / "m.forcefield.xml"
    text = path.read_text()
    alpha = text.split('polarizability="')[1].split('"')[0]
    path.write_text(text.replace(f'polarizability="{alpha}"',
                                 f'polarizability="{float(alpha) * 1.2!r}"', 1))
    with pytest.raises(ExportVerificationError, match="Drude engine"):
        verify_drude_export(system, path, tmp_path / "m.pdb", coords)


def _as_file(text):
    import io

    return io.StringIO(text)
