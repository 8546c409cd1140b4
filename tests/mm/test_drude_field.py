"""Drude model in uniform external fields: relaxed Drudes vs OpenMM's DrudeSCFIntegrator
with an external-field force, induced dipole vs the model's polarizability tensor, ESP
parameter gradients vs finite differences."""

import numpy as np
import openmm
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.mm.drude import DrudeEngine, build_openmm_drude, evaluate_openmm_drude_scf
from ffparam.mm.drude_field import DrudeFieldESP
from ffparam.params.drude import add_drude
from ffparam.reference.esp_grid import merz_kollman_points
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2, KJ_PER_KCAL, NM_PER_ANGSTROM

FIELD = np.array([3.0, -2.0, 4.5])  # kcal/mol/(e A)


@pytest.fixture(scope="module")
def acetone():
    mol = Molecule.from_smiles("CC(C)=O", name="acetone").generate_conformers(1, seed=7)
    return add_drude(assign_parameters(mol, "sage", charges="gasteiger"))


def _model(system, fields, density=0.5):
    geom = system.molecule.conformers[0]
    points = merz_kollman_points(system.molecule.atomic_numbers, geom, density=density)
    fields = np.asarray(fields, dtype=float).reshape(-1, 3)
    return DrudeFieldESP(system, np.repeat(geom[None], len(fields), 0), fields,
                         [points] * len(fields))


def test_relaxed_drudes_in_field_match_openmm(acetone):
    """OpenMM: the System of build_openmm_drude plus a CustomExternalForce -q F.x on every
    particle, Drudes relaxed by DrudeSCFIntegrator at fixed cores."""
    model = _model(acetone, [FIELD])
    ours = model.sites(model.engine.parameter_vector())[0, acetone.n_atoms:].numpy()
    omm = build_openmm_drude(acetone).system
    nonbonded = next(f for f in omm.getForces() if isinstance(f, openmm.NonbondedForce))
    force = openmm.CustomExternalForce("-q*(fx*x+fy*y+fz*z)")
    for name, value in zip(("fx", "fy", "fz"), FIELD * KJ_PER_KCAL / NM_PER_ANGSTROM):
        force.addGlobalParameter(name, float(value))
    force.addPerParticleParameter("q")
    for i in range(omm.getNumParticles()):
        force.addParticle(i, [nonbonded.getParticleParameters(i)[0]])
    omm.addForce(force)
    _, drudes = evaluate_openmm_drude_scf(omm, model.geometries.numpy(), acetone.n_atoms)
    np.testing.assert_allclose(ours, drudes[0], atol=1e-7)
    no_field = DrudeEngine(acetone).drude_positions(model.geometries.numpy())[0]
    assert np.abs(ours - no_field).max() > 1e-3  # the field moved them


def test_induced_dipole_is_model_polarizability_times_field(acetone):
    model = _model(acetone, [FIELD, -FIELD])
    dipoles = model.induced_dipoles().detach().numpy()
    alpha = model.engine.polarizability(model.geometries[:1])[0].numpy()
    induced = (dipoles[0] - dipoles[1]) / 2
    np.testing.assert_allclose(induced, alpha @ FIELD / COULOMB_CONSTANT_KCAL_MOL_A_E2,
                               rtol=1e-4)


def test_esp_gradient_in_charge_alpha_thole_vs_finite_differences(acetone):
    check_esp_gradient(_model(acetone, [np.zeros(3), FIELD], density=0.3), acetone)


def check_esp_gradient(model: DrudeFieldESP, system) -> None:
    """Autograd gradient of a weighted ESP sum in one charge, alpha and Thole equals
    central finite differences."""
    p = model.engine.parameter_vector().detach().clone().requires_grad_(True)
    weights = [torch.linspace(-1, 1, len(v)) for v in model.esp(p.detach())]

    def objective(values):
        return sum((w * v).sum() for w, v in zip(weights, model.esp(values)))

    (grad,) = torch.autograd.grad(objective(p), p)
    drude = system.drude
    for index in (int(system.nonbonded.charge_index[3]), int(drude.alpha_index[3]),
                  int(drude.thole_index[1])):
        step = torch.zeros_like(p)
        step[index] = 1e-6
        numeric = (objective(p.detach() + step) - objective(p.detach() - step)) / 2e-6
        assert float(grad[index]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-6)


def test_point_on_an_atom_is_refused(acetone):
    geom = acetone.molecule.conformers[0]
    with pytest.raises(InputError, match="from an atom"):
        DrudeFieldESP(acetone, geom[None], np.zeros((1, 3)), [geom[:2] + 0.1])
