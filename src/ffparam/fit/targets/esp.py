"""Electrostatic-potential target: MM point-charge ESP vs reference ESP on points.

V_MM(r_p) = 332.0637 sum_i q_i / |r_p - R_i| (kcal/mol/e), with q the system's charges from
the parameter vector (the ``Charges`` section), so charges can be fitted jointly with other
targets through :class:`~ffparam.fit.parameters.FitParameters`. Residuals V_MM - V_ref in
kcal/mol/e, one per point (all conformers stacked). For a stand-alone charge fit with
restraints and constraints use :func:`ffparam.fit.resp.resp` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.resp import esp_design_matrix
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.vibrations import check_reference_geometry
from ffparam.params.system import ParameterizedSystem
from ffparam.units import BOHR_ANGSTROM, COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor


class ESPTarget(Target):
    """MM vs reference ESP on points (kcal/mol/e).

    Args:
        system: the parameterized molecule.
        geometries: (N, 3) Angstrom or a sequence of conformers.
        points: (m, 3) Angstrom ESP points (one array per conformer for several).
        esp: (m,) kcal/mol/e reference potential (one array per conformer).
        numbers: atomic numbers of the reference, to check the atom order (optional).
    """

    unit = "kcal/mol/e"

    def __init__(self, name: str, system: ParameterizedSystem, geometries, points, esp,
                 numbers=None, weight: float = 1.0, denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        single = np.asarray(geometries, dtype=np.float64).ndim == 2
        geoms = [geometries] if single else list(geometries)
        pts = [points] if single else list(points)
        values = [esp] if single else list(esp)
        if not (len(geoms) == len(pts) == len(values)) or not geoms:
            raise InputError(f"{name}: need one point set and one ESP array per geometry")
        geoms = [check_reference_geometry(system, g, name, numbers) for g in geoms]
        refs = [checked_esp(name, p, v) for p, v in zip(pts, values)]
        pts = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in pts]
        self.system = system
        inverse_bohr = esp_design_matrix(geoms, pts)  # 1/Bohr, checks point distances
        self._coulomb = torch.as_tensor(inverse_bohr / BOHR_ANGSTROM
                                        * COULOMB_CONSTANT_KCAL_MOL_A_E2)
        self.reference = torch.as_tensor(np.concatenate(refs))
        self._charge_index = torch.as_tensor(system.nonbonded.charge_index)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def mm_esp(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Point-charge ESP (m,) kcal/mol/e."""
        charges = fit.system_values(self.system, x)[self._charge_index]
        return self._coulomb @ charges

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        return self.mm_esp(fit, x) - self.reference

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        with torch.no_grad():
            r = self.residuals(fit, x)
        return {"rmse [kcal/mol/e]": float(torch.sqrt(torch.mean(r**2))),
                "rrms": float(torch.sqrt((r**2).sum() / (self.reference**2).sum()))}


def checked_esp(name: str, points, esp) -> np.ndarray:
    """The reference ESP values (m,) kcal/mol/e of one point set (m, 3) Angstrom, checked:
    InputError (prefixed with ``name``) for no points, a count mismatch or a non-finite
    point or value."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    v = np.asarray(esp, dtype=np.float64).reshape(-1)
    if p.shape[0] == 0:
        raise InputError(f"{name}: no ESP points")
    if v.shape != (p.shape[0],):
        raise InputError(f"{name}: {v.size} ESP values for {p.shape[0]} points")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
        raise InputError(f"{name}: non-finite ESP point or value")
    return v


def esp_target_from_records(name: str, system: ParameterizedSystem, records: Sequence,
                            **kwargs) -> ESPTarget:
    """An :class:`ESPTarget` from complete reference-layer ESP records (``esp_points``,
    ``esp``, ``geometry`` and ``species.numbers`` are used)."""
    records = [r for r in records if getattr(r, "ok", False)]
    if not records:
        raise InputError(f"{name}: no complete ESP records")
    if any(r.esp is None or r.esp_points is None for r in records):
        raise InputError(f"{name}: a record has no ESP (was the task 'esp'?)")
    return ESPTarget(name, system, [r.geometry for r in records],
                     [r.esp_points for r in records], [r.esp for r in records],
                     numbers=records[0].species.numbers, **kwargs)
