"""Drude liquids: the box and gas Systems against ffparam's Drude engine and a textbook
Ewald sum, and a short dual-thermostat run of 16 CCl4 molecules (stable: Drude
displacements inside the hard wall, finite density and Hvap, eps >= eps_inf > 1)."""

from __future__ import annotations

import json

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from ffparam.errors import InputError
from ffparam.liquid.box import molar_mass, pack_box
from ffparam.liquid.drude import (
    DrudeDynamicsSettings,
    core_positions,
    drude_box_system,
    drude_displacements,
    drude_gas_system,
    isotropic_polarizability,
    override_parameters,
    polarizable_system,
    scale_lj_epsilon,
    scale_lj_sigma,
    simulate_drude_liquid,
    site_charges,
    with_drude_particles,
)
from ffparam.liquid.job import LiquidJob
from ffparam.liquid.lj import CutoffScheme, LJLayout, LJModel, box_frame_statistics
from ffparam.liquid.prepare import prepare_system
from ffparam.liquid.run import run_liquid
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import load_trajectory
from ffparam.mm.drude import DrudeEngine, build_openmm_drude
from ffparam.params.drude import DEFAULT_THOLE, DRUDE_SECTION, STARTING_ALPHA_A3, add_drude
from ffparam.params.parameter_set import Parameter, ParameterSet
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2, KCAL_PER_KJ, NM_PER_ANGSTROM
from tests.liquid.conftest import tiny_settings
from tests.liquid.ewald_reference import ewald_energy
from tests.liquid.test_openmm_system import _energies, _nonbonded_only

N_MOLECULES = 16


