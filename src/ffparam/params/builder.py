"""Build a :class:`ParameterizedSystem` from "which parameter applies to which atoms".

Assigners (SMIRNOFF, GAFF2, ...) only decide, for each term row, the id of the parameter
that applies; :func:`build_system` keeps the parameters that are used and turns the
assignment into index arrays.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ffparam.chem.topology import Topology
from ffparam.errors import InputError
from ffparam.forms import FORMS
from ffparam.params.parameter_set import Parameter, ParameterKey, ParameterSet
from ffparam.params.system import NonbondedTerms, ParameterizedSystem, TermGroup

TermRow = tuple[tuple[int, ...], str, float]
"""(atom indices, parameter id, energy scale) of one assigned term."""


def build_system(
    topology: Topology,
    source: ParameterSet,
    bonded: dict[str, Sequence[TermRow]],
    vdw_ids: Sequence[str],
    charges: np.ndarray,
    charge_ids: Sequence[str] | None = None,
    nbfix: dict[tuple[str, str], str] | None = None,
    label: str = "",
) -> ParameterizedSystem:
    """Bind ``topology``'s terms to parameters of ``source``.

    Args:
        topology: the molecule's topology.
        source: the full force field; only used parameters are copied into the system.
        bonded: section -> term rows (atoms, parameter id, scale). Periodic torsion
            parameters expand to one row per ``k#`` field with ``fixed['periodicity#']``.
        vdw_ids: per-atom id in ``source['vdW']``.
        charges: per-atom partial charges (e), stored as section ``Charges``.
        charge_ids: ids for the charges (default ``atom:i``); atoms sharing an id share
            one charge parameter (e.g. symmetry-equivalent atoms).
        nbfix: (vdW id a, vdW id b) -> id in ``source['NBFix']`` overriding that pair's LJ.
        label: provenance text.
    """
    n_atoms = topology.n_atoms
    charges = np.asarray(charges, dtype=np.float64)
    if charges.shape != (n_atoms,) or len(vdw_ids) != n_atoms:
        raise InputError(f"need one charge and one vdW id per atom ({n_atoms})")
    if not np.all(np.isfinite(charges)):
        raise InputError("non-finite partial charge")
    params = ParameterSet(settings=dict(source.settings))
    for section, rows in bonded.items():
        for _, pid, _ in rows:
            if (section, pid) not in params:
                params.add(section, _copy(source.get(section, pid)))
    for pid in vdw_ids:
        if ("vdW", pid) not in params:
            params.add("vdW", _copy(source.get("vdW", pid)))
    charge_ids = list(charge_ids) if charge_ids is not None else [f"atom:{i}" for i in
                                                                  range(n_atoms)]
    for cid, q in zip(charge_ids, charges, strict=True):
        if ("Charges", cid) not in params:
            params.add("Charges", Parameter(cid, {"charge": float(q)}))
    for fix_id in (nbfix or {}).values():
        if ("NBFix", fix_id) not in params:
            params.add("NBFix", _copy(source.get("NBFix", fix_id)))

    terms = [g for section, rows in bonded.items() if rows
             for g in _term_groups(section, rows, params)]
    nonbonded = NonbondedTerms.from_topology(
        topology,
        charge_index=[params.index(ParameterKey("Charges", c, "charge")) for c in charge_ids],
        sigma_index=[params.index(ParameterKey("vdW", v, "sigma")) for v in vdw_ids],
        epsilon_index=[params.index(ParameterKey("vdW", v, "epsilon")) for v in vdw_ids],
        coulomb_14_scale=float(params.settings["coulomb_14_scale"]),
        lj_14_scale=float(params.settings["lj_14_scale"]),
        combining_rule=str(params.settings.get("combining_rule", "lorentz-berthelot")),
        vdw_ids=list(vdw_ids),
    )
    if nbfix:
        _attach_nbfix(nonbonded, vdw_ids, nbfix, params)
    return ParameterizedSystem(topology, params, terms, nonbonded, label)


def _copy(parameter: Parameter) -> Parameter:
    return Parameter(parameter.id, dict(parameter.values), dict(parameter.fixed))


def _term_groups(section: str, rows: Sequence[TermRow], params: ParameterSet) -> list[TermGroup]:
    form = FORMS.section_form(section)
    if not form.periodic:
        index = {f: [params.index(ParameterKey(section, pid, f)) for _, pid, _ in rows]
                 for f in form.fields}
        return [TermGroup(form.name, section, [r[0] for r in rows], index,
                          scale=[r[2] for r in rows], parameter_ids=[r[1] for r in rows])]
    first = next(iter(form.fields))  # numbered fields k1, phase1, k2, ... per periodic term
    atoms, index, period, scale, ids = [], {f: [] for f in form.fields}, [], [], []
    for row_atoms, pid, row_scale in rows:
        par = params.get(section, pid)
        for name in par.values:
            m = re.fullmatch(rf"{first}(\d+)", name)
            if not m:
                continue
            n = m.group(1)
            atoms.append(row_atoms)
            for f in form.fields:
                index[f].append(params.index(ParameterKey(section, pid, f"{f}{n}")))
            period.append(int(par.fixed[f"periodicity{n}"]))
            scale.append(row_scale)
            ids.append(pid)
    return [TermGroup(form.name, section, atoms, index, periodicity=period, scale=scale,
                      parameter_ids=ids)]


def _attach_nbfix(nb: NonbondedTerms, vdw_ids: Sequence[str],
                  nbfix: dict[tuple[str, str], str], params: ParameterSet) -> None:
    rows, sig, eps = [], [], []
    for row, (i, j) in enumerate(nb.pairs.tolist()):
        fix = nbfix.get((vdw_ids[i], vdw_ids[j])) or nbfix.get((vdw_ids[j], vdw_ids[i]))
        if fix is not None:
            rows.append(row)
            sig.append(params.index(ParameterKey("NBFix", fix, "sigma")))
            eps.append(params.index(ParameterKey("NBFix", fix, "epsilon")))
    nb.nbfix_rows = np.array(rows, dtype=np.int64)
    nb.nbfix_sigma_index = np.array(sig, dtype=np.int64)
    nb.nbfix_epsilon_index = np.array(eps, dtype=np.int64)


def system_assignment(system: ParameterizedSystem) -> dict:
    """The inverse of :func:`build_system`: the keyword arguments that rebuild ``system``
    (bonded rows per section, vdW ids, charges and charge ids, NBFix map)."""
    keys = system.parameters.keys()
    bonded: dict[str, list[TermRow]] = {}
    for group in system.terms:
        seen: set[tuple] = set()
        rows = bonded.setdefault(group.name, [])
        for atoms, pid, scale in zip(group.atoms.tolist(), group.parameter_ids,
                                     group.scale.tolist()):
            item = (tuple(atoms), pid, float(scale))
            if not FORMS.get(group.form).periodic or item not in seen:
                rows.append(item)
                seen.add(item)
    nb = system.nonbonded
    charge_ids = [keys[i].id for i in nb.charge_index.tolist()]
    vector = system.parameters.vector()
    nbfix = {}
    if len(nb.nbfix_rows):
        vdw = nb.vdw_ids
        for row, sig in zip(nb.nbfix_rows.tolist(), nb.nbfix_sigma_index.tolist()):
            i, j = nb.pairs[row]
            if keys[sig].section == "NBFix":  # LJ14 rows are carried by carry_nonbonded
                nbfix[(vdw[i], vdw[j])] = keys[sig].id
    return {"bonded": bonded, "vdw_ids": list(nb.vdw_ids), "charges": vector[nb.charge_index],
            "charge_ids": charge_ids, "nbfix": nbfix}


def rebind_terms(system: ParameterizedSystem, section: str,
                 replacements: dict[tuple[int, ...], Parameter],
                 label: str | None = None) -> ParameterizedSystem:
    """A new system where the ``section`` terms on the given atom tuples use new parameters
    (e.g. bespoke torsions), everything else unchanged. Atom tuples are matched in either
    direction; every tuple must be a term of ``section``."""
    spec = system_assignment(system)
    source = system.parameters.copy()
    for parameter in {p.id: p for p in replacements.values()}.values():
        source.add(section, _copy(parameter))
    wanted = {tuple(a): p.id for a, p in replacements.items()}
    wanted.update({tuple(reversed(a)): p.id for a, p in replacements.items()})
    rows, hit = [], set()
    for atoms, pid, scale in spec["bonded"].get(section, []):
        new = wanted.get(tuple(atoms))
        if new is not None:
            hit.add(tuple(atoms))
            hit.add(tuple(reversed(atoms)))
        rows.append((atoms, new or pid, scale))
    missing = [a for a in replacements if tuple(a) not in hit]
    if missing:
        raise InputError(f"{section} has no term on atoms {missing[0]}")
    spec["bonded"][section] = rows
    new_system = build_system(system.topology, source, spec["bonded"], spec["vdw_ids"],
                              spec["charges"], spec["charge_ids"], spec["nbfix"] or None,
                              label or system.source)
    if "LJ14" in system.parameters.sections:  # per-pair 1-4 LJ of an imported force field
        new_system.nonbonded = carry_nonbonded(system, new_system.parameters)
    new_system.parameters.settings.update(
        {k: v for k, v in system.parameters.settings.items()
         if k not in new_system.parameters.settings})
    for key, free_spec in system.parameters.free.items():
        if key in new_system.parameters.keys():
            new_system.parameters.free[key] = free_spec
    return new_system


def carry_nonbonded(system: ParameterizedSystem, parameters: ParameterSet) -> NonbondedTerms:
    """``system``'s nonbonded terms (pairs, per-pair scales, NBFix/LJ14 rows) bound to
    ``parameters`` by key; parameters of those terms that ``parameters`` lacks are added
    (new sections go last, so indices already taken stay valid)."""
    import dataclasses

    keys = system.parameters.keys()
    nb = system.nonbonded
    arrays = ("charge_index", "sigma_index", "epsilon_index", "nbfix_sigma_index",
              "nbfix_epsilon_index")
    existing = set(parameters.sections)
    for name in arrays:
        for i in sorted(set(getattr(nb, name).tolist())):
            key = keys[i]
            if (key.section, key.id) in parameters:
                continue
            if key.section in existing:  # adding there would move later indices
                raise InputError(f"parameter {key.section}/{key.id} is missing")
            parameters.add(key.section, _copy(system.parameters.get(key.section, key.id)))
    remap = {name: np.array([parameters.index(keys[i]) for i in getattr(nb, name).tolist()],
                            dtype=np.int64) for name in arrays}
    return dataclasses.replace(nb, **remap)
