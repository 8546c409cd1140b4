"""Laplace parameter uncertainty (ffparam.fit.uncertainty) checked against independent
computations on a real torsion fit: ethanol's C-C-O-H bespoke torsions fitted to an MMFF94
scan (single-point MM, so the profile is exactly linear in the k's and the Laplace
posterior is exact).

* closed form: the MM profile is sum_j k_j X_j + const with X_j = sum over the torsions of
  group j of (1 + cos(n phi - phase)) / idivf, computed here with numpy from the scan
  geometries; Sigma_k = (X_c^T W X_c + P)^-1 (X_c the mean-centred design, W = 1/(n s^2),
  P = 1/width^2), s^2 = the weighted misfit per degree of freedom;
* delta method: with a log transform, Sigma_p = D Sigma_x D with D = dp/dx taken by central
  finite differences of the transform;
* band: sqrt(diag(J Sigma_x J^T)) vs the standard deviation of 4000 profiles evaluated by
  the engine at parameters drawn from N(x, Sigma_x). The profile is linear in x, so the
  sample standard deviation of each point estimates the band with relative standard error
  1/sqrt(2(N-1)) = 1.1%; the check allows 5.5% (5 standard errors) at every point, which a
  correct band fails with probability < 1e-5 even over the 24 points.
"""

import numpy as np
import pytest
import torch

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.fit.bespoke_torsions import DEFAULT_TORSION_PRIOR, make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.fit.uncertainty import laplace_uncertainty, propagated_sigma
from ffparam.params import FreeSpec
from tests.fit.mmff_scan import mmff_scan

DIHEDRAL = (0, 1, 2, 8)  # ethanol C-C-O-H


@pytest.fixture(scope="module")
def ethanol():
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    angles, geoms, energies = mmff_scan(mol, DIHEDRAL, spacing=15)
    start = assign_parameters(mol, "sage", charges="gasteiger")
    bespoke = make_bespoke_torsions(start, [(1, 2)])
    profile = TorsionProfile([DIHEDRAL], angles, geoms, energies, "1-2")
    return bespoke.system, profile


def _objective(system, profile):
    target = TorsionProfileTarget("rotor", system, profile, mode="single_point")
    return Objective([target], FitParameters.from_free(system.parameters))


def _dihedral_np(xyz: np.ndarray, quad) -> np.ndarray:
    p0, p1, p2, p3 = (xyz[:, a] for a in quad)
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * (b1 * n2).sum(-1)
    return np.arctan2(y, (n1 * n2).sum(-1))


def _design(system, fit, geometries) -> np.ndarray:
    """Mean-centred d(profile)/dk_j, (P, n), kcal/mol per kcal/mol, with numpy."""
    group = system.term_group("ProperTorsions")
    columns = []
    for (key,) in fit.groups:
        par = system.parameters.get(key.section, key.id)
        t = key.field[1:]
        n, idivf = par.fixed[f"periodicity{t}"], par.fixed[f"idivf{t}"]
        phase = par.values[f"phase{t}"]
        # the term group has one row per (torsion, periodicity): take each torsion once
        rows = {tuple(a) for a, pid in zip(group.atoms.tolist(), group.parameter_ids)
                if pid == key.id}
        assert rows
        col = sum((1 + np.cos(n * _dihedral_np(geometries, q) - phase)) / idivf for q in rows)
        columns.append(col - col.mean())
    return np.stack(columns, axis=1)


def test_laplace_equals_the_closed_form_of_a_linear_torsion_fit(ethanol):
    system, profile = ethanol
    objective = _objective(system, profile)
    result = optimize(objective, "least_squares")
    post = laplace_uncertainty(objective, result.x)
    fit, target = objective.fit, objective.targets[0]
    x_design = _design(system, fit, target.geometries)
    m, n = x_design.shape
    assert m > n
    with torch.no_grad():
        e = (target.mm_relative(fit, torch.as_tensor(result.x)) - target.reference).numpy()
    s2 = (e @ e / m) / (m - n)  # weighted (1/m, the target's mean) misfit per dof
    width = DEFAULT_TORSION_PRIOR
    expected = np.linalg.inv(x_design.T @ x_design / (m * s2) + np.eye(n) / width**2)
    assert post.residual_variance == pytest.approx(s2, rel=1e-10)
    np.testing.assert_allclose(post.covariance, expected, rtol=1e-8,
                               atol=1e-8 * np.abs(expected).max())
    np.testing.assert_allclose(post.sigma, np.sqrt(np.diag(expected)), rtol=1e-8)
    np.testing.assert_allclose(post.covariance_x, expected / width**2, rtol=1e-8,
                               atol=1e-8 * np.abs(expected).max() / width**2)
    # the data narrow every k below its prior width (6 kcal/mol); the two groups' k's that
    # one 1-D profile cannot tell apart stay the widest
    assert np.all(post.sigma < width)


def test_log_transform_follows_the_delta_method(ethanol):
    system, profile = ethanol
    params = system.parameters
    free = params.free_keys()
    positive = [k for k in free if params.get(k.section, k.id).values[k.field] > 0]
    assert positive  # Sage's own k's, carried into the bespoke terms
    for key in positive:
        params.free[key] = FreeSpec(None, None, DEFAULT_TORSION_PRIOR, "log")
    try:
        objective = _objective(system, profile)
        x = optimize(objective, "least_squares").x
        post = laplace_uncertainty(objective, x)
        fit = objective.fit
        h = 1e-6
        d = np.array([(fit.physical(torch.as_tensor(x + h * e)) -
                       fit.physical(torch.as_tensor(x - h * e))).numpy()[i] / (2 * h)
                      for i, e in enumerate(np.eye(len(x)))])
        np.testing.assert_allclose(post.covariance, d[:, None] * post.covariance_x * d,
                                   rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(post.sigma, np.abs(d) * np.sqrt(np.diag(post.covariance_x)),
                                   rtol=1e-6)
        is_log = [g[0] in positive for g in fit.groups]
        np.testing.assert_allclose(np.abs(d)[is_log], post.values[is_log], rtol=1e-6)
    finally:
        for key in positive:
            params.free[key] = FreeSpec(None, None, DEFAULT_TORSION_PRIOR, "linear")


def test_band_matches_sampled_profiles(ethanol):
    system, profile = ethanol
    objective = _objective(system, profile)
    post = laplace_uncertainty(objective, optimize(objective, "least_squares").x)
    fit, target = objective.fit, objective.targets[0]
    band = propagated_sigma(lambda x: target.mm_relative(fit, x), post)
    draws = np.random.default_rng().multivariate_normal(post.x, post.covariance_x, 4000)
    with torch.no_grad():
        profiles = np.array([target.mm_relative(fit, torch.as_tensor(x)).numpy()
                             for x in draws])
    sampled = profiles.std(axis=0, ddof=1)
    assert band.min() > 0
    np.testing.assert_allclose(sampled, band, rtol=5 * 1 / np.sqrt(2 * 3999))


def test_undetermined_problems_are_refused(ethanol):
    system, profile = ethanol
    objective = _objective(system, profile)
    x = np.zeros(objective.fit.size)
    with pytest.raises(InputError, match="residual_variance must be positive"):
        laplace_uncertainty(objective, x, residual_variance=0.0)
    short = TorsionProfile([DIHEDRAL], profile.angles[:3], profile.geometries[:3],
                           profile.energies[:3], "short")
    with pytest.raises(InputError, match="cannot estimate the residual variance"):
        laplace_uncertainty(_objective(system, short), x)
