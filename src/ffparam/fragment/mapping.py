"""From a fragment's torsion parameters back to the parent's.

A fragment keeps every neighbour of its central bond's two atoms, so every parent torsion
i-j-k-l around the bond has the counterpart map(i)-map(j)-map(k)-map(l) in the fragment.
Torsion groups (torsions sharing the symmetry classes of their four atoms, one bespoke
parameter each, :func:`ffparam.fit.smirks.torsion_groups`) therefore map parent group ->
fragment group. The fragment may be more symmetric than the parent (two parent groups onto
one fragment group); the other way round cannot happen because fragment growth adds
symmetry-equivalent cuts together.

Typical use by the bespoke workflow::

    fragment = fragment_for_bond(parent, bond)
    mapping = map_torsion_groups(fragment, parent, bond)
    frag_bespoke = make_bespoke_torsions(assign(fragment.molecule), [fragment.bond])
    ... fit frag_bespoke.system on the fragment's torsion drive -> fitted_fragment_system
    parent_bespoke = make_bespoke_torsions(assign(parent), [bond])
    extra = transfer_fitted_torsions(fitted_fragment_system, parent_bespoke.system, mapping)
    parent_system = apply_torsion_parameters(parent_bespoke.system, extra)  # MM engine
    # and extra (ids = the parent's bespoke SMIRKS) goes into the exported .offxml
"""

from __future__ import annotations

from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology
from ffparam.errors import CalculationError, InputError
from ffparam.fit.smirks import torsion_groups
from ffparam.fragment.fragmenter import Fragment
from ffparam.params.builder import rebind_terms
from ffparam.params.parameter_set import Parameter, ParameterSet
from ffparam.params.system import ParameterizedSystem

Torsion = tuple[int, int, int, int]
TorsionGroup = frozenset[Torsion]


def _canonical(row) -> Torsion:
    row = tuple(int(a) for a in row)
    return row if row[0] < row[3] else row[::-1]


def map_torsion_groups(fragment: Fragment, parent_molecule: Molecule,
                       parent_bond: tuple[int, int]) -> dict[TorsionGroup, TorsionGroup]:
    """Parent torsion group -> fragment torsion group for the torsions around
    ``parent_bond``.

    Keys are the parent's groups as :func:`~ffparam.fit.smirks.torsion_groups` returns them
    (torsions (i, j, k, l), i < l, parent indices; a group also holds the torsions around
    bonds symmetry-equivalent to ``parent_bond``); values are the fragment's groups around
    ``fragment.bond`` (fragment indices). Every parent torsion around ``parent_bond`` maps
    into its value.
    """
    if tuple(sorted(parent_bond)) != tuple(sorted(fragment.parent_bond)):
        raise InputError(f"fragment was built around bond {fragment.parent_bond}, "
                         f"not {tuple(parent_bond)}")
    to_fragment = fragment.parent_to_fragment
    fragment_groups = torsion_groups(Topology(fragment.molecule), fragment.bond)
    where = {t: g for g, group in enumerate(fragment_groups) for t in group}
    centre = set(parent_bond)
    out: dict[TorsionGroup, TorsionGroup] = {}
    for group in torsion_groups(Topology(parent_molecule), tuple(parent_bond)):
        own = [t for t in group if set(t[1:3]) == centre]
        try:
            targets = {where[_canonical([to_fragment[a] for a in t])] for t in own}
        except KeyError:
            raise CalculationError(f"a torsion around bond {tuple(parent_bond)} has no "
                                   "counterpart in the fragment") from None
        if len(targets) != 1:
            raise CalculationError(f"parent torsion group {sorted(group)[0]} maps onto "
                                   f"{len(targets)} fragment groups")
        out[frozenset(group)] = frozenset(fragment_groups[targets.pop()])
    return out