@pytest.fixture(scope="module")
def ccl4():
    """CCl4 (Sage, Gasteiger charges) with a Drude particle on every atom."""
    return add_drude(prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4"))


@pytest.fixture(scope="module")
def box(ccl4):
    settings = LiquidSettings(n_molecules=N_MOLECULES, cutoff_a=6.0, switch_a=5.0,
                              ewald_tolerance=1e-6)
    packed = pack_box(ccl4.molecule, N_MOLECULES, 1.4, seed=5)
    omm = drude_box_system(ccl4, N_MOLECULES, packed.box_length_a, settings)
    positions = with_drude_particles(ccl4, packed.positions, 0.05, seed=2)
    return settings, packed, omm, positions


def _drude_group(system) -> int:
    return next(g for g, name in build_openmm_drude(system).group_names.items()
                if name == "Drude")


def test_box_replicates_particles_masses_and_drude_force(ccl4, box):
    _, _, omm, positions = box
    n, n_drude = ccl4.n_atoms, len(ccl4.drude)
    assert omm.getNumParticles() == N_MOLECULES * (n + n_drude) == len(positions)
    drude = next(f for f in omm.getForces() if isinstance(f, openmm.DrudeForce))
    assert drude.getNumParticles() == N_MOLECULES * n_drude
    assert drude.getNumScreenedPairs() == N_MOLECULES * len(ccl4.drude.screened)
    # every Drude particle of molecule m sits on a parent of molecule m
    for k in range(drude.getNumParticles()):
        particle, parent = drude.getParticleParameters(k)[:2]
        assert particle // (n + n_drude) == parent // (n + n_drude)
        assert particle % (n + n_drude) >= n
    masses = np.array([omm.getParticleMass(i).value_in_unit(unit.dalton)
                       for i in range(omm.getNumParticles())])
    assert masses.sum() == pytest.approx(N_MOLECULES * molar_mass(ccl4.molecule), rel=1e-4)
    assert np.allclose(masses.reshape(N_MOLECULES, -1)[:, n:], 0.4)
    assert site_charges(omm).sum() == pytest.approx(0.0, abs=1e-9)


def test_box_drude_terms_equal_the_engine_per_molecule(ccl4, box):
    _, packed, omm, positions = box
    energies = _energies(omm, positions, packed.box_length_a)
    n = ccl4.n_atoms
    per = positions.reshape(N_MOLECULES, n + len(ccl4.drude), 3)
    cores = torch.as_tensor(per[:, :n])
    d = torch.as_tensor(per[:, n:] - per[:, ccl4.drude.parents])
    engine = DrudeEngine(ccl4)
    terms = engine.polarization_terms(cores, d, engine.parameter_vector())
    expected = float((terms["DrudeSpring"] + terms["Thole"]).sum())
    # 1e-6 relative, the tolerance: OpenMM's Coulomb constant (k = C q_D^2 / alpha)
    # differs from ffparam's 332.0637 in the 8th digit
    assert energies[_drude_group(ccl4)] == pytest.approx(expected, rel=1e-6)


def test_box_electrostatics_of_cores_and_drudes_match_textbook_ewald(ccl4, box):
    _, packed, omm, positions = box
    assert len(ccl4.topology.pairs_14) == 0  # all intramolecular pairs of CCl4 excluded
    nonbonded_group = next(g for g, name in build_openmm_drude(ccl4).group_names.items()
                           if name == "Nonbonded")
    coulomb = _energies(_nonbonded_only(omm, "coulomb"), positions,
                        packed.box_length_a)[nonbonded_group]
    q = site_charges(omm)
    full = ewald_energy(positions, q, packed.box_length_a, alpha=0.56, kmax=15)
    # OpenMM excludes every intramolecular site pair (cores and Drudes): remove their
    # plain Coulomb from the full Ewald energy
    per_x = positions.reshape(N_MOLECULES, -1, 3)
    per_q = q.reshape(N_MOLECULES, -1)
    i, j = np.triu_indices(per_x.shape[1], k=1)
    r = np.linalg.norm(per_x[:, i] - per_x[:, j], axis=-1)
    intra = np.sum(per_q[:, i] * per_q[:, j] / r)
    assert coulomb == pytest.approx(full - COULOMB_CONSTANT_KCAL_MOL_A_E2 * intra, abs=5e-4)


def gas_energies(system) -> tuple[float, float]:
    """The one-molecule Drude System's OpenMM energy (Reference platform) at the engine's
    relaxed Drudes, and the engine's own energy, kcal/mol."""
    omm = drude_gas_system(system, LiquidSettings())
    xyz = system.molecule.conformers[:1]
    engine = DrudeEngine(system)
    full = np.concatenate([xyz[0], engine.drude_positions(xyz)[0]])
    context = openmm.Context(omm, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(full * NM_PER_ANGSTROM)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) * KCAL_PER_KJ
    return energy, float(engine.energy(xyz)[0])


def test_gas_system_equals_the_engine_at_relaxed_drudes(ccl4):
    omm_energy, engine_energy = gas_energies(ccl4)
    assert omm_energy == pytest.approx(engine_energy, abs=1e-6)
    alpha = isotropic_polarizability(ccl4)
    assert 5.0 < alpha < 20.0  # five starting alphas minus Thole damping, Angstrom^3


def test_short_drude_run_is_stable_and_gives_finite_properties(ccl4, tmp_path):
    settings = tiny_settings(n_molecules=N_MOLECULES, timestep_fs=1.0, equilibration_ps=1.0,
                             production_ps=3.0, save_interval_ps=0.1,
                             checkpoint_interval_ps=1.5, gas_equilibration_ps=0.5,
                             gas_production_ps=2.0, gas_save_interval_ps=0.1)
    dynamics = DrudeDynamicsSettings(max_drude_distance_a=0.2)
    result = run_liquid("ClC(Cl)(Cl)Cl", tmp_path / "run", charges="gasteiger",
                        settings=settings, density_guess_g_ml=1.59, name="ccl4",
                        progress=False, drude=dynamics)
    liquid = load_trajectory(tmp_path / "run" / "liquid", settings.save_interval_ps)
    assert liquid.positions.shape[1] == N_MOLECULES * (ccl4.n_atoms + len(ccl4.drude))
    # the hard wall holds (positions stored as float32 Angstrom)
    assert drude_displacements(ccl4, liquid.positions).max() <= 0.2 + 1e-4
    assert result.max_drude_displacement_a <= 0.2 + 1e-4
    assert 0.0 < result.liquid.density.value < 10.0
    assert np.isfinite(result.liquid.hvap.value) and np.isfinite(result.liquid.hvap.error)
    eps = result.dielectric
    assert eps.eps_inf > 1.0 and eps.fluctuation >= 0.0 and eps.value >= eps.eps_inf
    assert np.isfinite(eps.error)
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert written["dielectric"]["value"] == eps.value
    # LJ derivatives of every sigma/epsilon, and the epsilon-scale derivative is their
    # contraction with the epsilon values (d/ds = sum_k eps_k d/deps_k)
    liquid_result = result.liquid
    assert {k.rsplit("/", 1)[1] for k in liquid_result.keys} == {"sigma", "epsilon"}
    is_eps = np.array([k.endswith("/epsilon") for k in liquid_result.keys])
    weights = np.where(is_eps, liquid_result.values, 0.0)
    assert result.epsilon_scale["d_hvap_kcal_mol"] == pytest.approx(
        float(weights @ liquid_result.hvap_gradient), rel=1e-9)
    assert result.epsilon_scale["d_density_g_ml"] == pytest.approx(
        float(weights @ liquid_result.density_gradient), rel=1e-9)
    # a finished run is read back, not rerun: same numbers
    job = LiquidJob("ccl4", ccl4, 298.15, 1.0, tmp_path / "run", settings,
                    density_guess_g_ml=1.59)
    assert simulate_drude_liquid(job, dynamics).to_json() == written


def test_bad_drude_liquid_input_is_refused(ccl4, tmp_path):
    fixed = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    with pytest.raises(InputError, match="no Drude particles"):
        drude_gas_system(fixed, LiquidSettings())
    job = LiquidJob("ccl4", ccl4, 298.15, 1.0, tmp_path,
                    tiny_settings(gas_replicas=3, timestep_fs=1.0))
    with pytest.raises(InputError, match="gas_replicas=1"):
        simulate_drude_liquid(job)
    with pytest.raises(InputError, match="time step of at most 1"):
        DrudeDynamicsSettings().integrator(298.15, tiny_settings(timestep_fs=2.0))
    with pytest.raises(InputError, match="drude_offset_a"):
        DrudeDynamicsSettings(max_drude_distance_a=0.01, drude_offset_a=0.02)


@pytest.mark.parametrize(("scale_lj", "field", "factor"),
                         [(scale_lj_epsilon, "epsilon", 1.05), (scale_lj_sigma, "sigma", 1.01)])
def test_drude_box_lj_energy_differences_equal_the_lj_model_of_the_cores(
        ccl4, box, scale_lj, field, factor):
    """The LJ derivatives and reweighting of a Drude liquid come from the cores' frame
    sums: scaling every LJ epsilon by 1.05 (or sigma by 1.01) changes the OpenMM Drude box
    energy (cores, Drudes, PME, springs and Thole pairs unchanged) exactly as the LJ model
    of the core positions predicts."""
    settings, packed, omm, positions = box
    layout = LJLayout.from_system(ccl4)
    scheme = CutoffScheme(settings.cutoff_a, settings.switch_a, settings.dispersion_correction)
    cores = core_positions(ccl4, positions[None])
    stats = box_frame_statistics(layout, cores, np.full((1, 3), packed.box_length_a), scheme)
    scaled = scale_lj(ccl4, factor)
    model = LJModel(layout, scheme)
    values, moved = ccl4.parameters.vector(), scaled.parameters.vector()
    ours = float(model.energies(stats, moved)[0] - model.energies(stats, values)[0])
    moved_omm = drude_box_system(scaled, N_MOLECULES, packed.box_length_a, settings)
    openmm_difference = (_energies(moved_omm, positions, packed.box_length_a)[-1]
                         - _energies(omm, positions, packed.box_length_a)[-1])
    assert ours == pytest.approx(openmm_difference, rel=1e-6, abs=1e-6)
    assert abs(ours) > 0.1
    # only the epsilons (sigmas) moved, each by the factor
    changed = np.flatnonzero(moved != values)
    assert {ccl4.parameters.keys()[i].field for i in changed} == {field}
    assert len(changed) == 2  # the Cl and the C type
    assert np.allclose(moved[changed], factor * values[changed])
    with pytest.raises(InputError, match=f"LJ {field} scale must be positive"):
        scale_lj(ccl4, 0.0)


def test_polarizable_system_takes_alphas_by_type_and_starts_the_rest(ccl4):
    fixed = prepare_system("ClC(Cl)(Cl)Cl", "sage", "gasteiger", name="ccl4")
    source = ParameterSet()
    source.add(DRUDE_SECTION, Parameter("Cl3H0", {"alpha": 2.0, "thole": 1.5}))
    polar = polarizable_system(fixed, source)
    assert polar.drude.type_ids == ["Cl3H0", "C3", "Cl3H0", "Cl3H0", "Cl3H0"]
    vector = polar.parameters.vector()
    assert polar.drude.alphas(vector).tolist() == [2.0, STARTING_ALPHA_A3["C"], 2.0, 2.0, 2.0]
    assert vector[polar.drude.thole_index].tolist() == [1.5, DEFAULT_THOLE, 1.5, 1.5, 1.5]
    # without a source: the starting model of add_drude
    start = polarizable_system(fixed)
    assert start.drude.type_ids == ccl4.drude.type_ids
    assert np.array_equal(start.parameters.vector(), ccl4.parameters.vector())
    # a saved parameter set's other entries replace the force field's
    scaled = scale_lj_epsilon(fixed, 0.9).parameters
    assert np.array_equal(override_parameters(fixed, scaled).parameters.vector(),
                          scaled.vector())
    with pytest.raises(InputError, match="no parameter of the file applies"):
        override_parameters(fixed, source)
    source.add(DRUDE_SECTION, Parameter("C3", {"thole": 1.0}))
    with pytest.raises(InputError, match="no polarizability"):
        polarizable_system(fixed, source)
