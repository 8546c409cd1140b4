"""Held-out conformer validation with GFN2-xTB on butane: perturbed systems score worse,
numbers agree with tblite and OpenMM called directly, failures are skipped and counted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ffparam.mm import evaluate_openmm, to_openmm
from ffparam.reference import Record, Store
from ffparam.reference.compute import make_jobs
from ffparam.units import HARTREE_BOHR_TO_KCAL_MOL_A, HARTREE_KCAL_MOL
from ffparam.validate import held_out_conformers, held_out_geometries
from tests.validate.conftest import pairwise_min_rmsd


@pytest.fixture(scope="module")
def validation(butane, butane_variants):
    return held_out_conformers(butane, butane_variants, "gfn2-xtb", n_conformers=10, seed=11)


def test_conformers_are_distinct_and_span_gauche_and_anti(validation):
    assert validation.n_used == validation.n_generated >= 4
    assert validation.n_failed == 0
    assert pairwise_min_rmsd(validation.geometries) > 0.25
    assert validation.relax == "mmff94-torsions"
    assert validation.reference_energy_range_kcal_mol > 1.0 and not validation.warnings
    dihedrals = np.abs(np.degrees([_dihedral(g, 0, 1, 2, 3) for g in validation.geometries]))
    assert np.any(dihedrals > 150.0) and np.any(dihedrals < 90.0)  # anti and gauche


def test_perturbed_systems_score_worse(validation):
    start = validation.systems["start"]
    torsion = validation.systems["torsion"]
    bond = validation.systems["bond"]
    # gauche vs anti moved by 4.5 kcal/mol: relative energies clearly worse
    assert torsion.energy_rmse_kcal_mol > start.energy_rmse_kcal_mol + 1.0
    # C-C bonds 0.05 A too long: a force error of about k * 0.05 = 21 kcal/mol/A on carbons
    assert bond.force_rmse_kcal_mol_a > start.force_rmse_kcal_mol_a + 1.0
    assert start.energy_mae_kcal_mol <= start.energy_rmse_kcal_mol
    assert start.energy_rmse_kcal_mol <= start.energy_max_abs_error_kcal_mol


def test_numbers_match_tblite_and_openmm_called_directly(butane, butane_variants, validation):
    from tblite.interface import Calculator

    from ffparam.units import BOHR_ANGSTROM

    geometries = validation.geometries
    ref_e, ref_f = [], []
    for xyz in geometries:
        calc = Calculator("GFN2-xTB", butane.atomic_numbers, xyz / BOHR_ANGSTROM)
        calc.set("verbosity", 0)
        res = calc.singlepoint()
        ref_e.append(res.get("energy") * HARTREE_KCAL_MOL)
        ref_f.append(-res.get("gradient") * HARTREE_BOHR_TO_KCAL_MOL_A)
    ref_e, ref_f = np.array(ref_e) - np.mean(ref_e), np.array(ref_f)
    np.testing.assert_allclose(validation.reference_energy_kcal_mol, ref_e, atol=1e-5)
    np.testing.assert_allclose(validation.reference_forces_kcal_mol_a, ref_f, atol=1e-4)
    for name, system in butane_variants.items():
        energy, forces, _ = evaluate_openmm(to_openmm(system), geometries)
        error_e = (energy - energy.mean()) - ref_e
        scores = validation.systems[name]
        assert scores.energy_rmse_kcal_mol == pytest.approx(np.sqrt(np.mean(error_e**2)),
                                                            abs=1e-4)
        assert scores.energy_mae_kcal_mol == pytest.approx(np.mean(np.abs(error_e)), abs=1e-4)
        assert scores.force_rmse_kcal_mol_a == pytest.approx(
            np.sqrt(np.mean((forces - ref_f) ** 2)), abs=1e-4)


def test_to_json_is_plain_finite_data(validation):
    data = validation.to_json()
    text = json.dumps(data, allow_nan=False)
    assert data["n_used"] == validation.n_used
    assert set(data["systems"]) == {"start", "torsion", "bond"}
    parity = data["parity"]
    assert len(parity["reference_energy_kcal_mol"]) == validation.n_used
    assert len(parity["force_kcal_mol_a"]["bond"]) == validation.n_used * 14 * 3
    assert "geometries" not in text


def test_failed_reference_points_are_skipped_and_counted(tmp_path, butane, butane_sage):
    held = held_out_geometries(butane, 5, seed=11)
    job = make_jobs(butane, held.geometries[1:2], "gfn2-xtb", "gradient")[0]
    with Store(tmp_path / "store.db") as store:
        store.put(Record(job.key, "failed", job.method.canonical(), job.task.canonical(),
                         job.species, held.geometries[1], error="SCF not converged"))
        store.flush()
        result = held_out_conformers(butane, {"start": butane_sage}, "gfn2-xtb", store=store,
                                     n_conformers=5, seed=11)
        assert store.counts() == {"complete": 4, "failed": 1}
    assert (result.n_generated, result.n_failed, result.n_used) == (5, 1, 4)
    assert result.failures == ["SCF not converged"]
    assert any("failed and were skipped" in w for w in result.warnings)
    np.testing.assert_array_equal(result.geometries, held.geometries[[0, 2, 3, 4]])
    assert result.systems["start"].energy_rmse_kcal_mol is not None


def test_excluded_fit_geometries_are_not_reused(butane, butane_sage, validation):
    used = validation.geometries[:3]
    again = held_out_conformers(butane, {"start": butane_sage}, "gfn2-xtb", n_conformers=10,
                                seed=11, exclude_geometries=used)
    assert again.n_excluded >= 3
    for xyz in again.geometries:
        from ffparam.validate import kabsch_rmsd

        assert np.min(kabsch_rmsd(used, xyz)) > 0.25


def test_a_single_conformer_gives_forces_but_no_relative_energies(butane, butane_sage):
    result = held_out_conformers(butane, {"start": butane_sage}, "gfn2-xtb", n_conformers=1)
    scores = result.systems["start"]
    assert result.n_used == 1
    assert scores.energy_rmse_kcal_mol is None and scores.force_rmse_kcal_mol_a > 0
    assert any("at least 2" in w for w in result.warnings)
    json.dumps(result.to_json(), allow_nan=False)


def _dihedral(x, i, j, k, m):
    b0, b1, b2 = x[j] - x[i], x[k] - x[j], x[m] - x[k]
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    return np.arctan2(np.dot(np.cross(n1, n2), b1 / np.linalg.norm(b1)), np.dot(n1, n2))


def test_minima_of_a_one_minimum_molecule_are_flagged_as_uninformative(ethanol, ethanol_sage):
    # MMFF94 minima of ethanol: trans and gauche OH within a few tenths of a kcal/mol
    result = held_out_conformers(ethanol, {"start": ethanol_sage}, "gfn2-xtb", n_conformers=6,
                                 relax="mmff94")
    assert result.reference_energy_range_kcal_mol < 0.5
    assert any("carry little information" in w for w in result.warnings)
