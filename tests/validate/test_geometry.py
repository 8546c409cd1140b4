"""Optimized-geometry RMSD: GFN2-xTB minima vs MM minima of Sage and a perturbed Sage; the
MM minimizer agrees with OpenMM's; failed optimizations are reported, not raised."""

from __future__ import annotations

import json

import numpy as np
import openmm
import pytest
from openmm import unit

from ffparam.mm import evaluate_openmm, to_openmm
from ffparam.reference import Record, Store
from ffparam.reference.compute import make_jobs
from ffparam.units import ANGSTROM_PER_NM, NM_PER_ANGSTROM
from ffparam.validate import (
    heavy_atoms,
    held_out_geometries,
    kabsch_rmsd,
    mm_minimize,
    optimized_geometry_rmsd,
)
from tests.validate.conftest import CC_BOND, perturbed


def test_perturbed_bond_length_moves_the_mm_minimum(butane, butane_sage):
    systems = {"start": butane_sage,
               "long": perturbed(butane_sage, "Bonds", CC_BOND, "length", delta=0.1),
               "broken": perturbed(butane_sage, "Bonds", CC_BOND, "k", value=-1000.0)}
    result = optimized_geometry_rmsd(butane, systems, "gfn2-xtb")
    assert (result.n_used, result.n_failed) == (1, 0)
    start, long = result.systems["start"], result.systems["long"]
    assert start.converged and long.converged
    assert start.heavy_atom_rmsd_a[0] < 0.05  # Sage and GFN2-xTB agree on butane
    # three C-C bonds 0.1 A longer: the carbon chain grows, RMSD of order 0.1 A
    assert long.heavy_atom_rmsd_a[0] > start.heavy_atom_rmsd_a[0] + 0.04
    # reported RMSDs are those of the returned geometries (recomputed independently)
    heavy = heavy_atoms(butane.atomic_numbers)
    for name in ("start", "long"):
        assert result.systems[name].heavy_atom_rmsd_a[0] == pytest.approx(
            kabsch_rmsd(result.mm_geometries[name][0], result.reference_geometries[0], heavy))
        assert result.systems[name].relaxation_energy_kcal_mol[0] >= -1e-6
    # a system without a minimum is reported, not raised, and spoils nothing else
    broken = result.systems["broken"]
    assert broken.error is not None or not broken.converged
    assert any("broken" in w for w in result.warnings)
    data = result.to_json()
    json.dumps(data, allow_nan=False)
    assert data["systems"]["long"]["mean_heavy_atom_rmsd_a"] == pytest.approx(
        long.heavy_atom_rmsd_a[0])


def test_mm_minimize_agrees_with_openmm_minimizer(ethanol, ethanol_sage):
    rng = np.random.default_rng(1)
    start = ethanol.conformers[0] + rng.normal(0.0, 0.05, ethanol.conformers[0].shape)
    ours = mm_minimize(ethanol_sage, start[None], gtol=1e-5)
    assert ours.converged and ours.max_force < 1e-4
    omm_system = to_openmm(ethanol_sage)
    context = openmm.Context(omm_system, openmm.VerletIntegrator(1.0),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(start * NM_PER_ANGSTROM)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-4, 0)
    theirs = context.getState(getPositions=True).getPositions(asNumpy=True)
    theirs = np.asarray(theirs.value_in_unit(unit.nanometer)) * ANGSTROM_PER_NM
    assert kabsch_rmsd(ours.positions[0], theirs) < 1e-3
    energy, forces, _ = evaluate_openmm(omm_system, np.stack([ours.positions[0], theirs]))
    assert ours.energy[0] == pytest.approx(energy[0], abs=1e-5)
    assert energy[0] == pytest.approx(energy[1], abs=1e-4)
    assert np.abs(forces[0]).max() < 1e-3


def test_mm_minimize_of_a_system_without_minimum_raises_a_one_line_error(ethanol,
                                                                          ethanol_sage):
    from ffparam.errors import NonFiniteError

    broken = perturbed(ethanol_sage, "Bonds", "[#6:1]-[#8:2]", "k", value=-1000.0)
    with pytest.raises(NonFiniteError, match="non-finite"):
        mm_minimize(broken, ethanol.conformers[:1], max_iterations=20000)


def test_failed_optimizations_leave_an_empty_result_not_an_exception(tmp_path, butane,
                                                                      butane_sage):
    held = held_out_geometries(butane, 1, seed=5)
    job = make_jobs(butane, held.geometries, "gfn2-xtb", "optimize")[0]
    with Store(tmp_path / "s.db") as store:
        store.put(Record(job.key, "failed", job.method.canonical(), job.task.canonical(),
                         job.species, held.geometries[0], error="optimizer did not converge"))
        store.flush()
        result = optimized_geometry_rmsd(butane, {"start": butane_sage}, "gfn2-xtb", store,
                                         seed=5)
    assert (result.n_used, result.n_failed) == (0, 1)
    assert result.systems["start"].error == "no reference-optimized geometry"
    assert result.failures == ["optimizer did not converge"]
    assert json.loads(json.dumps(result.to_json(), allow_nan=False))["systems"]["start"][
        "mean_heavy_atom_rmsd_a"] is None
