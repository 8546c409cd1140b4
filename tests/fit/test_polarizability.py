"""Polarizabilities: the QM reference task (PySCF CPHF vs finite fields, Store records), the
Drude-model tensor (vs finite fields, parameter gradients) and the ``polarizability`` fit
target (recovery of known alphas, ``ffparam fit`` from a Store)."""

import numpy as np
import pytest
import torch
import yaml

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.polarizability import PolarizabilityTarget
from ffparam.mm.drude import DrudeEngine
from ffparam.params.drude import DRUDE_SECTION, add_drude
from ffparam.reference.compute import compute
from ffparam.reference.methods import get_calculator
from ffparam.reference.polarizability import (
    BOHR3_TO_ANGSTROM3,
    compute_polarizability,
    finite_field_polarizability,
)
from ffparam.reference.records import Species
from ffparam.reference.store import Store
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

QM_METHOD = "hf/6-31+g*"  # diffuse functions, seconds for water


@pytest.fixture(scope="module")
def water():
    return Molecule.from_smiles("O", name="water").generate_conformers(1, seed=7)


@pytest.fixture(scope="module")
def acetone_drude():
    mol = Molecule.from_smiles("CC(C)=O", name="acetone").generate_conformers(1, seed=7)
    return add_drude(assign_parameters(mol, "sage", charges="gasteiger"))


@pytest.mark.parametrize("method", [QM_METHOD, "b3lyp/6-31+g*"])
def test_analytic_polarizability_equals_finite_field(water, method):
    """CPHF (with the XC kernel for B3LYP) = central differences of the SCF dipole."""
    calc = get_calculator(method, Species.from_molecule(water))
    analytic = compute_polarizability(calc, water.conformers[0])
    assert analytic["details"]["polarizability"] == "analytic CPHF"
    numeric = finite_field_polarizability(calc, calc._mole(water.conformers[0]))
    numeric = numeric * BOHR3_TO_ANGSTROM3
    np.testing.assert_allclose(analytic["polarizability"], numeric, atol=2e-4)
    iso = np.trace(analytic["polarizability"]) / 3
    assert 0.8 < iso < 1.6  # water: HF/DFT with a small diffuse basis, A^3


def test_polarizability_records_in_store(water, tmp_path):
    with Store(tmp_path / "s.db") as store:
        (first,) = compute(water, water.conformers[:1], QM_METHOD, "polarizability", store)
        (again,) = compute(water, water.conformers[:1], QM_METHOD, "polarizability", store)
    assert first.ok and not first.cached and again.cached
    assert first.polarizability.shape == (3, 3)
    np.testing.assert_array_equal(first.polarizability, again.polarizability)
    with Store(tmp_path / "s.db", readonly=True) as store:
        (stored,) = store.records(task_kind="polarizability")
    np.testing.assert_array_equal(stored.polarizability, first.polarizability)


def test_polarizability_needs_a_pyscf_method(water, tmp_path):
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(InputError, match="gfn2-xtb gives no polarizability"):
            compute(water, water.conformers[:1], "gfn2-xtb", "polarizability", store)
        assert list(store.records()) == []


def test_single_drude_tensor_is_its_alpha(water):
    """Water has one Drude (on O) whose only neighbours are excluded: alpha_mm = alpha I."""
    system = add_drude(assign_parameters(water, "sage", charges="gasteiger"))
    (alpha,) = system.drude.alphas(system.parameters.vector())
    tensor = DrudeEngine(system).polarizability(water.conformers[:1])[0].numpy()
    np.testing.assert_allclose(tensor, alpha * np.eye(3), atol=1e-10)


def test_drude_tensor_vs_finite_field_and_gradient(acetone_drude):
    engine = DrudeEngine(acetone_drude)
    geom = acetone_drude.molecule.conformers[:1]
    tensor = engine.polarizability(geom)[0].numpy()
    h = 1e-3
    numeric = np.zeros((3, 3))
    for j in range(3):
        field = np.eye(3)[j] * h
        up = engine.induced_dipole(geom, field_kcal_mol_e_a=field)[0]
        down = engine.induced_dipole(geom, field_kcal_mol_e_a=-field)[0]
        numeric[:, j] = (up - down) / (2 * h) * COULOMB_CONSTANT_KCAL_MOL_A_E2
    np.testing.assert_allclose(tensor, numeric, atol=1e-7)
    # Thole coupling makes it anisotropic and larger than the sum of the atoms' alphas
    assert np.ptp(np.linalg.eigvalsh(tensor)) > 0.5
    p = engine.parameter_vector().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(engine.polarizability(geom, p)[0].trace(), p)
    drude = acetone_drude.drude
    for index in (int(drude.alpha_index[0]), int(drude.thole_index[-1])):
        step = torch.zeros_like(p)
        step[index] = 1e-5
        up = engine.polarizability(geom, p.detach() + step)[0].trace()
        down = engine.polarizability(geom, p.detach() - step)[0].trace()
        assert float(grad[index]) == pytest.approx(float((up - down) / 2e-5), rel=1e-6)


