"""Normal modes, MM Hessians and the Hessian/frequency targets.

Independent checks: PySCF's harmonic analysis (frequencies of the same QM Hessian),
finite differences of OpenMM forces (MM Hessian), finite differences of the fully relaxed
residuals (implicit-function-theorem Jacobian), and parameter recovery on synthetic data.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.normal_modes import (
    eckart_projector,
    mass_weight,
    minimize_mm,
    mm_hessian,
    normal_modes,
)
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import least_squares
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.vibrations import (
    FrequencyTarget,
    HessianTarget,
    degeneracy,
    read_experimental_frequencies,
)
from ffparam.mm import MMEngine
from ffparam.mm.openmm_export import evaluate_openmm, to_openmm
from ffparam.params import FreeSpec
from ffparam.units import HARTREE_BOHR2_TO_KCAL_MOL_A2

DATA = Path(__file__).resolve().parents[1] / "data" / "fit"


def sage(smiles: str, seed: int = 7):
    mol = Molecule.from_smiles(smiles).generate_conformers(1, seed=seed)
    return mol, assign_parameters(mol, "sage", charges="gasteiger")


def linear_molecule(smiles: str, xyz: list[list[float]]):
    mol = Molecule.from_smiles(smiles)
    mol = mol.with_conformers(np.array([xyz], dtype=float))
    return mol, assign_parameters(mol, "sage", charges="gasteiger")


def perturbed(system, sections=("Bonds", "Angles"), fields=("k",), seed=0):
    """Copy of ``system`` with each listed field multiplied or divided (at random) by a
    random factor in [1.2, 1.5], all of them free with a log/linear transform."""
    params = system.parameters.copy()
    rng = np.random.default_rng(seed)
    for section in sections:
        for par in params.sections[section].values():
            for f in fields:
                factor = rng.uniform(1.2, 1.5)
                par.values[f] *= factor if rng.random() < 0.5 else 1.0 / factor
    for section in sections:
        for f in fields:
            params.set_free(section, "*", f, FreeSpec(transform="log" if f == "k" else "linear"))
    return system.with_parameters(params)


def assert_recovered(result, truth_system, rtol=1e-4):
    for group in result.parameters.free:
        fitted = result.parameters.sections[group.section][group.id].values[group.field]
        true = truth_system.parameters.sections[group.section][group.id].values[group.field]
        assert fitted == pytest.approx(true, rel=rtol), str(group)


# ------------------------------------------------------------------ normal-mode analysis
def test_frequencies_match_pyscf_harmonic_analysis():
    from pyscf import gto, scf
    from pyscf.hessian import thermo

    mol = gto.M(atom="O 0 0 0.1; H 0 0.75 -0.45; H 0.1 -0.75 -0.48", basis="sto-3g",
                verbose=0)
    hess = scf.RHF(mol).run().Hessian().kernel()
    masses = np.array([15.999, 1.008, 1.008])
    expected = thermo.harmonic_analysis(mol, hess, mass=masses)["freq_wavenumber"]
    cartesian = hess.transpose(0, 2, 1, 3).reshape(9, 9) * HARTREE_BOHR2_TO_KCAL_MOL_A2
    modes = normal_modes(cartesian, mol.atom_coords(unit="Angstrom"), masses)
    np.testing.assert_allclose(modes.frequencies.numpy(), np.sort(expected), atol=1e-3)
    assert modes.n_external == 6


@pytest.mark.parametrize("smiles, n_zero", [("CC", 6), ("O=C=O", 5)])
def test_eckart_projection_leaves_rigid_zero_modes(smiles, n_zero):
    if smiles == "O=C=O":
        mol, system = linear_molecule(smiles, [[-1.16, 0, 0], [0, 0, 0], [1.16, 0, 0]])
    else:
        mol, system = sage(smiles)
    engine = MMEngine(system)
    minimum = minimize_mm(engine, mol.conformers[0])
    hess = mm_hessian(engine, torch.as_tensor(minimum)).detach()
    assert torch.all(torch.isfinite(hess))
    projector = torch.as_tensor(eckart_projector(minimum, mol.masses))
    projected = projector @ mass_weight(hess, mol.masses) @ projector
    eigenvalues = np.linalg.eigvalsh(projected.numpy())
    scale = np.abs(eigenvalues).max()
    assert np.sum(np.abs(eigenvalues) < 1e-9 * scale) == n_zero
    modes = normal_modes(hess, minimum, mol.masses)
    assert modes.n_modes == 3 * mol.n_atoms - n_zero
    assert torch.all(modes.frequencies > 100.0)  # a true minimum: no soft or imaginary mode


def _openmm_fd_hessian(system, geometry, h=1e-4):
    omm = to_openmm(system)
    n3 = geometry.size
    displaced = np.concatenate([geometry.reshape(1, -1) + h * np.eye(n3),
                                geometry.reshape(1, -1) - h * np.eye(n3)])
    _, forces, _ = evaluate_openmm(omm, displaced.reshape(2 * n3, -1, 3))
    forces = forces.reshape(2 * n3, -1)
    hess = -(forces[:n3] - forces[n3:]).T / (2 * h)
    return 0.5 * (hess + hess.T)


def test_mm_hessian_matches_openmm_finite_differences():
    mol, system = sage("CCO")
    geometry = mol.conformers[0]
    reference = _openmm_fd_hessian(system, geometry)
    engine = MMEngine(system)
    for method in ("autograd", "finite-difference"):
        hess = mm_hessian(engine, torch.as_tensor(geometry), method=method).detach().numpy()
        np.testing.assert_allclose(hess, reference, atol=2e-3 * np.abs(reference).max())


def test_linear_molecule_hessian_falls_back_to_finite_differences():
    mol, system = linear_molecule("O=C=O", [[-1.16, 0, 0], [0, 0, 0], [1.16, 0, 0]])
    engine = MMEngine(system)
    geometry = torch.as_tensor(mol.conformers[0])
    assert not torch.all(torch.isfinite(mm_hessian(engine, geometry, method="autograd")))
    hess = mm_hessian(engine, geometry).detach().numpy()
    reference = _openmm_fd_hessian(system, mol.conformers[0], h=1e-3)
    np.testing.assert_allclose(hess, reference, atol=2e-3 * np.abs(reference).max())


# ------------------------------------------------------------------ frequency target
@pytest.fixture(scope="module")
def methanol_reference():
    mol, truth = sage("CO")
    engine = MMEngine(truth)
    minimum = minimize_mm(engine, mol.conformers[0])
    hess = mm_hessian(engine, torch.as_tensor(minimum)).detach().numpy()
    return mol, truth, minimum, hess


def test_relaxed_frequency_jacobian_matches_finite_differences(methanol_reference):
    _, truth, minimum, hess = methanol_reference
    system = perturbed(truth)
    system.parameters.set_free("Angles", "*", "angle")
    fit = FitParameters.from_free(system.parameters)
    target = FrequencyTarget.from_hessian("freq", system, minimum, hess)
    objective = Objective([target], fit, use_priors=False)
    x0 = np.full(fit.size, 0.05)
    _, jac = objective.residuals_and_jacobian(x0)
    step = 1e-5
    for i in range(fit.size):
        plus, minus = x0.copy(), x0.copy()
        plus[i] += step
        minus[i] -= step
        fd = (objective.residuals(torch.as_tensor(plus)).detach().numpy()
              - objective.residuals(torch.as_tensor(minus)).detach().numpy()) / (2 * step)
        np.testing.assert_allclose(jac[:, i], fd, atol=1e-5 * np.abs(jac).max(),
                                   err_msg=fit.labels[i])


def test_frequency_target_recovers_force_constants(methanol_reference):
    _, truth, minimum, hess = methanol_reference
    system = perturbed(truth)
    fit = FitParameters.from_free(system.parameters)
    target = FrequencyTarget.from_hessian("freq", system, minimum, hess)
    result = least_squares(Objective([target], fit, use_priors=False))
    assert result.metrics_before["freq"]["rmse [cm^-1]"] > 50.0
    assert result.metrics_after["freq"]["rmse [cm^-1]"] < 1e-6
    assert_recovered(result, truth)


def test_hessian_target_recovers_constants_and_equilibria():
    mol, truth = sage("C=O")
    # a non-stationary geometry: the Hessian then depends on the equilibrium values too
    geometry = mol.conformers[0] + np.random.default_rng(1).normal(0, 0.03, mol.conformers[0].shape)
    reference = mm_hessian(MMEngine(truth), torch.as_tensor(geometry)).detach().numpy()
    system = perturbed(truth, fields=("k",))
    for section, f in (("Bonds", "length"), ("Angles", "angle")):
        for par in system.parameters.sections[section].values():
            par.values[f] *= 1.04
        system.parameters.set_free(section, "*", f, FreeSpec())
    fit = FitParameters.from_free(system.parameters)
    target = HessianTarget("hess", system, geometry, reference)
    result = least_squares(Objective([target], fit, use_priors=False))
    assert result.metrics_after["hess"]["rmse [kcal/mol/A^2]"] < 1e-6
    assert_recovered(result, truth)


def test_experimental_frequencies_expand_degenerate_modes():
    table = read_experimental_frequencies(DATA / "vib_frequencies_train.csv")
    expected_counts = {"O": 3, "C=O": 6, "C=C": 12, "C": 9, "N": 6, "C#N": 4, "O=C=O": 4}
    assert {k: len(v) for k, v in table.items()} == expected_counts
    assert np.count_nonzero(table["C"] == 3019.0) == 3  # f2 stretch, triply degenerate
    assert np.count_nonzero(table["C#N"] == 712.0) == 2  # Pi bend
    assert [degeneracy(s) for s in ("a1", "e", "f2", "Π", "Σg+", "b3u")] == [1, 2, 3, 2, 1, 1]


def test_experimental_target_on_linear_molecule():
    table = read_experimental_frequencies(DATA / "vib_frequencies_train.csv")
    mol, system = linear_molecule("C#N", [[0, 0, 0], [1.156, 0, 0], [-1.065, 0, 0]])
    system = perturbed(system, fields=("k",), seed=3)
    target = FrequencyTarget.from_experiment("hcn", system, mol.conformers[0], table["C#N"])
    fit = FitParameters.from_free(system.parameters)
    residuals = target.residuals(fit, torch.zeros(fit.size, dtype=torch.float64))
    assert residuals.shape == (4,)
    assert torch.all(torch.isfinite(residuals))


# ------------------------------------------------------------------ bad input
def test_bad_input_errors(methanol_reference):
    mol, truth, minimum, hess = methanol_reference
    order = np.roll(np.arange(mol.n_atoms), 1)
    with pytest.raises(InputError, match="atom order"):
        FrequencyTarget.from_hessian("f", truth, minimum[order], hess)
    with pytest.raises(InputError, match="atom order"):
        HessianTarget("h", truth, minimum, hess, numbers=mol.atomic_numbers[order])
    with pytest.raises(InputError, match="no reference frequencies"):
        FrequencyTarget.from_experiment("f", truth, minimum, [])
    with pytest.raises(InputError, match="12 vibrations"):
        FrequencyTarget.from_experiment("f", truth, minimum, [1000.0, 2000.0])
    with pytest.raises(InputError, match="Hessian has shape"):
        HessianTarget("h", truth, minimum, hess[:-3, :-3])
    with pytest.raises(InputError, match="not symmetric"):
        HessianTarget("h", truth, minimum, hess + np.triu(np.ones_like(hess)) * 50)


def test_targets_from_reference_records(methanol_reference):
    from ffparam.reference.records import Record, Species

    mol, truth, minimum, hess = methanol_reference
    record = Record(key="k", status="complete", method="mm", task='{"kind":"hessian"}',
                    species=Species.from_molecule(mol), geometry=minimum, hessian=hess)
    fit = FitParameters.from_free(perturbed(truth).parameters)
    x = torch.zeros(fit.size, dtype=torch.float64)
    direct = FrequencyTarget.from_hessian("f", truth, minimum, hess).residuals(fit, x)
    from_record = FrequencyTarget.from_record("f", truth, record).residuals(fit, x)
    torch.testing.assert_close(from_record, direct)
    assert HessianTarget.from_record("h", truth, record).residuals(fit, x).numel() == 171
    failed = Record(key="k", status="failed", method="mm", task='{"kind":"hessian"}',
                    species=Species.from_molecule(mol), geometry=minimum, error="SCF failed")
    with pytest.raises(InputError, match="not complete"):
        HessianTarget.from_record("h", truth, failed)
    energy_only = Record(key="k", status="complete", method="mm", task='{"kind":"energy"}',
                         species=Species.from_molecule(mol), geometry=minimum, energy=0.0)
    with pytest.raises(InputError, match="no Hessian"):
        FrequencyTarget.from_record("f", truth, energy_only)
