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