def test_fit_recovers_known_alphas(acetone_drude):
    """Tensors made with known alphas/Thole at two geometries; a fit from the starting
    values finds them again."""
    system = acetone_drude
    rng = np.random.default_rng(3)
    geoms = system.molecule.conformers[:1] + rng.normal(0, 0.05, (2, system.n_atoms, 3))
    truth = system.parameters.vector().copy()
    truth[system.drude.alpha_index] *= 1.25
    tensors = DrudeEngine(system).polarizability(geoms, torch.as_tensor(truth)).numpy()
    params = system.parameters.copy()
    params.set_free(DRUDE_SECTION, "*", ["alpha"])
    fit_system = add_drude(system, _types(system), source=params)
    target = PolarizabilityTarget("acetone", fit_system, geoms, tensors)
    objective = Objective([target], FitParameters.from_free(fit_system.parameters),
                          use_priors=False)
    result = optimize(objective, "least_squares", max_iterations=50)
    fitted = result.parameters.vector()
    np.testing.assert_allclose(fitted[fit_system.drude.alpha_index],
                               truth[system.drude.alpha_index], rtol=1e-5)
    assert result.metrics_after["acetone"]["tensor rmse [A^3]"] < 1e-5


def _types(system):
    types = [None] * system.n_atoms
    for parent, tid in zip(system.drude.parents.tolist(), system.drude.type_ids):
        types[parent] = tid
    return types


def test_target_refuses_fixed_charge_system(water):
    system = assign_parameters(water, "sage", charges="gasteiger")
    with pytest.raises(InputError, match="Drude"):
        PolarizabilityTarget("w", system, water.conformers[0], np.eye(3))


def test_ffparam_fit_polarizability_target(water, tmp_path):
    """``ffparam fit`` with a polarizability target from the Store: water's one Drude
    alpha becomes the QM isotropic polarizability (its MM tensor is alpha I)."""
    from ffparam.fit.spec import load_fit_spec
    from ffparam.workflows.fit import run_fit

    with Store(tmp_path / "qm.db") as store:
        (record,) = compute(water, water.conformers[:1], QM_METHOD, "polarizability", store)
    spec = {"forcefield": "sage", "charges": "gasteiger",
            "molecules": {"water": {"input": "O"}},
            "targets": [{"name": "alpha", "type": "polarizability", "molecule": "water",
                         "reference": "qm.db", "method": QM_METHOD}],
            "parameters": [{"section": "Drude", "id": "*", "fields": ["alpha"]}],
            "priors": False}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    outcome = run_fit(load_fit_spec(tmp_path / "spec.yaml"), tmp_path / "out",
                      progress=False)
    (alpha,) = [p.values["alpha"] for s, p in outcome.result.parameters if s == DRUDE_SECTION]
    assert alpha == pytest.approx(np.trace(record.polarizability) / 3, rel=1e-6)
    assert (tmp_path / "out" / "metrics.json").exists()


def test_hydrogen_count_types(acetone_drude):
    from ffparam.params.drude import element_drude_types

    assert element_drude_types(acetone_drude, hydrogens=True)[:4] == [
        "C3H3", "C2H0", "C3H3", "O2H0"]
    assert element_drude_types(acetone_drude)[:4] == ["C3", "C2", "C3", "O2"]


def test_open_shell_uses_finite_fields():
    """The methyl radical (UHF) takes the finite-field path: a symmetric tensor, planar
    symmetry (in-plane components larger than the out-of-plane one)."""
    radical = Molecule.from_smiles("[CH3]", name="methyl").generate_conformers(1, seed=7)
    calc = get_calculator(QM_METHOD, Species.from_molecule(radical))
    result = compute_polarizability(calc, radical.conformers[0])
    assert result["details"]["polarizability"].startswith("finite field")
    tensor = result["polarizability"]
    np.testing.assert_allclose(tensor, tensor.T, atol=1e-12)
    eigen = np.linalg.eigvalsh(tensor)
    assert 1.0 < eigen.mean() < 3.0
    assert eigen[1] - eigen[0] > 0.1 and eigen[2] - eigen[1] < 0.05  # in-plane pair
