"""``ffparam bespoke --polarizable``: fit the Drude model of the bespoke force field to QM.

Steps (the CHARMM Drude recipe, at the molecule's first conformer):

1. Drude particles on every heavy atom (:func:`ffparam.params.drude.add_drude`, element/
   hybridization types, starting alpha and Thole 1.3).
2. QM reference at ``polarizability_method`` (default HF/aug-cc-pVDZ, a setting): the
   polarizability tensor (task ``polarizability``, analytic CPHF) and the ESP on
   Merz-Kollman points with no field and in uniform fields of +-``field_strength`` along
   x, y, z (task ``esp_field``), and with ``n_field_charges`` > 0 also in each of that
   many perturbing +-0.5 e point charges 3.5 A from the molecule
   (:func:`ffparam.reference.esp_field.perturbing_charges`, CHARMM's recipe), all stored
   in the run's Store.
3. Stage 1: alpha and Thole per type to the QM tensor (six components, A^3; Gaussian
   priors of the Drude fields keep Thole near its start where the tensor does not fix it).
4. Stage 2: the atoms' charges (symmetry-equivalent atoms tied) and alpha together to the
   field ESPs (kcal/mol/e) with the tensor kept as a second target, total charge held
   (:class:`~ffparam.fit.targets.esp_field.FieldESPTarget`), Thole fixed at stage 1.

The result (:class:`DrudeFitResult`) lands in ``metrics.json`` under
``validation.drude_fit``: the level of theory, start and fitted alpha/Thole per type, QM vs
model isotropic polarizability, ESP RMSE before/after (kcal/mol/e) and the charges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.errors import InputError
from ffparam.fit.objective import Objective
from ffparam.fit.optimizers import optimize
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.esp_field import field_esp_target_from_records
from ffparam.fit.targets.polarizability import polarizability_target_from_records
from ffparam.params.drude import DRUDE_SECTION, add_drude, element_drude_types
from ffparam.params.parameter_set import ParameterKey
from ffparam.params.system import ParameterizedSystem

POLARIZABILITY_DENOMINATOR_A3 = 0.1
"""Residual scale of the tensor target (A^3): ~3 % of a small molecule's alpha."""
ESP_DENOMINATOR_KCAL_MOL_E = 1.0
"""Residual scale of the field-ESP target (kcal/mol/e)."""
ESP_METRICS = {"rmse_kcal_mol_e": "rmse [kcal/mol/e]",
               "induced_rmse_kcal_mol_e": "induced rmse [kcal/mol/e]",
               "induced_rrms": "induced rrms",
               "total_charge_deviation_e": "total charge deviation [e]"}
"""Summary name -> FieldESPTarget metric."""


@dataclass
class DrudeFitResult:
    """What the Drude fit did (see the module docstring); units A^3, kcal/mol/e, e."""

    method: str
    field_strength_kcal_mol_e_a: float
    n_fields: int
    n_points: int
    types: dict[str, dict[str, float]] = field(default_factory=dict)
    polarizability: dict[str, float] = field(default_factory=dict)
    esp_field: dict[str, float] = field(default_factory=dict)
    charges_start: list[float] = field(default_factory=list)
    charges_fitted: list[float] = field(default_factory=list)
    n_charges: int = 0

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def reference_records(system: ParameterizedSystem, method: str, strength: float, store,
                      executor, n_charges: int = 0) -> tuple[list, list]:
    """QM ``polarizability`` and ``esp_field`` records (7 fields, then ``n_charges``
    perturbing point charges) of the first conformer, from ``store`` or computed now;
    CalculationError if any failed."""
    from ffparam.reference.compute import make_jobs, run_jobs
    from ffparam.reference.esp_field import (
        charge_jobs,
        field_set,
        field_tasks,
        perturbing_charges,
    )
    from ffparam.reference.records import Species

    molecule = system.molecule
    geometry = molecule.conformers[:1]
    jobs = make_jobs(molecule, geometry, method, "polarizability")
    for task in field_tasks(field_set(strength)):
        jobs += make_jobs(molecule, geometry, method, task)
    if n_charges:
        jobs += charge_jobs(Species.from_molecule(molecule), geometry[0], method,
                            perturbing_charges(geometry[0], n_charges))
    records, summary = run_jobs(jobs, store, executor, description="polarizability")
    summary.raise_if_incomplete()
    return records[:1], records[1:]


def charge_ties(system: ParameterizedSystem) -> list[list[ParameterKey]]:
    """Charge keys of symmetry-equivalent atoms, one list per class of 2+ distinct keys."""
    keys = system.parameters.keys()
    by_class: dict[int, list[ParameterKey]] = {}
    for atom, cls in enumerate(system.topology.symmetry_classes.tolist()):
        key = keys[int(system.nonbonded.charge_index[atom])]
        group = by_class.setdefault(int(cls), [])
        if key not in group:
            group.append(key)
    return [g for g in by_class.values() if len(g) > 1]


