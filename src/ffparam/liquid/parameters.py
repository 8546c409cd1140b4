"""Which Lennard-Jones parameters a liquid fit frees: ``vdw:PATTERN[:FIELDS]`` entries
parsed and marked free in a parameter set (with their prior widths and transforms)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from ffparam.errors import InputError
from ffparam.params.parameter_set import FreeSpec, ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem

VDW_FIELDS = ("epsilon", "sigma")


def free_vdw_parameters(master: ParameterSet, entries: Sequence[str], used_ids: set[str],
                        prior_sigma_a: float, prior_epsilon_kcal_mol: float
                        ) -> list[ParameterKey]:
    """Mark vdW fields free from ``vdw:PATTERN[:FIELDS]`` entries.

    PATTERN is a SMIRKS of the vdW section, a file id (``n16``; globs allowed, ``n1*``) or
    ``*``/``all`` (every vdW parameter some fitted liquid uses); FIELDS is ``epsilon``,
    ``sigma`` or both comma-separated (default both). Sigma gets a linear transform scaled
    by its prior width ``prior_sigma_a`` (Angstrom), epsilon a log transform (stays
    positive) with prior width ``prior_epsilon_kcal_mol``.
    """
    if not entries:
        raise InputError("no --params given; use e.g. --params 'vdw:*' or 'vdw:n16:sigma'")
    section = master.sections.get("vdW", {})
    made: list[ParameterKey] = []
    for entry in entries:
        pattern, fields = parse_vdw_entry(entry)
        if pattern in ("*", "all"):
            ids = [pid for pid in section if pid in used_ids]
        elif pattern in section:
            ids = [pattern]
        else:
            ids = [pid for pid, par in section.items()
                   if fnmatch.fnmatchcase(str(par.fixed.get("offxml_id", "")), pattern)]
        if not ids:
            raise InputError(f"--params {entry!r}: no vdW parameter of the force field matches "
                             f"{pattern!r}")
        for pid in ids:
            for name in fields:
                value = section[pid].values[name]
                spec = (FreeSpec(0.1, None, prior_sigma_a, "linear") if name == "sigma"
                        else FreeSpec(0.0, None, prior_epsilon_kcal_mol, "log"))
                if name == "epsilon" and value <= 0:
                    raise InputError(f"vdW {pid} has epsilon {value}; a zero well depth "
                                     "cannot be fitted")
                key = ParameterKey("vdW", pid, name)
                master.free[key] = spec
                made.append(key)
    return made


def parse_vdw_entry(entry: str) -> tuple[str, list[str]]:
    """``vdw:PATTERN[:FIELDS]`` -> (PATTERN, fields); raises for anything but vdW."""
    text = entry.strip()
    if not text.lower().startswith("vdw:") or len(text) == 4:
        raise InputError(f"--params {entry!r}: only Lennard-Jones parameters are fitted to "
                         "liquids; use vdw:PATTERN[:epsilon,sigma]")
    pattern, fields = text[4:], list(VDW_FIELDS)
    head, _, tail = pattern.rpartition(":")
    if head and tail and all(t.strip() in (*VDW_FIELDS, "*") for t in tail.split(",")):
        pattern = head
        fields = [t.strip() for t in tail.split(",")]
        fields = list(VDW_FIELDS) if "*" in fields else list(dict.fromkeys(fields))
    return pattern, fields


def vdw_ids_used(system: ParameterizedSystem) -> set[str]:
    """Ids of the vdW parameters the atoms of ``system`` use."""
    keys = system.parameters.keys()
    return {keys[i].id for i in system.nonbonded.sigma_index.tolist()}
