"""Functional forms in one place: one module per form, registered in :data:`FORMS`.

Every layer looks forms up here instead of dispatching on form names: ``params`` (term
widths, fields and units, section -> form), ``mm`` (energies, closed-form forces, the
compiled kernel's kinds, the OpenMM export) and ``export`` (which standard table a form is
written to in AMBER/GROMACS/ffxml files, or a clear error). To add a form, add a module
here that subclasses :class:`Form` and calls :func:`register`; every module of this
package is imported (and so registered) with it. See :mod:`ffparam.forms.base`.
"""

from __future__ import annotations

import importlib
import pkgutil

from ffparam.forms.base import (
    CATEGORIES,
    FORMS,
    GEOMETRIES,
    STANDARD_TABLES,
    Form,
    FormRegistry,
    register,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CATEGORIES", "FORMS", "GEOMETRIES", "STANDARD_TABLES", "Form", "FormRegistry",
           "register"]
