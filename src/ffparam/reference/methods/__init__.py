"""Reference methods behind one protocol, looked up by name.

``get_calculator(spec, species)`` returns a :class:`Calculator` for a method string such as
``gfn2-xtb`` or ``b3lyp-d3bj/dzvp``; ``evaluate`` runs a batch of geometries of one molecule
through it. Backends are imported lazily (tblite, PySCF) and declared with the method names
they compute in :data:`ffparam.reference.spec.BACKENDS`, so another backend is one entry
there plus its Calculator module here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np

from ffparam.reference.methods.base import Calculator
from ffparam.reference.records import PointResult, Species
from ffparam.reference.spec import BACKENDS, MethodSpec


def get_calculator(spec: MethodSpec | str, species: Species) -> Calculator:
    """A fresh calculator (no SCF history) for ``spec`` and ``species``."""
    spec = MethodSpec.parse(spec)
    backend = next(b for b in BACKENDS if b.name == spec.backend)
    module_name, _, class_name = backend.calculator.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(spec, species)


def available_methods() -> list[str]:
    """Method names with fixed spelling; any ``functional[-disp]/basis`` PySCF knows works too."""
    return [name for b in BACKENDS for name in (b.names or b.spelling.split(", "))]


def evaluate(
    spec: MethodSpec | str,
    species: Species,
    geometries: np.ndarray | Sequence[np.ndarray],
    gradient: bool = False,
    hessian: bool = False,
) -> list[PointResult]:
    """Run a batch of geometries (n_conf, n_atoms, 3) Angstrom of one molecule, in order,
    each SCF restarting from the previous one. Raises on the first failure; use
    :func:`ffparam.reference.compute` for fault-tolerant, stored batches."""
    calc = get_calculator(spec, species)
    return [calc.compute(g, gradient=gradient, hessian=hessian) for g in np.asarray(geometries)]


__all__ = ["Calculator", "available_methods", "evaluate", "get_calculator"]
