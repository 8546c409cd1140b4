"""Parameter recovery: perturb known parameters by 20-50 %, fit to noise-free synthetic MM
reference data, recover the originals to 1e-4 relative."""

import numpy as np
import pytest
import torch

from ffparam.chem import Molecule
from ffparam.errors import InputError, NonFiniteError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.energies import ForceTarget, RelativeEnergyTarget
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.mm import MMEngine
from ffparam.params import FreeSpec, ParameterKey
from tests.mm.element_typed import element_typed_system

PERTURB = {"k1": 1.45, "k2": 0.7, "k3": 1.3}


@pytest.fixture(scope="module")
def butanol():
    mol = Molecule.from_smiles("CCCCO").generate_conformers(30, seed=2, rms_threshold=0.05)
    assert mol.n_conformers >= 8
    return mol


def _scan(system, mol, n_points=12, mode="relaxed", k_position=1.0):
    """Synthetic 'reference' scan of the C1-C2 bond: geometries with the dihedral set by
    RDKit, energies from the same MM protocol with the true parameters (noise-free)."""
    from rdkit.Chem import rdMolTransforms

    dihedral = np.array([[0, 1, 2, 3]])
    angles = np.linspace(-180, 180, n_points, endpoint=False)
    rd = Molecule.from_rdkit(mol.rdmol).with_conformers(mol.conformers[:1]).rdmol
    conf = rd.GetConformer()
    geometries = []
    for a in angles:
        rdMolTransforms.SetDihedralDeg(conf, 0, 1, 2, 3, float(a))
        geometries.append(conf.GetPositions())
    geometries = np.array(geometries)
    draft = TorsionProfile(dihedral, angles[:, None], geometries, np.zeros(n_points), "C1-C2")
    fit = FitParameters.from_free(_all_free(system.parameters))
    truth = TorsionProfileTarget("truth", system, draft, mode=mode, k_position=k_position)
    with torch.no_grad():
        energies = truth.mm_relative(fit, torch.zeros(fit.size, dtype=torch.float64)).numpy()
    return TorsionProfile(dihedral, angles[:, None], geometries, energies, "C1-C2")


def _all_free(params):
    params = params.copy()
    params.set_free("ProperTorsions", "*", "k*", FreeSpec())
    return params


def _perturbed(system, keys, factors):
    """A copy of ``system`` with the ``keys`` multiplied by ``factors`` and marked free."""
    params = system.parameters.copy()
    for key, factor in zip(keys, factors):
        params.sections[key.section][key.id].values[key.field] *= factor
        params.free[key] = FreeSpec()  # no prior: exact recovery
    return system.with_parameters(params)


def _torsion_keys(system, pid):
    return [ParameterKey("ProperTorsions", pid, f) for f in ("k1", "k2", "k3")]


def _check_recovered(result, truth: dict):
    for key, value in truth.items():
        got = result.parameters.sections[key.section][key.id].values[key.field]
        assert got == pytest.approx(value, rel=1e-4, abs=1e-7), str(key)


def test_relative_energy_recovery(butanol):
    true_system = element_typed_system(butanol)
    keys = _torsion_keys(true_system, "C3-C3")
    truth = {k: true_system.parameters.get(k.section, k.id).values[k.field] for k in keys}
    energies = MMEngine(true_system).energy(butanol.conformers).numpy()
    start = _perturbed(true_system, keys, [PERTURB[k.field] for k in keys])
    fit = FitParameters.from_free(start.parameters)
    target = RelativeEnergyTarget("pes", start, butanol.conformers, energies)
    result = optimize(Objective([target], fit))
    assert result.objective_after < 1e-12 < result.objective_before
    _check_recovered(result, truth)
    assert result.metrics_after["pes"]["rmse [kcal/mol]"] < 1e-6


def test_force_recovery_with_log_transform(butanol):
    true_system = element_typed_system(butanol)
    keys = [ParameterKey("Bonds", "C3-O3", "k"), ParameterKey("Angles", "C3-C3-O3", "k"),
            ParameterKey("Bonds", "C3-O3", "length")]
    truth = {k: true_system.parameters.get(k.section, k.id).values[k.field] for k in keys}
    rng = np.random.default_rng(0)
    geoms = butanol.conformers + rng.normal(0, 0.03, butanol.conformers.shape)
    forces = MMEngine(true_system).compute(geoms).forces.numpy()
    start = _perturbed(true_system, keys, [1.4, 0.65, 1.2])
    params = start.parameters
    params.free[keys[0]] = FreeSpec(lower=0.0, transform="log")
    params.free[keys[1]] = FreeSpec(lower=0.0, transform="log")
    fit = FitParameters.from_free(params)
    for remove_net in (False, True):
        target = ForceTarget("forces", start, geoms, forces, remove_net=remove_net)
        result = optimize(Objective([target], fit))
        _check_recovered(result, truth)


@pytest.mark.parametrize("mode", ["single_point", "relaxed"])
def test_torsion_profile_recovery(butanol, mode):
    true_system = element_typed_system(butanol)
    profile = _scan(true_system, butanol, mode=mode)
    keys = _torsion_keys(true_system, "C3-C3")
    truth = {k: true_system.parameters.get(k.section, k.id).values[k.field] for k in keys}
    start = _perturbed(true_system, keys, [PERTURB[k.field] for k in keys])
    fit = FitParameters.from_free(start.parameters)
    target = TorsionProfileTarget("scan", start, profile, mode=mode)
    result = optimize(Objective([target], fit))
    assert result.metrics_before["scan"]["rmse [kcal/mol]"] > 0.05
    assert result.metrics_after["scan"]["rmse [kcal/mol]"] < 1e-5
    _check_recovered(result, truth)


