"""Fitting bespoke torsions on fragments and carrying the values back to the parent.

For a rotor scanned on a fragment: the fragment gets the same starting force field and
charge model as the parent, bespoke torsions for its central bond, and a torsion fit to its
own scan; the fitted values go to the parent's bespoke parameters through the torsion-group
map (:mod:`ffparam.fragment.mapping`).
"""

from __future__ import annotations

from ffparam.fit.bespoke_torsions import BespokeTorsions, make_bespoke_torsions
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.torsion import TorsionProfileTarget
from ffparam.params.system import ParameterizedSystem


def fit_fragment(rotor, settings) -> tuple[ParameterizedSystem, TorsionProfileTarget, object]:
    """Fit the bespoke torsions of one fragment to its scan; returns the fitted fragment
    system, the target and the optimizer result."""
    from ffparam.assign import assign_parameters

    fragment = rotor.fragment
    charges = "am1bcc" if settings.charges == "resp" else settings.charges
    start = assign_parameters(fragment.molecule, settings.forcefield, charges=charges)
    bespoke = make_bespoke_torsions(start, [tuple(fragment.bond)])
    target = TorsionProfileTarget(f"rotor_{rotor.bond[0]}-{rotor.bond[1]}", bespoke.system,
                                  rotor.profile, mode=settings.mode)
    if rotor.delta is not None:  # a Delta-learned scan: points the GP is unsure of pull less
        from ffparam.workflows.bespoke_delta import weigh_by_sigma

        weigh_by_sigma(target, rotor.delta)
    fit = FitParameters.from_free(bespoke.system.parameters)
    result = optimize(Objective([target], fit), "least_squares",
                      max_iterations=settings.max_iterations)
    return bespoke.system.with_parameters(result.parameters), target, result


def fit_fragments(bespoke: BespokeTorsions, rotors, settings) -> ParameterizedSystem:
    """The parent's bespoke system with every fragment rotor's fitted torsions transferred.
    Each rotor gets ``fit_target`` and ``fit_result`` for the report."""
    from ffparam.fragment import (
        apply_torsion_parameters,
        map_torsion_groups,
        transfer_fitted_torsions,
    )

    system = bespoke.system
    for rotor in rotors:
        fitted_fragment, target, result = fit_fragment(rotor, settings)
        mapping = map_torsion_groups(rotor.fragment, system.molecule, rotor.bond)
        extra = transfer_fitted_torsions(fitted_fragment, system, mapping)
        system = apply_torsion_parameters(system, extra)
        rotor.fit_target, rotor.fit_result = target, result
    return system
