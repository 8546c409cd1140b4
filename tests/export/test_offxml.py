"""SMIRNOFF export: Sage plus bespoke or fitted parameters, loadable again, reproducing the
system's energies; GAFF2 systems and unknown starting force fields are skipped with a
reason. The independent check reloads the written file in the test itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.export import export_system
from ffparam.mm import MMEngine
from ffparam.params import Parameter, ParameterKey, ParameterSet
from tests.export.conftest import perturbed_molecule

BESPOKE = "[#6X4H3:1]-[#16X2:2]-[#6X3:3]:[#6X3:4]"
"""Bespoke torsion for the methyl-S-aryl bond of 4-chlorothioanisole."""


def _bespoke_extra() -> ParameterSet:
    extra = ParameterSet()
    extra.add("ProperTorsions", Parameter(
        BESPOKE, {"k1": 0.71, "phase1": math.pi, "k2": 0.23, "phase2": 0.0},
        {"periodicity1": 2, "periodicity2": 1}))
    return extra


@pytest.fixture(scope="module")
def bespoke_system(tmp_path_factory):
    """4-chlorothioanisole parameterized by Sage + the bespoke torsion (as the pipeline
    would: written to an offxml, loaded, parameterized with fixed charges)."""
    path = tmp_path_factory.mktemp("ff") / "start.offxml"
    SmirnoffForceField.load("sage").to_offxml(path, extra=_bespoke_extra())
    mol = perturbed_molecule("CSc1ccc(Cl)cc1", "chlorothioanisole")
    charges = assign_parameters(mol, "sage", charges="gasteiger").charges()
    return SmirnoffForceField.load(path).parameterize(mol, charges=charges)


def _reloaded_energy(path, system) -> np.ndarray:
    reread = SmirnoffForceField.load(path).parameterize(system.molecule,
                                                        charges=system.charges())
    return MMEngine(reread).compute(system.molecule.conformers, forces=False).energy.numpy()


def test_bespoke_torsion_round_trip(bespoke_system, tmp_path):
    system = bespoke_system
    group = system.term_group("ProperTorsions")
    assert BESPOKE in group.parameter_ids
    report = export_system(system, tmp_path, smirnoff="sage")
    assert report.offxml_parameters == [f"ProperTorsions/{BESPOKE}"]
    assert all(report.max_abs_de[f] <= 1e-4 for f in report.checks)
    reloaded = SmirnoffForceField.load(tmp_path / "molecule.offxml")
    written = reloaded.parameters.get("ProperTorsions", BESPOKE)
    assert written.values["k1"] == pytest.approx(0.71, rel=1e-12)
    assert written.fixed["periodicity2"] == 1
    assert reloaded.smirks("ProperTorsions")[-1] == BESPOKE  # appended: it wins
    ref = MMEngine(system).compute(system.molecule.conformers, forces=False).energy.numpy()
    np.testing.assert_allclose(_reloaded_energy(tmp_path / "molecule.offxml", system), ref,
                               rtol=0, atol=1e-4)


def test_fitted_values_are_exported(bespoke_system, tmp_path):
    """A fitted system (values changed after assignment) exports its fitted values."""
    system = bespoke_system
    vector = system.parameters.vector()
    key = ParameterKey("ProperTorsions", BESPOKE, "k1")
    vector[system.parameters.index(key)] = 1.37
    sage_id = next(p.id for s, p in system.parameters
                   if s == "Angles")
    vector[system.parameters.index(ParameterKey("Angles", sage_id, "k"))] *= 1.1
    fitted = system.with_parameters(system.parameters.with_vector(vector))
    report = export_system(fitted, tmp_path, formats=("offxml", "amber"), smirnoff="sage")
    assert sorted(report.offxml_parameters) == sorted([f"Angles/{sage_id}",
                                                      f"ProperTorsions/{BESPOKE}"])
    assert report.max_abs_de["offxml"] <= 1e-4 and report.max_abs_de["amber"] <= 1e-4
    ref = MMEngine(fitted).compute(fitted.molecule.conformers, forces=False).energy.numpy()
    before = MMEngine(system).compute(system.molecule.conformers, forces=False).energy.numpy()
    assert np.abs(ref - before).max() > 0.01  # the fit changed the energy
    np.testing.assert_allclose(_reloaded_energy(tmp_path / "molecule.offxml", fitted), ref,
                               rtol=0, atol=1e-4)


def test_plain_sage_infers_force_field(systems, tmp_path):
    system = systems("cyclobutanol-sage")
    assert system.source.startswith("openff-2.2.1")
    report = export_system(system, tmp_path, formats=("offxml",))
    assert report.offxml_parameters == []
    assert report.max_abs_de["offxml"] <= 1e-4


def test_offxml_skipped_with_reason(systems, bespoke_system, tmp_path):
    report = export_system(systems("cyclopropene-gaff2"), tmp_path / "gaff",
                           formats=("offxml",), smirnoff="sage")
    assert "SMIRNOFF-only" in report.skipped["offxml"] and not report.checks
    report = export_system(bespoke_system, tmp_path / "custom", formats=("offxml",))
    assert "start" in report.skipped["offxml"]  # source names a file stem it cannot find
