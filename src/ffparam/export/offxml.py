"""SMIRNOFF ``.offxml`` export: the starting force field plus the system's bespoke or
fitted parameters, through :meth:`SmirnoffForceField.to_offxml`.

The starting force field is named by the caller or read from the system's provenance
(``source`` ``"openff-2.2.1 + am1bcc"`` -> ``openff-2.2.1``). The extra parameters are
given by the caller or derived from the system: every SMIRKS-keyed parameter the
system uses that the starting force field lacks (bespoke SMIRKS) or holds with other
values (fitted). Charges are not part of an offxml: whoever loads it must pass the same
charges (``SmirnoffForceField.load(path).parameterize(molecule, charges=...)``).
"""

from __future__ import annotations

from pathlib import Path

from ffparam.assign.smirnoff import SmirnoffForceField
from ffparam.errors import FFParamError
from ffparam.params.parameter_set import Parameter, ParameterSet
from ffparam.params.system import ParameterizedSystem

NOT_SMIRNOFF_SECTIONS = ("Charges",)


def is_gaff_system(system: ParameterizedSystem) -> bool:
    """True for systems built by the GAFF2 assigner (``source`` ``gaff2 + ...``)."""
    name = str(system.parameters.settings.get("name", ""))
    return system.source.lower().startswith("gaff") or name.lower().startswith("gaff")


def starting_forcefield(system: ParameterizedSystem,
                        smirnoff: SmirnoffForceField | str | Path | None
                        ) -> tuple[SmirnoffForceField | None, str]:
    """(force field, "") or (None, reason it cannot be had)."""
    if is_gaff_system(system):  # atom-type keyed parameters have no SMIRKS to write
        return None, ("offxml is SMIRNOFF-only and this is a GAFF2 system; its parameters "
                      "are in the AMBER prmtop and GROMACS top exports")
    if isinstance(smirnoff, SmirnoffForceField):
        return smirnoff, ""
    name = str(smirnoff) if smirnoff is not None else system.source.split(" + ")[0].strip()
    if not name:
        return None, ("the system does not name its SMIRNOFF force field; pass "
                      "smirnoff='openff-2.2.1' (or a path)")
    try:
        return SmirnoffForceField.load(name), ""
    except FFParamError as exc:
        return None, (f"cannot load the starting SMIRNOFF force field {name!r} ({exc}); "
                      "pass smirnoff=<name or .offxml path>")


def changed_parameters(system: ParameterizedSystem, base: SmirnoffForceField) -> ParameterSet:
    """Parameters ``system`` uses that ``base`` lacks or holds with other values or
    periodicities (internal units, SMIRKS ids)."""
    extra = ParameterSet(settings={})
    for section, par in system.parameters:
        if section in NOT_SMIRNOFF_SECTIONS:
            continue
        if (section, par.id) in base.parameters:
            old = base.parameters.get(section, par.id)
            same_values = old.values == par.values
            same_periods = {k: v for k, v in old.fixed.items() if k.startswith("periodicity")} \
                == {k: v for k, v in par.fixed.items() if k.startswith("periodicity")}
            if same_values and same_periods:
                continue
        extra.add(section, Parameter(par.id, dict(par.values), dict(par.fixed)))
    return extra


def write_offxml(base: SmirnoffForceField, path: Path, extra: ParameterSet | None) -> Path:
    """``base`` plus ``extra`` written to ``path`` (see :meth:`SmirnoffForceField.to_offxml`)."""
    return base.to_offxml(path, extra=extra)


__all__ = ["changed_parameters", "is_gaff_system", "starting_forcefield", "write_offxml"]