def test_relaxed_jacobian_matches_finite_differences(butanol):
    true_system = element_typed_system(butanol)
    profile = _scan(true_system, butanol, n_points=6)
    keys = _torsion_keys(true_system, "C3-C3")
    start = _perturbed(true_system, keys, [PERTURB[k.field] for k in keys])
    fit = FitParameters.from_free(start.parameters)
    objective = Objective([TorsionProfileTarget("scan", start, profile, k_position=1.0)], fit)
    x0 = np.array([0.1, -0.2, 0.05])
    _, jac = objective.residuals_and_jacobian(x0)
    h = 1e-5
    for i in range(len(x0)):
        plus, minus = x0.copy(), x0.copy()
        plus[i] += h
        minus[i] -= h
        fd = (objective.residuals_and_jacobian(plus)[0]
              - objective.residuals_and_jacobian(minus)[0]) / (2 * h)
        np.testing.assert_allclose(jac[:, i], fd, atol=2e-5, rtol=1e-3)


@pytest.mark.stochastic
def test_optimizers_agree_on_small_problem(butanol, seed):
    """L-BFGS recovers the true torsions exactly; CMA-ES (150 trials on 3 smooth,
    well-conditioned dimensions: ~15 generations of 10, each shrinking the step) gets within
    a fifth of the start for any seed; TPE starts from x0 (an enqueued trial), so its best is
    never worse than the start, whatever it samples."""
    true_system = element_typed_system(butanol)
    keys = _torsion_keys(true_system, "C3-C3")
    energies = MMEngine(true_system).energy(butanol.conformers).numpy()
    start = _perturbed(true_system, keys, [PERTURB[k.field] for k in keys])
    params = start.parameters
    for k in keys:
        params.free[k] = FreeSpec(lower=-5, upper=5)
    fit = FitParameters.from_free(params)
    objective = Objective([RelativeEnergyTarget("pes", start, butanol.conformers, energies)], fit)
    lbfgs = optimize(objective, "lbfgs")
    assert lbfgs.objective_after < 1e-8
    cma = optimize(objective, "cmaes", n_trials=150, search_radius=1.0, seed=seed)
    assert cma.objective_after < 0.2 * cma.objective_before
    tpe = optimize(objective, "tpe", n_trials=40, search_radius=1.0, seed=seed)
    assert tpe.objective_after <= tpe.objective_before
    assert [h["iteration"] for h in lbfgs.history] == list(range(len(lbfgs.history)))


def test_priors_pull_towards_start(butanol):
    true_system = element_typed_system(butanol)
    keys = _torsion_keys(true_system, "C3-C3")
    energies = MMEngine(true_system).energy(butanol.conformers).numpy()
    start = _perturbed(true_system, keys, [PERTURB[k.field] for k in keys])
    params = start.parameters
    for k in keys:
        params.free[k] = FreeSpec(prior_width=0.01)
    fit = FitParameters.from_free(params)
    target = RelativeEnergyTarget("pes", start, butanol.conformers, energies)
    tight = optimize(Objective([target], fit))
    loose = optimize(Objective([target], fit, use_priors=False))
    assert tight.metrics_after["pes"]["rmse [kcal/mol]"] > loose.metrics_after["pes"][
        "rmse [kcal/mol]"]
    moved_tight = np.abs(tight.x).sum()
    assert moved_tight > 0


def test_bad_inputs(butanol):
    system = element_typed_system(butanol)
    params = system.parameters.copy()
    with pytest.raises(InputError, match="no free parameters"):
        FitParameters.from_free(params)
    # a free parameter no term reads
    from ffparam.params import Parameter
    params.add("Bonds", Parameter("X-unused", {"k": 10.0, "length": 1.0}))
    params.free[ParameterKey("Bonds", "X-unused", "k")] = FreeSpec()
    fit = FitParameters.from_free(params)
    energies = MMEngine(system).energy(butanol.conformers).numpy()
    target = RelativeEnergyTarget("pes", system, butanol.conformers, energies)
    with pytest.raises(InputError, match="used by no term"):
        Objective([target], fit)
    # mismatched atom order
    shuffled = butanol.conformers[:, ::-1].copy()
    with pytest.raises(InputError, match="atom order does not match"):
        RelativeEnergyTarget("pes", system, shuffled, energies)
    with pytest.raises(InputError, match="energies for"):
        RelativeEnergyTarget("pes", system, butanol.conformers, energies[:-1])
    with pytest.raises(InputError, match="no targets"):
        Objective([], fit)


def test_nan_objective_names_parameters(butanol):
    system = element_typed_system(butanol)
    key = ParameterKey("ProperTorsions", "C3-C3", "k1")
    params = system.parameters.copy()
    params.free[key] = FreeSpec()
    start = system.with_parameters(params)
    fit = FitParameters.from_free(params)
    energies = MMEngine(system).energy(butanol.conformers).numpy()
    energies[0] = 0.0
    objective = Objective([RelativeEnergyTarget("pes", start, butanol.conformers, energies)], fit)
    with pytest.raises(NonFiniteError, match="ProperTorsions/C3-C3/k1=nan"):
        objective.residuals(torch.tensor([float("nan")], dtype=torch.float64))
