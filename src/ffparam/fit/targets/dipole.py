"""Dipole-moment target: MM point-charge dipole vs reference dipole.

mu_MM = sum_i q_i (r_i - r_com) in e*Angstrom, about the centre of mass (which makes it
well defined for charged molecules too). The reference is given in e*Angstrom about the
centre of mass (``origin="com"``) or about the origin of the input frame
(``origin="frame"``, what :class:`~ffparam.reference.records.PointResult` stores), in which
case it is moved to the centre of mass: mu_com = mu_frame - Q r_com with Q the molecule's
total charge. Residuals are reported in Debye (1 D = 0.20819 e*A): the three Cartesian
components per geometry (same frame as the reference geometry), or only the magnitude
with ``magnitude_only=True`` (frame-independent).
"""

from __future__ import annotations

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.vibrations import check_reference_geometry
from ffparam.params.system import ParameterizedSystem
from ffparam.units import DEBYE_E_ANGSTROM

Tensor = torch.Tensor


def centre_of_mass(geometry: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """(3,) Angstrom."""
    return (masses[:, None] * geometry).sum(0) / masses.sum()


class DipoleTarget(Target):
    """MM vs reference dipole moments (Debye).

    Args:
        system: the parameterized molecule.
        geometries: (N, 3) or (n, N, 3) Angstrom.
        dipoles: (3,) or (n, 3) e*Angstrom.
        origin: ``com`` or ``frame`` (see the module docstring).
        magnitude_only: compare |mu| instead of the components.
    """

    unit = "D"

    def __init__(self, name: str, system: ParameterizedSystem, geometries, dipoles,
                 origin: str = "com", magnitude_only: bool = False, numbers=None,
                 weight: float = 1.0, denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        if origin not in ("com", "frame"):
            raise InputError(f"{name}: origin must be 'com' or 'frame', got {origin!r}")
        geoms = np.asarray(geometries, dtype=np.float64)
        geoms = geoms[None] if geoms.ndim == 2 else geoms
        dip = np.asarray(dipoles, dtype=np.float64).reshape(-1, 3) if np.size(dipoles) else \
            np.zeros((0, 3))
        if len(geoms) == 0 or len(dip) == 0:
            raise InputError(f"{name}: no dipoles")
        if len(dip) != len(geoms):
            raise InputError(f"{name}: {len(dip)} dipoles for {len(geoms)} geometries")
        if not np.all(np.isfinite(dip)):
            raise InputError(f"{name}: non-finite reference dipole")
        geoms = np.stack([check_reference_geometry(system, g, name, numbers) for g in geoms])
        masses = system.molecule.masses
        coms = np.stack([centre_of_mass(g, masses) for g in geoms])
        if origin == "frame":
            dip = dip - system.molecule.total_charge * coms
        self.system = system
        self.magnitude_only = magnitude_only
        self._relative = torch.as_tensor(geoms - coms[:, None, :])  # (n, N, 3)
        ref = torch.as_tensor(dip) / DEBYE_E_ANGSTROM
        self.reference = torch.linalg.vector_norm(ref, dim=-1) if magnitude_only \
            else ref.reshape(-1)
        self._charge_index = torch.as_tensor(system.nonbonded.charge_index)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def mm_dipoles(self, fit: FitParameters, x: Tensor) -> Tensor:
        """(n, 3) Debye about the centre of mass."""
        charges = fit.system_values(self.system, x)[self._charge_index]
        return torch.einsum("i,nik->nk", charges, self._relative) / DEBYE_E_ANGSTROM

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        mu = self.mm_dipoles(fit, x)
        computed = torch.linalg.vector_norm(mu, dim=-1) if self.magnitude_only \
            else mu.reshape(-1)
        return computed - self.reference


def dipole_target_from_records(name: str, system: ParameterizedSystem, records,
                               **kwargs) -> DipoleTarget:
    """A :class:`DipoleTarget` from complete reference-layer records (their ``dipole``
    about the frame origin, e*A, at ``result_geometry``)."""
    records = [r for r in records if getattr(r, "ok", False) and r.dipole is not None]
    if not records:
        raise InputError(f"{name}: no complete records with a dipole")
    return DipoleTarget(name, system, np.stack([r.result_geometry for r in records]),
                        np.stack([r.dipole for r in records]), origin="frame",
                        numbers=records[0].species.numbers, **kwargs)
