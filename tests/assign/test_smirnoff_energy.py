"""Sage systems through the MM engine and OpenMM, and the improper-torsion convention.

* ffparam's MMEngine and the OpenMM System from ``ffparam.mm.to_openmm`` agree per term
  on Sage-parameterized molecules (charged, S, aromatic N, amide impropers).
* The SMIRNOFF improper energy equals an OpenMM PeriodicTorsionForce built in this test
  straight from the raw XML the way OpenFF Interchange builds it
  (openff/interchange/smirnoff/_valence.py, SMIRNOFFImproperTorsionCollection and
  interop/openmm/_valence.py): the key (a, centre, b, c) with a < b < c, terms
  (centre, a, b, c), (centre, b, c, a), (centre, c, a, b), each with k / idivf (auto 3).
  A phase of 30 degrees makes the sign of the improper angle matter, so a wrong
  handedness would fail the test.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import openmm
import pytest
from openmm import unit

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.chem import Molecule
from ffparam.mm import MMEngine, build_openmm, evaluate_openmm

MINIMAL = Path(__file__).parents[1] / "data" / "assign" / "smirnoff" / "minimal.offxml"


@pytest.fixture(scope="module")
def sage() -> SmirnoffForceField:
    return SmirnoffForceField.load("sage")


@pytest.mark.parametrize("smiles,charges", [("CC(=O)[O-]", "am1bcc"),
                                            ("CS(=O)(=O)Nc1ccncc1", "gasteiger"),
                                            ("CC(=O)Nc1ccc(O)cc1", "mmff94")])
def test_sage_engine_matches_openmm(sage: SmirnoffForceField, smiles: str,
                                    charges: str) -> None:
    mol = Molecule.from_smiles(smiles).generate_conformers(3, rms_threshold=0.0)
    system = sage.parameterize(mol, charges=charges)
    assert system.term_group("ImproperTorsions") is not None
    result = MMEngine(system).compute(mol.conformers)
    export = build_openmm(system)
    energy, forces, groups = evaluate_openmm(export.system, mol.conformers,
                                             export.group_names)
    np.testing.assert_allclose(result.energy.numpy(), energy, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.forces.numpy(), forces, atol=1e-4)
    for name in ("Bonds", "Angles", "ProperTorsions", "ImproperTorsions"):
        np.testing.assert_allclose(result.terms[name].numpy(), groups[name],
                                   rtol=1e-6, atol=1e-8)


def interchange_style_impropers(path: Path, mol: Molecule, centres: dict[int, str],
                                positions: np.ndarray, handedness: int = 1) -> float:
    """Improper energy (kcal/mol) of ``centres`` (atom -> improper id) computed by OpenMM
    from the raw offxml attributes, rows as OpenFF Interchange writes them."""
    root = ET.parse(path).getroot()
    raw = {e.attrib["id"]: e.attrib for e in root.find("ImproperTorsions")}
    force = openmm.PeriodicTorsionForce()
    for centre, pid in centres.items():
        att = raw[pid]
        k = float(att["k1"].split("*")[0])
        phase = math.radians(float(att["phase1"].split("*")[0]))
        idivf = float(att.get("idivf1", 3.0))
        a, b, c = sorted(n.GetIdx() for n in mol.rdmol.GetAtomWithIdx(centre).GetNeighbors())
        perms = [(a, b, c), (b, c, a), (c, a, b)]
        if handedness < 0:
            perms = [(a, c, b), (c, b, a), (b, a, c)]
        for p in perms:
            force.addTorsion(centre, *p, int(att["periodicity1"]), phase,
                             k / idivf * 4.184)
    omm = openmm.System()
    for _ in range(mol.n_atoms):
        omm.addParticle(12.0)
    omm.addForce(force)
    context = openmm.Context(omm, openmm.VerletIntegrator(1.0),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions * 0.1)
    energy = context.getState(getEnergy=True).getPotentialEnergy()
    return energy.value_in_unit(unit.kilojoule_per_mole) / 4.184


def test_improper_energy_matches_interchange_convention(tmp_path: Path) -> None:
    """Propene C=CC in minimal.offxml with the improper phase set to 30 degrees: C0 and
    C1 are the X3 carbons, both typed i1 (i2 needs an O). Geometry randomly distorted."""
    text = MINIMAL.read_text().replace(
        'id="i1" periodicity1="2" phase1="180.0 * degree"',
        'id="i1" periodicity1="2" phase1="30.0 * degree"')
    path = tmp_path / "phase30.offxml"
    path.write_text(text)
    ff = SmirnoffForceField.load(path)
    mol = Molecule.from_smiles("C=CC").generate_conformers(1)
    rng = np.random.default_rng(7)
    xyz = mol.conformers + rng.normal(scale=0.15, size=mol.conformers.shape)
    system = ff.parameterize(mol.with_conformers(xyz), charges="gasteiger")
    ours = MMEngine(system).compute(xyz, forces=False).terms["ImproperTorsions"].numpy()[0]
    centres = {0: "i1", 1: "i1"}
    reference = interchange_style_impropers(path, mol, centres, xyz[0])
    mirrored = interchange_style_impropers(path, mol, centres, xyz[0], handedness=-1)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert abs(mirrored - reference) > 1e-3  # the test can tell the two handednesses


def test_sage_improper_energy_fluorobenzene(sage: SmirnoffForceField) -> None:
    """All six ring carbons of fluorobenzene carry i1 (hand-checked in
    test_smirnoff_typing); the improper energy equals the Interchange-style reference."""
    mol = Molecule.from_smiles("Fc1ccccc1").generate_conformers(1)
    xyz = mol.conformers + np.random.default_rng(3).normal(scale=0.1,
                                                           size=mol.conformers.shape)
    system = sage.parameterize(mol, charges="gasteiger")
    ours = MMEngine(system).compute(xyz, forces=False).terms["ImproperTorsions"].numpy()[0]
    from ffparam.assign.smirnoff import resolve_forcefield

    reference = interchange_style_impropers(resolve_forcefield("sage"), mol,
                                            dict.fromkeys(range(1, 7), "i1"), xyz[0])
    assert ours > 1e-3
    assert ours == pytest.approx(reference, rel=1e-9)
