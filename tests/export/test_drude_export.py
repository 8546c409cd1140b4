"""Drude export: System XML with DrudeForce + PDB with the Drude particles, read back and
re-evaluated in OpenMM; tampering is caught; `ffparam bespoke --polarizable`."""

import subprocess
import sys

import numpy as np
import openmm
import pytest
from openmm import app
from openmm import unit as omm_unit

from ffparam.chem import Molecule
from ffparam.errors import ExportVerificationError
from ffparam.export.drude import export_drude, verify_drude_export
from ffparam.mm.drude import DrudeEngine
from ffparam.params.drude import add_drude
from tests.mm.element_typed import element_typed_system


@pytest.fixture(scope="module")
def chlorobenzene():
    mol = Molecule.from_smiles("Clc1ccccc1", name="cb").generate_conformers(1, seed=3)
    rng = np.random.default_rng(2)
    coords = mol.conformers[:1] + rng.normal(0, 0.05, (3, mol.n_atoms, 3))
    return add_drude(element_typed_system(mol)), coords


def test_export_writes_system_and_pdb_in_particle_order(chlorobenzene, tmp_path):
    system, coords = chlorobenzene
    report = export_drude(system, tmp_path, "cb", positions=coords)
    check = report.checks["openmm"]
    assert check.max_abs_de < 1e-6 and check.n_conformers == 3
    read = openmm.XmlSerializer.deserialize((tmp_path / "cb.system.xml").read_text())
    drude = next(f for f in read.getForces() if isinstance(f, openmm.DrudeForce))
    n, parents = system.n_atoms, system.drude.parents.tolist()
    assert drude.getNumParticles() == len(parents) == 7
    assert [drude.getParticleParameters(k)[:2] for k in range(7)] == [
        [n + k, p] for k, p in enumerate(parents)]
    pdb = app.PDBFile(str(tmp_path / "cb.pdb"))
    atoms = list(pdb.topology.atoms())
    assert len(atoms) == read.getNumParticles() == n + 7
    assert [a.element is None for a in atoms] == [False] * n + [True] * 7
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(omm_unit.angstrom)
    relaxed = DrudeEngine(system).drude_positions(coords[:1])[0]
    assert np.abs(np.asarray(xyz)[n:] - relaxed).max() < 6e-4  # PDB: 3 decimals
    assert (tmp_path / "cb.export.json").exists()


def test_tampered_drude_charge_is_caught(chlorobenzene, tmp_path):
    system, coords = chlorobenzene
    export_drude(system, tmp_path, "cb", positions=coords)
    xml = tmp_path / "cb.system.xml"
    read = openmm.XmlSerializer.deserialize(xml.read_text())
    drude = next(f for f in read.getForces() if isinstance(f, openmm.DrudeForce))
    params = drude.getParticleParameters(0)
    params[6] = params[6] * 1.2  # polarizability 20 % off
    drude.setParticleParameters(0, *params)
    xml.write_text(openmm.XmlSerializer.serialize(read))
    with pytest.raises(ExportVerificationError, match="Drude engine"):
        verify_drude_export(system, xml, tmp_path / "cb.pdb", coords)


def test_bespoke_polarizable_cli(tmp_path):
    out = tmp_path / "acetone"
    cmd = [sys.executable, "-m", "ffparam.cli.main", "bespoke", "CC(C)=O", "--name",
           "acetone", "--polarizable", "--polarizability-method", "hf/6-31g", "--out",
           str(out), "--charges", "gasteiger", "--md-ps", "0", "--validation-conformers", "0",
           "--no-validate-geometry", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    read = openmm.XmlSerializer.deserialize((out / "acetone.system.xml").read_text())
    assert any(isinstance(f, openmm.DrudeForce) for f in read.getForces())
    pdb = app.PDBFile(str(out / "acetone.pdb"))
    assert pdb.topology.getNumAtoms() == read.getNumParticles() == 10 + 4  # 4 heavy atoms
