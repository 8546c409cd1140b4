"""Hessians and parameter gradients of MMEngine against finite differences."""

import numpy as np
import pytest
import torch

from ffparam.chem import Molecule
from ffparam.errors import InputError, NonFiniteError
from ffparam.mm import MMEngine
from tests.mm.element_typed import element_typed_system


@pytest.fixture(scope="module")
def ethanol():
    mol = Molecule.from_smiles("CCO").generate_conformers(2, seed=3)
    return mol, element_typed_system(mol, urey_bradley=True, nbfix=("H", "H"))


def test_hessian_matches_finite_difference_of_forces(ethanol):
    mol, system = ethanol
    engine = MMEngine(system)
    x = mol.conformers[:1]
    hess = engine.hessian(x)[0].numpy()
    n = 3 * mol.n_atoms
    fd = np.zeros((n, n))
    h = 1e-5
    for col in range(n):
        plus, minus = x.copy().reshape(1, -1), x.copy().reshape(1, -1)
        plus[0, col] += h
        minus[0, col] -= h
        f_plus = engine.compute(plus.reshape(x.shape)).forces.numpy().reshape(-1)
        f_minus = engine.compute(minus.reshape(x.shape)).forces.numpy().reshape(-1)
        fd[:, col] = -(f_plus - f_minus) / (2 * h)
    np.testing.assert_allclose(hess, fd, atol=2e-4 * np.abs(hess).max())
    np.testing.assert_allclose(hess, hess.T, atol=1e-9)


def test_parameter_gradient_matches_finite_difference(ethanol):
    mol, system = ethanol
    engine = MMEngine(system)
    values = engine.parameter_vector()
    jac = engine.parameter_gradient(mol.conformers, values).numpy()
    assert jac.shape == (mol.n_conformers, len(values))
    keys = system.parameters.keys()
    for index in range(len(values)):
        h = 1e-6 * max(1.0, abs(values[index].item()))
        plus, minus = values.clone(), values.clone()
        plus[index] += h
        minus[index] -= h
        fd = (engine.energy(mol.conformers, plus) - engine.energy(mol.conformers, minus)) / (2 * h)
        np.testing.assert_allclose(jac[:, index], fd.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=str(keys[index]))
    # every parameter the system uses has a non-zero derivative somewhere
    assert np.count_nonzero(np.abs(jac).max(0) > 0) >= 0.8 * len(values)


def test_gradient_flows_through_compute(ethanol):
    mol, system = ethanol
    engine = MMEngine(system)
    values = engine.parameter_vector().requires_grad_(True)
    result = engine.compute(mol.conformers, values)
    (result.energy.sum() + result.forces.pow(2).sum()).backward()
    assert torch.all(torch.isfinite(values.grad))


def test_bad_positions_rejected(ethanol):
    mol, system = ethanol
    engine = MMEngine(system)
    with pytest.raises(InputError, match="positions must be"):
        engine.energy(np.zeros((2, 3)))
    overlapping = mol.conformers[:1].copy()
    i, j = system.topology.nonbonded_pairs[0]
    overlapping[0, j] = overlapping[0, i]
    with pytest.raises(NonFiniteError, match="non-finite MM energy"):
        engine.compute(overlapping)


@pytest.mark.parametrize("options", [{}, {"morse": True, "urey_bradley": True},
                                     {"harmonic_impropers": True, "nbfix": ("H", "O")}])
def test_analytic_forces_equal_autograd(options):
    mol = Molecule.from_smiles("CC(=O)NCc1ccccc1O").generate_conformers(3, seed=1)
    system = element_typed_system(mol, **options)
    engine = MMEngine(system)
    fast = engine.compute(mol.conformers)
    values = engine.parameter_vector().requires_grad_(True)
    slow = engine.compute(mol.conformers, values)
    np.testing.assert_allclose(fast.forces.numpy(), slow.forces.detach().numpy(), atol=1e-9)
    np.testing.assert_allclose(fast.energy.numpy(), slow.energy.detach().numpy(), rtol=1e-12)
    for name, value in fast.terms.items():
        np.testing.assert_allclose(value.numpy(), slow.terms[name].detach().numpy(),
                                   rtol=1e-12, atol=1e-12, err_msg=name)
