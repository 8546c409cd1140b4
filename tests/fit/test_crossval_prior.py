"""The torsion prior width chosen by cross-validation (ffparam.fit.crossval
.choose_prior_width): ethanol's C-C-O-H bespoke torsions fitted to an MMFF94 scan
(single-point MM, so the hat-matrix held-out residuals are exact), checked against real
refits of each half of the grid at every candidate width."""

import numpy as np
import pytest
import torch

from ffparam.errors import InputError
from ffparam.fit.bespoke_torsions import choose_rotor_priors
from ffparam.fit.crossval import choose_prior_width, interleaved_folds, with_prior_widths
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfile, TorsionProfileTarget
from ffparam.workflows.bespoke import BespokeSettings
from tests.fit.test_laplace_uncertainty import DIHEDRAL, ethanol  # noqa: F401

CANDIDATES = (0.02, 0.3, 6.0)


def fit(objective):
    return optimize(objective, "least_squares", tolerance=1e-12)


def refit_rmse(system, profile, keys, width: float) -> float:
    """Held-out RMSE (kcal/mol) over both interleaved halves, by real refits with every
    bespoke k at prior ``width`` (each half keeps its points' weight)."""
    params = with_prior_widths(system.parameters, {k: width for k in keys})
    target = TorsionProfileTarget("rotor", system, profile, mode="single_point")
    folds = interleaved_folds(target, len(profile.energies), 2)
    held = []
    for f in range(2):
        keep = folds != f
        half = TorsionProfileTarget(
            "half", system, TorsionProfile([DIHEDRAL], profile.angles[keep],
                                           profile.geometries[keep], profile.energies[keep]),
            mode="single_point", weight=keep.sum() / len(keep))
        space = FitParameters.from_free(params)
        x = fit(Objective([half], space)).x
        with torch.no_grad():
            d = (target.mm_relative(space, torch.as_tensor(x)) - target.reference).numpy()
        held.append((d - d[keep].mean())[~keep])
    return float(np.sqrt(np.mean(np.concatenate(held) ** 2)))


def test_chosen_width_predicts_the_held_out_half_best(ethanol):  # noqa: F811
    system, profile = ethanol
    target = TorsionProfileTarget("rotor", system, profile, mode="single_point")
    keys = [k for k in system.parameters.free_keys() if k.section == "ProperTorsions"]
    choice = choose_prior_width([target], system.parameters, {"rotor": keys}, CANDIDATES, fit)
    scores = choice.rmse_cv["rotor"]
    assert sorted(scores) == sorted(CANDIDATES)
    for width in CANDIDATES:  # the hat-matrix score of each width is its refits' RMSE
        assert scores[width] == pytest.approx(refit_rmse(system, profile, keys, width),
                                              rel=1e-5)
    best = choice.widths["rotor"]
    assert scores[best] == min(scores.values())
    assert scores[0.02] > scores[best]  # a prior this tight cannot follow MMFF's profile
    # the final fit is the fit at the chosen width
    direct = fit(Objective([target], FitParameters.from_free(
        with_prior_widths(system.parameters, {k: best for k in keys}))))
    assert choice.result.objective_after == pytest.approx(direct.objective_after, rel=1e-8)
    assert all(choice.objective.fit.parameters.free[k].prior_width == best for k in keys)
    assert all(system.parameters.free[k].prior_width == 6.0 for k in keys)  # untouched


def test_rotor_groups_come_from_the_bespoke_bonds(ethanol):  # noqa: F811
    from ffparam.assign import assign_parameters
    from ffparam.chem import Molecule
    from ffparam.fit.bespoke_torsions import make_bespoke_torsions

    _, profile = ethanol
    mol = Molecule.from_smiles("CCO").generate_conformers(1, seed=5)
    bespoke = make_bespoke_torsions(assign_parameters(mol, "sage", charges="gasteiger"),
                                    [(1, 2)])
    target = TorsionProfileTarget("rotor_1-2", bespoke.system, profile, mode="single_point")
    choice = choose_rotor_priors(bespoke, bespoke.system.parameters, [target], [(1, 2)],
                                 [0.5, 6.0], fit)
    assert set(choice.widths) == {"rotor_1-2"} and choice.widths["rotor_1-2"] in (0.5, 6.0)
    free = choice.objective.fit.parameters.free
    assert {free[k].prior_width for k in free if k.id in bespoke.bonds[(1, 2)]} == \
        {choice.widths["rotor_1-2"]}


def test_bad_candidates_are_refused(ethanol):  # noqa: F811
    system, profile = ethanol
    target = TorsionProfileTarget("rotor", system, profile, mode="single_point")
    keys = system.parameters.free_keys()
    with pytest.raises(InputError, match="positive"):
        choose_prior_width([target], system.parameters, {"rotor": keys}, [], fit)
    with pytest.raises(InputError, match="positive"):
        choose_prior_width([target], system.parameters, {"rotor": keys}, [1.0, -1.0], fit)
    with pytest.raises(InputError, match="unknown target"):
        choose_prior_width([target], system.parameters, {"other": keys}, [1.0], fit)
    with pytest.raises(InputError, match="prior_widths_kcal_mol"):
        BespokeSettings(prior_widths_kcal_mol=[1.0, 0.0])
