"""Drude model polarized by perturbing point charges (CHARMM's recipe): relaxed Drudes and
ESP vs OpenMM's DrudeSCFIntegrator with the charges as extra fixed particles, parameter
gradients vs finite differences, a charge on the molecule refused."""

import numpy as np
import openmm
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm.drude import build_openmm_drude
from ffparam.mm.drude_field import DrudeFieldESP, polarization_energy_in_charges
from ffparam.params.drude import add_drude
from ffparam.reference.esp_field import perturbing_charges
from ffparam.reference.esp_grid import merz_kollman_points
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2, NM_PER_ANGSTROM
from tests.mm.test_drude_field import check_esp_gradient

FIELD = np.array([3.0, -2.0, 4.5])  # kcal/mol/(e A)


@pytest.fixture(scope="module")
def acetone():
    mol = Molecule.from_smiles("CC(C)=O", name="acetone").generate_conformers(1, seed=7)
    return add_drude(assign_parameters(mol, "sage", charges="gasteiger"))


def _charges(system, n: int) -> np.ndarray:
    """(n, 4) perturbing charges (x, y, z A, Q e) of :func:`perturbing_charges`."""
    envs = perturbing_charges(system.molecule.conformers[0], n)
    return np.array([[*env.positions[0], env.charges[0]] for env in envs])


def _model(system, charges_per_entry, fields=None, density=0.5):
    geom = system.molecule.conformers[0]
    points = merz_kollman_points(system.molecule.atomic_numbers, geom, density=density)
    n = len(charges_per_entry)
    fields = np.zeros((n, 3)) if fields is None else np.asarray(fields, dtype=float)
    return DrudeFieldESP(system, np.repeat(geom[None], n, 0), fields, [points] * n,
                         charges=charges_per_entry)


def _openmm_drudes(system, charges: np.ndarray) -> np.ndarray:
    """Drude positions (n_drude, 3) A relaxed by DrudeSCFIntegrator at fixed cores with
    ``charges`` (k, 4) as extra fixed particles (mass 0, charge Q, no LJ)."""
    omm = build_openmm_drude(system).system
    nonbonded = next(f for f in omm.getForces() if isinstance(f, openmm.NonbondedForce))
    for q in charges[:, 3]:
        omm.addParticle(0.0)
        nonbonded.addParticle(float(q), 0.1, 0.0)
    n_atoms, n_drude = system.n_atoms, len(system.drude)
    for i in range(n_atoms):
        omm.setParticleMass(i, 0.0)
    integrator = openmm.DrudeSCFIntegrator(1e-6)
    integrator.setMinimizationErrorTolerance(1e-6)
    context = openmm.Context(omm, integrator, openmm.Platform.getPlatformByName("Reference"))
    xyz = system.molecule.conformers[0]
    full = np.concatenate([xyz, xyz[system.drude.parents], charges[:, :3]])
    context.setPositions(full * NM_PER_ANGSTROM)
    context.setVelocities(np.zeros_like(full))
    integrator.step(1)
    positions = context.getState(getPositions=True).getPositions(asNumpy=True)
    return np.asarray(positions._value)[n_atoms:n_atoms + n_drude] / NM_PER_ANGSTROM


def test_relaxed_drudes_and_esp_in_point_charges_match_openmm(acetone):
    charges = _charges(acetone, 3)
    model = _model(acetone, [charges])
    p = model.engine.parameter_vector()
    ours = model.sites(p)[0, acetone.n_atoms:].numpy()
    theirs = _openmm_drudes(acetone, charges)
    # OpenMM's minimizer stops with max |dE/dd| ~5e-5 kcal/mol/A (ours: 1e-8), ~1e-7 A off
    np.testing.assert_allclose(ours, theirs, atol=5e-7)
    geom, parents = model.geometries[0], acetone.drude.parents
    energies = [float(polarization_energy_in_charges(
        model.engine, geom, torch.as_tensor(x) - geom[parents], p,
        torch.zeros(3, dtype=torch.float64), torch.as_tensor(charges))) for x in (ours, theirs)]
    assert energies[0] <= energies[1] + 1e-9  # ours is the minimum
    sites = np.concatenate([model.geometries[0].numpy(), theirs])
    q = model.site_charges(p).numpy()
    points = model.points[0]
    esp_openmm = COULOMB_CONSTANT_KCAL_MOL_A_E2 * (
        q / np.linalg.norm(points[:, None] - sites[None], axis=-1)).sum(1)
    esp = model.esp(p)[0].numpy()
    assert np.abs(esp - esp_openmm).max() <= 1e-6 * np.abs(esp_openmm).max()
    unperturbed = _model(acetone, [np.zeros((0, 4))]).sites(p)[0, acetone.n_atoms:].numpy()
    assert np.abs(ours - unperturbed).max() > 1e-3  # the charges moved the Drudes


def test_no_charges_equals_the_uniform_field_model(acetone):
    """Entries without charges in a model that has charges elsewhere: the per-entry
    relaxation equals the engine's batched one."""
    mixed = _model(acetone, [np.zeros((0, 4)), _charges(acetone, 1)], [FIELD, np.zeros(3)])
    plain = _model(acetone, [np.zeros((0, 4))], [FIELD])
    p = mixed.engine.parameter_vector()
    np.testing.assert_allclose(mixed.sites(p)[0].numpy(), plain.sites(p)[0].numpy(),
                               atol=1e-10)


def test_esp_gradient_with_charges_vs_finite_differences(acetone):
    model = _model(acetone, [_charges(acetone, 2), _charges(acetone, 1)], [FIELD, np.zeros(3)],
                   density=0.3)
    check_esp_gradient(model, acetone)


def test_charge_on_the_molecule_is_refused(acetone):
    geom = acetone.molecule.conformers[0]
    with pytest.raises(InputError, match="perturbing charge lies"):
        _model(acetone, [np.array([[*(geom[0] + 1.0), 0.5]])])
    with pytest.raises(InputError, match="one perturbing-charge array per entry"):
        DrudeFieldESP(acetone, geom[None], np.zeros((1, 3)), [geom + 3.0], charges=[])
