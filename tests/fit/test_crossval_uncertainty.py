"""Cross-validated RMSE from the hat matrix (ffparam.fit.crossval) against real refits:
ethanol's C-C-O-H bespoke torsions fitted to an MMFF94 scan (single-point MM, linear in the
k's, so the held-out residuals are exact): for each of the 2 interleaved folds, a fit to the
other half of the grid (each point keeping its weight) predicts the held-out half."""

import numpy as np
import pytest
import torch

from ffparam.errors import InputError
from ffparam.fit.crossval import cross_validated_rmse, interleaved_folds
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from tests.fit.test_laplace_uncertainty import DIHEDRAL, _objective, ethanol  # noqa: F401


def _refit_held_out(system, profile, target, keep: np.ndarray) -> np.ndarray:
    """Residuals (kcal/mol) at the points not in ``keep`` of a fit to those in ``keep``."""
    m = len(profile.energies)
    sub = TorsionProfile([DIHEDRAL], profile.angles[keep], profile.geometries[keep],
                         profile.energies[keep], "half")
    half = TorsionProfileTarget("half", system, sub, mode="single_point",
                                weight=keep.sum() / m)
    fit = FitParameters.from_free(system.parameters)
    x = optimize(Objective([half], fit), "least_squares", tolerance=1e-12).x
    with torch.no_grad():
        d = (target.mm_relative(fit, torch.as_tensor(x)) - target.reference).numpy()
    return (d - d[keep].mean())[~keep]


def test_held_out_residuals_equal_refits_on_half_the_grid(ethanol):  # noqa: F811
    system, profile = ethanol
    objective = _objective(system, profile)
    target = objective.targets[0]
    result = optimize(objective, "least_squares", tolerance=1e-12)
    cv = cross_validated_rmse(objective, result.x)["rotor"]
    folds = interleaved_folds(target, len(profile.energies), 2)
    assert np.all(np.diff(folds[np.argsort(profile.angles[:, 0])]) != 0)  # alternating
    held = np.concatenate([_refit_held_out(system, profile, target, folds != f)
                           for f in range(2)])
    expected = float(np.sqrt(np.mean(held**2)))
    train = result.metrics_after["rotor"]["rmse [kcal/mol]"]
    assert cv == pytest.approx(expected, rel=1e-6)
    assert cv > train  # predicting unseen points is harder than fitting them


def test_bad_folds_are_refused(ethanol):  # noqa: F811
    system, profile = ethanol
    objective = _objective(system, profile)
    with pytest.raises(InputError, match="n_folds must be at least 2"):
        cross_validated_rmse(objective, np.zeros(objective.fit.size), n_folds=1)
    with pytest.raises(InputError, match="point\\(s\\) for 100 folds"):
        cross_validated_rmse(objective, np.zeros(objective.fit.size), n_folds=100)



def _weighted_refit_held_out(objective, x0: np.ndarray, keep: np.ndarray,
                             w: np.ndarray) -> np.ndarray:
    """Errors (kcal/mol, unweighted) at the points not in ``keep`` of a fit to those in
    ``keep``: min over (x, c) of sum_keep s^2 w_i (d_i(x) - c)^2 + the priors (s the target's
    weight/denominator scale, as in the objective), solved directly as one linear
    least-squares problem (single-point MM is linear in the torsion k's)."""
    target = objective.targets[0]
    fit = objective.fit

    def diff(x):
        return target.mm_relative(fit, x) - target.reference

    x0t = torch.as_tensor(x0, dtype=torch.float64)
    d0 = diff(x0t).detach().numpy()
    jac = torch.autograd.functional.jacobian(diff, x0t).numpy()
    r, full = objective.residuals_and_jacobian(x0)
    m = len(d0)
    scale = np.sqrt(target.weight / m) / target.denominator
    sw = scale * np.sqrt(w[keep])[:, None]
    a = np.vstack([np.hstack([sw * jac[keep], -sw]),                 # unknowns: dx, c
                   np.hstack([full[m:], np.zeros((len(full) - m, 1))])])
    b = -np.concatenate([sw[:, 0] * d0[keep], r[m:]])
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    return (d0 + jac @ sol[:-1] - sol[-1])[~keep]


def test_weighted_points_give_an_unweighted_held_out_rmse(ethanol):  # noqa: F811
    """With per-point weights (the sigma weights of a Delta-learned profile) the held-out
    residuals are errors in kcal/mol, like the training RMSE: equal to direct weighted
    refits of each half of the grid."""
    system, profile = ethanol
    objective = _objective(system, profile)
    target = objective.targets[0]
    w = 0.05 + 0.95 * (0.5 + 0.5 * np.cos(np.radians(profile.angles[:, 0])))  # 0.05..1
    target.sqrt_w = torch.as_tensor(np.sqrt(w), dtype=torch.float64)
    result = optimize(objective, "least_squares", tolerance=1e-12)
    cv = cross_validated_rmse(objective, result.x)["rotor"]
    folds = interleaved_folds(target, len(w), 2)
    held = np.concatenate([_weighted_refit_held_out(objective, result.x, folds != f, w)
                           for f in range(2)])
    order = np.concatenate([np.flatnonzero(folds == f) for f in range(2)])
    assert cv == pytest.approx(float(np.sqrt(np.mean(held**2))), rel=1e-6)
    # what the weighted residuals alone would give (the old bug): clearly different here
    assert abs(cv - float(np.sqrt(np.mean(w[order] * held**2)))) > 0.1 * cv
