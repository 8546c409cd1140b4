"""Bespoke torsion parameters for rotatable bonds.

For each torsion group around a bond (torsions whose four atoms share symmetry classes),
one new ProperTorsions parameter keyed by a SMIRKS that matches only that group
(:func:`ffparam.fit.smirks.bespoke_torsion_type_smirks`). Its start values copy the
parameter the starting force field assigned to the group, expanded to periodicities
1..``max_periodicity`` (new terms start at k = 0, phase 0); all k are freed with a
Gaussian prior (linear transform, so k may change sign; a negative k is the same profile as
|k| with the phase shifted by 180 degrees, up to a constant, and is kept as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ffparam.errors import InputError
from ffparam.params.builder import rebind_terms
from ffparam.params.parameter_set import FreeSpec, Parameter, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem

DEFAULT_TORSION_PRIOR = 6.0
"""Prior width of bespoke torsion barriers, kcal/mol: the width OpenFF BespokeFit gives
ForceBalance for ``ProperTorsions/k``. It regularizes the group parameters, which a single
1-D profile cannot tell apart, without pulling the fit away from the data (the torsion
target weighs in as its mean squared error, so a much narrower prior would dominate)."""


@dataclass
class BespokeTorsions:
    """The bespoke torsions of a molecule.

    Attributes:
        system: the system with the bespoke parameters bound and their k fields free.
        parameters: the new SMIRKS-keyed ProperTorsions parameters (start values).
        bonds: bond -> list of SMIRKS created for it.
    """

    system: ParameterizedSystem
    parameters: ParameterSet
    bonds: dict[tuple[int, int], list[str]] = field(default_factory=dict)

    def free_keys(self) -> list[ParameterKey]:
        return [k for k in self.system.parameters.free_keys() if k.section == "ProperTorsions"]


def _start_parameter(system: ParameterizedSystem, row: tuple[int, ...], smirks: str,
                     max_periodicity: int) -> Parameter:
    group = system.term_group("ProperTorsions")
    if group is None:
        raise InputError("the starting system has no proper torsions")
    rev = tuple(reversed(row))
    pid = next((p for a, p in zip(group.atoms.tolist(), group.parameter_ids)
                if tuple(a) in (row, rev)), None)
    if pid is None:
        raise InputError(f"no proper torsion on atoms {row} in the starting system")
    old = system.parameters.get("ProperTorsions", pid)
    by_period = {int(old.fixed[f"periodicity{n}"]): (old.values[f"k{n}"], old.values[f"phase{n}"])
                 for n in range(1, old.n_terms() + 1)}
    values, fixed = {}, {}
    periods = sorted(set(range(1, max_periodicity + 1)) | set(by_period))
    for t, period in enumerate(periods, start=1):
        k, phase = by_period.get(period, (0.0, 0.0))
        values[f"k{t}"], values[f"phase{t}"] = float(k), float(phase)
        fixed[f"periodicity{t}"] = period
        fixed[f"idivf{t}"] = 1.0
    return Parameter(smirks, values, fixed)


def make_bespoke_torsions(system: ParameterizedSystem, bonds: list[tuple[int, int]],
                          max_periodicity: int = 4,
                          prior_width: float = DEFAULT_TORSION_PRIOR) -> BespokeTorsions:
    """Bind bespoke torsion parameters to ``bonds`` of ``system`` and free their barriers."""
    from ffparam.fit.smirks import bespoke_torsion_type_smirks

    molecule = system.molecule
    extra = ParameterSet(settings=dict(system.parameters.settings))
    replacements: dict[tuple[int, ...], Parameter] = {}
    created: dict[tuple[int, int], list[str]] = {}
    for bond in bonds:
        bond = tuple(int(a) for a in bond)
        for smirks, group in bespoke_torsion_type_smirks(molecule, bond):
            if ("ProperTorsions", smirks) in extra:
                continue  # a symmetry-equivalent bond produced it already
            parameter = _start_parameter(system, sorted(group)[0], smirks, max_periodicity)
            extra.add("ProperTorsions", parameter)
            created.setdefault(bond, []).append(smirks)
            for row in group:
                replacements[row] = parameter
    new = rebind_terms(system, "ProperTorsions", replacements,
                       label=f"{system.source} + bespoke torsions")
    spec = FreeSpec(None, None, prior_width, "linear")
    for smirks in extra.sections.get("ProperTorsions", {}):
        new.parameters.set_free("ProperTorsions", smirks, "k*", spec)
    return BespokeTorsions(new, extra, created)


def choose_rotor_priors(bespoke: BespokeTorsions, parameters: ParameterSet, targets,
                        bonds: list, candidates, fit):
    """Prior width (kcal/mol) of each rotor's bespoke torsion barriers by cross-validation
    (:func:`~ffparam.fit.crossval.choose_prior_width`): ``targets[i]`` is the profile of
    ``bonds[i]`` (a bond, or a list of the bonds of a 2-D drive); ``parameters`` the free
    set to fit; ``fit(objective)`` a FitResult.
    Returns the :class:`~ffparam.fit.crossval.PriorChoice`."""
    from ffparam.fit.crossval import choose_prior_width

    groups = {}
    for target, bond in zip(targets, bonds):
        several = isinstance(bond[0], (tuple, list))
        ids = {i for b in (bond if several else [bond]) for i in bespoke.bonds.get(tuple(b), [])}
        groups[target.name] = [k for k in parameters.free_keys()
                               if k.section == "ProperTorsions" and k.id in ids]
    return choose_prior_width(targets, parameters, groups, candidates, fit)


def fitted_extra(bespoke: BespokeTorsions, fitted: ParameterSet) -> ParameterSet:
    """The bespoke parameters with their fitted values (from a fit's ParameterSet)."""
    out = bespoke.parameters.copy()
    for section, par in out:
        par.values.update(fitted.get(section, par.id).values)
    out.free.clear()
    return out
