"""Parameters: the ParameterSet (values, units, conventions, free flags) and the
ParameterizedSystem (a molecule's terms bound to a ParameterSet)."""

from ffparam.params.parameter_set import (
    FreeSpec,
    Parameter,
    ParameterKey,
    ParameterSet,
    field_unit,
)
from ffparam.params.system import NonbondedTerms, ParameterizedSystem, TermGroup

__all__ = [
    "FreeSpec",
    "NonbondedTerms",
    "Parameter",
    "ParameterKey",
    "ParameterSet",
    "ParameterizedSystem",
    "TermGroup",
    "field_unit",
]
