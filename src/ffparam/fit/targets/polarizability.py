"""Polarizability target: Drude-model molecular polarizability tensor vs a QM tensor.

The MM tensor is the static response of the induced dipole to a uniform field at fixed
cores (:meth:`ffparam.mm.drude.DrudeEngine.polarizability`: C Q^T H^-1 Q at the relaxed
Drudes, A^3), differentiable in the Drude alpha and Thole parameters (and the charges,
through the Drude-site electrostatics). The reference is a QM tensor in A^3 in the frame
of the same geometry (task ``polarizability`` records,
:mod:`ffparam.reference.polarizability`). Residuals (A^3) per geometry: the six unique
components xx, yy, zz, xy, xz, yz (``mode="tensor"``) or the isotropic value trace/3
(``mode="isotropic"``, frame-independent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.vibrations import check_reference_geometry
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor

POLARIZABILITY_MODES = ("tensor", "isotropic")
_ROWS, _COLS = (0, 1, 2, 0, 0, 1), (0, 1, 2, 1, 2, 2)


def unique_components(tensors: Tensor) -> Tensor:
    """(n, 3, 3) -> (n, 6): xx, yy, zz, xy, xz, yz."""
    return tensors[:, _ROWS, _COLS]


class PolarizabilityTarget(Target):
    """MM (Drude) vs reference molecular polarizability tensors (A^3).

    Args:
        system: a parameterized molecule with Drude particles
            (:func:`ffparam.params.drude.add_drude`).
        geometries: (N, 3) or (n, N, 3) Angstrom.
        tensors: (3, 3) or (n, 3, 3) A^3, in the frame of the geometries.
        mode: ``tensor`` (six components) or ``isotropic`` (trace/3).
        numbers: atomic numbers of the reference (checked against the molecule).
    """

    unit = "A^3"

    def __init__(self, name: str, system: ParameterizedSystem, geometries, tensors,
                 mode: str = "tensor", numbers=None, weight: float = 1.0,
                 denominator: float = 1.0) -> None:
        from ffparam.mm.drude import DrudeEngine

        super().__init__(name, weight, denominator)
        if system.drude is None or len(system.drude) == 0:
            raise InputError(f"{name}: a polarizability target needs a system with Drude "
                             "particles")
        if mode not in POLARIZABILITY_MODES:
            raise InputError(f"{name}: mode must be one of {POLARIZABILITY_MODES}, got "
                             f"{mode!r}")
        geoms = np.asarray(geometries, dtype=np.float64)
        geoms = geoms[None] if geoms.ndim == 2 else geoms
        ref = np.asarray(tensors, dtype=np.float64)
        ref = ref[None] if ref.ndim == 2 else ref
        if ref.shape[1:] != (3, 3) or len(ref) != len(geoms) or len(ref) == 0:
            raise InputError(f"{name}: need one (3, 3) polarizability tensor per geometry, "
                             f"got {ref.shape} for {len(geoms)} geometries")
        if not np.all(np.isfinite(ref)):
            raise InputError(f"{name}: non-finite reference polarizability")
        self.system, self.mode = system, mode
        self.geometries = torch.as_tensor(
            np.stack([check_reference_geometry(system, g, name, numbers) for g in geoms]))
        self.reference_tensors = torch.as_tensor(0.5 * (ref + ref.transpose(0, 2, 1)))
        self.reference = self._reduce(self.reference_tensors)
        self.engine = DrudeEngine(system)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def _reduce(self, tensors: Tensor) -> Tensor:
        if self.mode == "isotropic":
            return tensors.diagonal(dim1=-2, dim2=-1).sum(-1) / 3.0
        return unique_components(tensors).reshape(-1)

    def mm_tensors(self, fit: FitParameters, x: Tensor) -> Tensor:
        """(n, 3, 3) A^3 at the fit's parameter values."""
        return self.engine.polarizability(self.geometries, fit.system_values(self.system, x))

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        return self._reduce(self.mm_tensors(fit, x)) - self.reference

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        """Tensor RMSE over the six components, isotropic MM and QM values and their
        relative error (mean over geometries)."""
        with torch.no_grad():
            mm = self.mm_tensors(fit, x)
        ref = self.reference_tensors
        iso_mm = mm.diagonal(dim1=-2, dim2=-1).sum(-1) / 3.0
        iso_ref = ref.diagonal(dim1=-2, dim2=-1).sum(-1) / 3.0
        diff = unique_components(mm) - unique_components(ref)
        return {"tensor rmse [A^3]": float(torch.sqrt(torch.mean(diff**2))),
                "isotropic mm [A^3]": float(iso_mm.mean()),
                "isotropic reference [A^3]": float(iso_ref.mean()),
                "isotropic relative error": float(((iso_mm - iso_ref) / iso_ref).mean())}


def polarizability_target_from_records(name: str, system: ParameterizedSystem,
                                       records: Sequence, **kwargs) -> PolarizabilityTarget:
    """A :class:`PolarizabilityTarget` from complete ``polarizability`` records (tensor
    A^3 at ``result_geometry``)."""
    records = [r for r in records
               if getattr(r, "ok", False) and getattr(r, "polarizability", None) is not None]
    if not records:
        raise InputError(f"{name}: no complete records with a polarizability")
    return PolarizabilityTarget(name, system, np.stack([r.result_geometry for r in records]),
                                np.stack([r.polarizability for r in records]),
                                numbers=records[0].species.numbers, **kwargs)
