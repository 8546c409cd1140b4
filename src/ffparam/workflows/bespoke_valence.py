"""Bespoke bonds and angles (``ffparam bespoke --fit-valence``).

1. Optimize the molecule and compute its Hessian with the reference method (Store).
2. Modified Seminario bond/angle force constants and equilibrium values from that Hessian,
   symmetry-averaged (:mod:`ffparam.fit.seminario`), bound to SMIRKS that match only each
   symmetry class of bonds/angles (:func:`ffparam.fit.smirks.bespoke_valence_smirks`).
3. Fit the force constants (log transform, prior width = the Seminario value) to the QM
   vibrational frequencies with modes matched by eigenvector overlap, at the MM minimum.
"""

from __future__ import annotations

import numpy as np

from ffparam.errors import CalculationError
from ffparam.params.builder import rebind_terms
from ffparam.params.parameter_set import FreeSpec, Parameter, ParameterSet
from ffparam.params.system import ParameterizedSystem


def seminario_system(system: ParameterizedSystem, geometry: np.ndarray, hessian: np.ndarray
                     ) -> tuple[ParameterizedSystem, ParameterSet]:
    """``system`` with SMIRKS-keyed bespoke bonds and angles holding Seminario values; the
    new parameters' k fields are free. Returns (system, the new parameters)."""
    from ffparam.fit.seminario import modified_seminario
    from ffparam.fit.smirks import bespoke_valence_smirks

    molecule = system.molecule
    result = modified_seminario(system.topology, geometry, hessian)
    extra = ParameterSet(settings=dict(system.parameters.settings))
    new = system
    for section, rows, ks, values, field in (
            ("Bonds", result.bonds, result.bond_k, result.bond_length, "length"),
            ("Angles", result.angles, result.angle_k, result.angle_value, "angle")):
        replacements: dict[tuple[int, ...], Parameter] = {}
        done: set[tuple[int, ...]] = set()
        for row, k, value in zip(np.asarray(rows).tolist(), ks, values):
            key = tuple(row) if row[0] < row[-1] else tuple(row[::-1])
            if key in done:
                continue
            smirks, group = bespoke_valence_smirks(molecule, tuple(row))
            parameter = Parameter(smirks, {"k": float(k), field: float(value)},
                                  {"source": "modified Seminario"})
            extra.add(section, parameter)
            for member in group:
                replacements[member] = parameter
            done |= group
        new = rebind_terms(new, section, replacements, label=new.source)
    for section, par in extra:
        new.parameters.set_free(section, par.id, "k",
                                FreeSpec(0.0, None, abs(par.values["k"]), "log"))
    new.source = f"{system.source} + Seminario valence"
    return new, extra


def fit_valence(system: ParameterizedSystem, settings, store, executor
                ) -> tuple[ParameterizedSystem, ParameterSet, str]:
    """Seminario start + frequency fit; returns (system, bespoke bond/angle parameters with
    fitted values, a one-line note with the frequency RMS before/after)."""
    from ffparam.fit.objective import Objective
    from ffparam.fit.optimizers import optimize
    from ffparam.fit.parameters import FitParameters
    from ffparam.fit.targets.vibrations import FrequencyTarget
    from ffparam.reference.compute import compute

    molecule = system.molecule
    (opt,) = compute(molecule, molecule.conformers[:1], settings.method, "optimize",
                     store=store, executor=executor)
    if not opt.ok:
        raise CalculationError(f"--fit-valence: optimization failed: {opt.error}")
    (hess,) = compute(molecule, opt.final_geometry[None], settings.method, "hessian",
                      store=store, executor=executor)
    if not hess.ok:
        raise CalculationError(f"--fit-valence: Hessian failed: {hess.error}")
    start, extra = seminario_system(system, hess.geometry, hess.hessian)
    keep_free = {k for k in start.parameters.free if (k.section, k.id) in extra}
    for key in list(start.parameters.free):
        if key not in keep_free:
            start.parameters.free.pop(key)
    target = FrequencyTarget.from_record("frequencies", start, hess)
    fit = FitParameters.from_free(start.parameters)
    result = optimize(Objective([target], fit), "least_squares",
                      max_iterations=settings.max_iterations)
    fitted = start.with_parameters(result.parameters.copy())
    fitted.parameters.free.clear()  # later fits (torsions) start from these values
    for section, par in extra:
        par.values.update(fitted.parameters.get(section, par.id).values)
    before = result.metrics_before["frequencies"]["rmse [cm^-1]"]
    after = result.metrics_after["frequencies"]["rmse [cm^-1]"]
    note = (f"valence fit: frequency RMSE vs {settings.method} Hessian {before:.1f} -> "
            f"{after:.1f} cm^-1 ({len(extra)} bespoke bond/angle parameters)")
    return fitted, extra, note