def bound_parameter_id(system: ParameterizedSystem, torsions, section: str = "ProperTorsions"
                       ) -> str:
    """The id of the one ``section`` parameter bound to every torsion in ``torsions``."""
    group = system.term_group(section)
    if group is None:
        raise InputError(f"the system has no {section}")
    bound: dict[Torsion, str] = {}
    for atoms, pid in zip(group.atoms.tolist(), group.parameter_ids):
        bound[_canonical(atoms)] = pid
    ids = {bound.get(_canonical(t)) for t in torsions}
    if None in ids:
        raise InputError(f"a torsion of {sorted(torsions)[0]} has no {section} term")
    if len(ids) != 1:
        raise InputError(f"torsions of group {sorted(torsions)[0]} use {len(ids)} different "
                         f"{section} parameters, expected one bespoke parameter")
    return ids.pop()


def transfer_fitted_torsions(fragment_system: ParameterizedSystem,
                             parent_system: ParameterizedSystem,
                             mapping: dict[TorsionGroup, TorsionGroup],
                             section: str = "ProperTorsions") -> ParameterSet:
    """The parent's bespoke torsion parameters with the values fitted on the fragment.

    Args:
        fragment_system: the fragment with its (fitted) bespoke torsions bound.
        parent_system: the parent with its bespoke torsions bound
            (:func:`~ffparam.fit.bespoke_torsions.make_bespoke_torsions`), start values.
        mapping: :func:`map_torsion_groups` for the bond.
        section: the torsion section.

    Returns:
        A ParameterSet of ``section`` parameters keyed by the parent's ids (bespoke SMIRKS),
        one per parent group. Each parent term takes k and phase (internal units, kcal/mol
        and rad, idivf already applied) of the fragment term with the same periodicity; a
        parent periodicity the fragment lacks gets k = 0, phase 0; a fragment periodicity
        the parent lacks is appended as a new term (idivf 1). The parent's ``fixed`` data
        (periodicities, idivf) are kept.
    """
    out = ParameterSet(settings=dict(parent_system.parameters.settings))
    for parent_group, fragment_group in mapping.items():
        parent_par = parent_system.parameters.get(
            section, bound_parameter_id(parent_system, parent_group, section))
        fragment_par = fragment_system.parameters.get(
            section, bound_parameter_id(fragment_system, fragment_group, section))
        out.add(section, merge_periodic_terms(parent_par, fragment_par))
    return out


def merge_periodic_terms(target: Parameter, source: Parameter) -> Parameter:
    """``target``'s id and term layout with ``source``'s k and phase per periodicity."""
    def terms(par: Parameter) -> dict[int, tuple[float, float]]:
        return {int(par.fixed[f"periodicity{n}"]): (par.values[f"k{n}"], par.values[f"phase{n}"])
                for n in range(1, par.n_terms() + 1)}

    values, fixed = {}, dict(target.fixed)
    source_terms = terms(source)
    n_target = target.n_terms()
    for n in range(1, n_target + 1):
        k, phase = source_terms.pop(int(target.fixed[f"periodicity{n}"]), (0.0, 0.0))
        values[f"k{n}"], values[f"phase{n}"] = float(k), float(phase)
    for n, (period, (k, phase)) in enumerate(sorted(source_terms.items()), start=n_target + 1):
        values[f"k{n}"], values[f"phase{n}"] = float(k), float(phase)
        fixed[f"periodicity{n}"], fixed[f"idivf{n}"] = period, 1.0
    return Parameter(target.id, values, fixed)


def apply_torsion_parameters(system: ParameterizedSystem, parameters: ParameterSet,
                             section: str = "ProperTorsions") -> ParameterizedSystem:
    """``system`` with every ``section`` term bound to a parameter id present in
    ``parameters`` rebound to that parameter (new values, possibly new terms)."""
    group = system.term_group(section)
    if group is None:
        raise InputError(f"the system has no {section}")
    replacements = {}
    for atoms, pid in zip(group.atoms.tolist(), group.parameter_ids):
        if (section, pid) in parameters:
            replacements[tuple(atoms)] = parameters.get(section, pid)
    return rebind_terms(system, section, replacements)