def _stage(system: ParameterizedSystem, targets: list, free: dict[str, list[str]],
           ties: list, max_iterations: int) -> ParameterizedSystem:
    """``system`` with the ``free`` sections' fields fitted to ``targets`` (priors on)."""
    params = system.parameters.copy()
    params.free.clear()
    for section, fields in free.items():
        params.set_free(section, "*", fields)
    objective = Objective(targets, FitParameters.from_free(params, ties))
    result = optimize(objective, "least_squares", max_iterations=max_iterations)
    out = result.parameters.copy()
    out.free.clear()
    return system.with_parameters(out)


def fit_drude(fitted: ParameterizedSystem, method: str, strength: float, store, executor,
              max_iterations: int = 50, n_field_charges: int = 0
              ) -> tuple[ParameterizedSystem, DrudeFitResult]:
    """The Drude model of ``fitted`` (a fixed-charge bespoke system) fitted to QM (module
    docstring; ``n_field_charges`` perturbing point charges besides the uniform fields):
    returns the Drude system and the summary."""
    if fitted.molecule.conformers is None or len(fitted.molecule.conformers) == 0:
        raise InputError("the Drude fit needs a conformer of the molecule")
    start = add_drude(fitted, element_drude_types(fitted))
    polar, fields = reference_records(start, method, strength, store, executor,
                                      n_field_charges)
    stage1 = _stage(start, [_tensor_target(start, polar)], {DRUDE_SECTION: ["alpha", "thole"]},
                    [], max_iterations)
    targets = [_tensor_target(stage1, polar), _esp_target(stage1, fields)]
    stage2 = _stage(stage1, targets, {DRUDE_SECTION: ["alpha"], "Charges": ["charge"]},
                    charge_ties(stage1), max_iterations)
    summary = _summary(start, stage2, polar, fields, method, strength)
    return with_exact_net_charge(stage2), summary


def with_exact_net_charge(system: ParameterizedSystem) -> ParameterizedSystem:
    """``system`` with the sum of its atoms' charges exactly the molecule's net charge (e):
    the fit holds it by a stiff residual only (~1e-5 e left; a box of 128 such molecules
    is then not neutral enough for its box dipole), so the excess is taken off every atom
    in equal shares, through the charge keys (a key shared by n atoms moves by n shares'
    worth in total); the summary keeps the deviation the fit itself reached."""
    vector = system.parameters.vector().copy()
    index = system.nonbonded.charge_index
    excess = float(vector[index].sum()) - system.molecule.total_charge
    keys, counts = np.unique(index, return_counts=True)
    vector[keys] -= excess / counts.sum()
    return system.with_parameters(system.parameters.with_vector(vector))


def _tensor_target(system: ParameterizedSystem, records: list):
    return polarizability_target_from_records("polarizability", system, records,
                                              denominator=POLARIZABILITY_DENOMINATOR_A3)


def _esp_target(system: ParameterizedSystem, records: list):
    return field_esp_target_from_records("esp_field", system, records,
                                         denominator=ESP_DENOMINATOR_KCAL_MOL_E)


def _evaluate(system: ParameterizedSystem, polar: list, fields: list) -> dict[str, float]:
    """Tensor and field-ESP metrics of ``system`` as it stands (no free parameters)."""
    import torch

    targets = [_tensor_target(system, polar), _esp_target(system, fields)]
    fit = FitParameters(system.parameters, [])
    x = torch.zeros(0, dtype=torch.float64)
    out: dict[str, float] = {}
    for target in targets:
        out.update({f"{target.name} {k}": v for k, v in target.metrics(fit, x).items()})
    return out


def _summary(start: ParameterizedSystem, final: ParameterizedSystem, polar: list,
             fields: list, method: str, strength: float) -> DrudeFitResult:
    before, after = _evaluate(start, polar, fields), _evaluate(final, polar, fields)
    types = {}
    for tid in dict.fromkeys(final.drude.type_ids):
        s, f = start.parameters.get(DRUDE_SECTION, tid), final.parameters.get(DRUDE_SECTION, tid)
        types[tid] = {"alpha_start_a3": s.values["alpha"], "alpha_fitted_a3": f.values["alpha"],
                      "thole_start": s.values["thole"], "thole_fitted": f.values["thole"]}
    iso = "polarizability isotropic mm [A^3]"
    q = final.nonbonded.charge_index
    n_charges = sum(r.mm_charges is not None for r in fields)
    return DrudeFitResult(
        method=method, field_strength_kcal_mol_e_a=strength, n_fields=len(fields) - n_charges,
        n_points=int(sum(len(r.esp) for r in fields)), types=types,
        polarizability={"qm_isotropic_a3": before["polarizability isotropic reference [A^3]"],
                        "start_isotropic_a3": before[iso], "fitted_isotropic_a3": after[iso],
                        "start_tensor_rmse_a3": before["polarizability tensor rmse [A^3]"],
                        "fitted_tensor_rmse_a3": after["polarizability tensor rmse [A^3]"]},
        esp_field={f"{when}_{name}": data[f"esp_field {key}"]
                   for when, data in (("start", before), ("fitted", after))
                   for name, key in ESP_METRICS.items()},
        charges_start=np.asarray(start.parameters.vector())[q].tolist(),
        charges_fitted=np.asarray(final.parameters.vector())[q].tolist(),
        n_charges=n_charges)
