"""Field-ESP target: Drude-model ESP in uniform external fields vs QM (CHARMM Drude recipe).

Each entry is one geometry in one uniform field **F** (zero included): the reference is
the QM potential of the molecule polarized by **F** (task ``esp_field``,
:mod:`ffparam.reference.esp_field`) on grid points, the model value that of the Drude
system with its Drudes relaxed in the same field (:class:`~ffparam.mm.drude_field.
DrudeFieldESP`), both without the field's own potential. Residuals V_MM - V_QM in
kcal/mol/e, one per point of every entry, so charges and Drude alpha (and Thole) are fitted
jointly: the zero-field potential fixes the charges, the field-induced change the
polarizabilities. An entry may also (or instead) be perturbed by point charges (CHARMM's
recipe: records of :func:`ffparam.reference.esp_field.charge_jobs`, the charges in the
record's ``mm_positions``/``mm_charges``), which the model's Drudes relax in exactly.

Total charge: the sum of the atoms' charges is held at the molecule's net charge by one
extra residual ``TOTAL_CHARGE_SCALE * sqrt(m) * (sum q - Q)`` (m the number of points), so
a deviation of 1e-3 e costs as much as an ESP error of 1 kcal/mol/e at every point; the
metrics report the remaining deviation (e).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.esp import checked_esp
from ffparam.fit.targets.vibrations import check_reference_geometry
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor

TOTAL_CHARGE_SCALE = 1000.0
"""kcal/mol/e of the total-charge residual per e of deviation (times sqrt(points))."""


class FieldESPTarget(Target):
    """Drude ESP in uniform fields vs reference ESP on points (kcal/mol/e).

    Args:
        system: a parameterized molecule with Drude particles.
        geometries: (n, N, 3) Angstrom, one per entry.
        fields: (n, 3) kcal/mol/(e A), the uniform field of each entry.
        points: one (m_i, 3) Angstrom array per entry; esp: one (m_i,) kcal/mol/e array.
        numbers: atomic numbers of the reference (checked against the molecule).
        total_charge: net charge held (e); default the molecule's.
        charges: optional, one (k_i, 4) array per entry of perturbing point charges
            (x, y, z Angstrom, Q e; k_i = 0 for none).
    """

    unit = "kcal/mol/e"

    def __init__(self, name: str, system: ParameterizedSystem, geometries, fields, points,
                 esp, numbers=None, total_charge: float | None = None, weight: float = 1.0,
                 denominator: float = 1.0, charges: Sequence[np.ndarray] | None = None
                 ) -> None:
        from ffparam.mm.drude_field import DrudeFieldESP

        super().__init__(name, weight, denominator)
        if system.drude is None or len(system.drude) == 0:
            raise InputError(f"{name}: a field-ESP target needs a system with Drude "
                             "particles")
        geoms = np.asarray(geometries, dtype=np.float64)
        geoms = geoms[None] if geoms.ndim == 2 else geoms
        if not len(geoms) == len(points) == len(esp):
            raise InputError(f"{name}: need one point set and one ESP array per entry")
        geoms = np.stack([check_reference_geometry(system, g, name, numbers) for g in geoms])
        refs = [checked_esp(name, p, v) for p, v in zip(points, esp)]
        try:
            self.model = DrudeFieldESP(system, geoms, fields, points, charges=charges)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
        self.system = system
        self.reference = torch.as_tensor(np.concatenate(refs))
        self._sizes = [len(r) for r in refs]
        perturbed = [bool(np.any(f)) or len(c) > 0
                     for f, c in zip(np.asarray(fields, dtype=float).reshape(-1, 3),
                                     self.model.charges)]
        self._zero_entry = _zero_field_entries(geoms, perturbed, self._sizes)
        self.total_charge = float(system.molecule.total_charge if total_charge is None
                                  else total_charge)
        self._charge_index = torch.as_tensor(system.nonbonded.charge_index)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def mm_esp(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Model ESP of every entry, concatenated (m,) kcal/mol/e."""
        return torch.cat(self.model.esp(fit.system_values(self.system, x)))

    def charge_deviation(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Sum of the atoms' charges minus the net charge (e)."""
        return fit.system_values(self.system, x)[self._charge_index].sum() - self.total_charge

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        scale = TOTAL_CHARGE_SCALE * len(self.reference) ** 0.5
        return torch.cat([self.mm_esp(fit, x) - self.reference,
                          (scale * self.charge_deviation(fit, x)).reshape(1)])

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        """ESP RMSE and relative RMS over all entries; RMSE of the field-induced change
        V(F) - V(0) (entries with a zero-field partner); total-charge deviation (e)."""
        with torch.no_grad():
            mm = self.mm_esp(fit, x)
            dq = float(self.charge_deviation(fit, x))
        ref, r = self.reference, mm - self.reference
        out = {"rmse [kcal/mol/e]": float(torch.sqrt(torch.mean(r**2))),
               "rrms": float(torch.sqrt((r**2).sum() / (ref**2).sum())),
               "total charge deviation [e]": dq}
        induced = self._induced(mm), self._induced(ref)
        if len(induced[1]):
            diff = induced[0] - induced[1]
            out["induced rmse [kcal/mol/e]"] = float(torch.sqrt(torch.mean(diff**2)))
            out["induced rrms"] = float(torch.sqrt((diff**2).sum() / (induced[1]**2).sum()))
        return out

    def _induced(self, values: Tensor) -> Tensor:
        """V(F) - V(0) of the entries that have a zero-field partner, concatenated."""
        parts = list(torch.split(values, self._sizes))
        return torch.cat([parts[i] - parts[z] for i, z in enumerate(self._zero_entry)
                          if z is not None and z != i] or [values.new_zeros(0)])


def _zero_field_entries(geoms: np.ndarray, perturbed: Sequence[bool], sizes: list[int]
                        ) -> list[int | None]:
    """For each entry, the index of an unperturbed entry (no field, no charges) at the
    same geometry with the same number of points (or None)."""
    zeros = [i for i, p in enumerate(perturbed) if not p]
    out: list[int | None] = []
    for i, geom in enumerate(geoms):
        match = [z for z in zeros if sizes[z] == sizes[i]
                 and np.allclose(geoms[z], geom, atol=1e-6)]
        out.append(match[0] if match else None)
    return out


def field_esp_target_from_records(name: str, system: ParameterizedSystem,
                                  records: Sequence, **kwargs) -> FieldESPTarget:
    """A :class:`FieldESPTarget` from complete ``esp_field`` records (their field from the
    task, perturbing charges from ``mm_positions``/``mm_charges``, ``esp_points``, ``esp``
    at ``geometry``)."""
    records = [r for r in records if getattr(r, "ok", False)]
    if not records:
        raise InputError(f"{name}: no complete esp_field records")
    fields = []
    for r in records:
        task = json.loads(r.task)
        if task.get("kind") != "esp_field" or r.esp is None or r.esp_points is None:
            raise InputError(f"{name}: a record has no ESP in a field (was the task "
                             "'esp_field'?)")
        fields.append(task["field_kcal_mol_e_a"])
    charges = [np.zeros((0, 4)) if r.mm_charges is None else
               np.column_stack([r.mm_positions, r.mm_charges]) for r in records]
    return FieldESPTarget(name, system, np.stack([r.geometry for r in records]),
                          np.array(fields), [r.esp_points for r in records],
                          [r.esp for r in records], numbers=records[0].species.numbers,
                          charges=charges, **kwargs)
