"""Torsion-profile target: MM vs QM relative energies along a torsion scan.

Two modes:

* ``single_point``: MM energies on the QM-optimized scan geometries;
* ``relaxed`` (default, as BespokeFit): MM restrained relaxation at each scan point (the
  scanned dihedral held at its QM value, every atom weakly tethered to its QM position),
  MM energy at the relaxed geometry (see :mod:`ffparam.fit.relax`).

Energies are relative to the profile mean (``reference="mean"``, the least-squares optimal
offset) or to the point at the QM minimum (``"min"``). Weights: points above
``energy_upper_kcal_mol`` (over the QM minimum) are dropped; ``attenuate`` down-weights
points above one ``denominator`` as ForceBalance does: w = 1 / sqrt(1 + ((E - d)/d)^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.relax import (
    RestraintSpec,
    linearized_relaxed_positions,
    relax,
    restrained_hessian_inverse,
)
from ffparam.fit.targets.base import Target
from ffparam.fit.targets.energies import check_geometries, relative
from ffparam.mm import terms as F
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor


@dataclass
class TorsionProfile:
    """A QM torsion scan of one molecule.

    Attributes:
        dihedrals: (n_d, 4) scanned dihedral atom indices (1 for 1-D, 2 for 2-D scans).
        angles: (P, n_d) grid angles in degrees.
        geometries: (P, N, 3) QM-optimized geometries, Angstrom.
        energies: (P,) QM energies, kcal/mol (absolute or relative, only differences used).
        label: a name (e.g. the bond ``4-9``).
    """

    dihedrals: np.ndarray
    angles: np.ndarray
    geometries: np.ndarray
    energies: np.ndarray
    label: str = "torsion"

    def __post_init__(self) -> None:
        self.dihedrals = np.asarray(self.dihedrals, dtype=np.int64).reshape(-1, 4)
        self.angles = np.asarray(self.angles, dtype=np.float64).reshape(len(self.energies), -1)
        self.geometries = np.asarray(self.geometries, dtype=np.float64)
        self.energies = np.asarray(self.energies, dtype=np.float64)
        if self.angles.shape[1] != len(self.dihedrals):
            raise InputError(f"{self.label}: {self.angles.shape[1]} angle columns for "
                             f"{len(self.dihedrals)} dihedrals")
        if len(self.geometries) != len(self.energies):
            raise InputError(f"{self.label}: {len(self.geometries)} geometries but "
                             f"{len(self.energies)} energies")

    def relative_energies(self) -> np.ndarray:
        return self.energies - self.energies.min()


class TorsionProfileTarget(Target):
    """Fit MM torsion profiles to a QM scan (residuals in kcal/mol)."""

    unit = "kcal/mol"

    def __init__(self, name: str, system: ParameterizedSystem, profile: TorsionProfile,
                 mode: str = "relaxed", reference: str = "mean",
                 energy_upper_kcal_mol: float | None = None, attenuate: bool = False,
                 k_dihedral: float = 5000.0, k_position: float = 1.0,
                 weight: float = 1.0, denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        if mode not in ("relaxed", "single_point"):
            raise InputError(f"{name}: mode must be 'relaxed' or 'single_point', got {mode!r}")
        n_atoms = system.n_atoms
        if profile.dihedrals.max(initial=0) >= n_atoms:
            raise InputError(f"{name}: dihedral atoms {profile.dihedrals.tolist()} out of range "
                             f"for {n_atoms} atoms")
        geometries = check_geometries(system, profile.geometries, name)
        energies = profile.relative_energies()
        keep = np.ones(len(energies), dtype=bool) if energy_upper_kcal_mol is None \
            else energies <= energy_upper_kcal_mol
        if keep.sum() < 2:
            raise InputError(f"{name}: fewer than 2 scan points below "
                             f"{energy_upper_kcal_mol} kcal/mol")
        self.system = system
        self.profile = profile
        self.mode = mode
        self.reference_mode = reference
        self.keep = keep
        self.geometries = geometries[keep]
        qm = energies[keep]
        self.anchor = int(np.argmin(qm))
        self.reference = relative(torch.as_tensor(qm), reference, self.anchor)
        if attenuate:
            d = denominator
            w = np.where(qm < d, 1.0, 1.0 / np.sqrt(1.0 + ((qm - d) / d) ** 2))
        else:
            w = np.ones_like(qm)
        self.sqrt_w = torch.as_tensor(np.sqrt(w))
        self.engine = MMEngine(system)
        with torch.no_grad():
            phi = F.dihedrals(torch.as_tensor(self.geometries),
                              torch.as_tensor(profile.dihedrals))
        self.spec = RestraintSpec(profile.dihedrals, phi.numpy(), self.geometries,
                                  k_dihedral, k_position)
        self._relaxed_at: bytes | None = None
        self._relax_cache: dict[bytes, tuple[np.ndarray, Tensor]] = {}
        self._relaxed: np.ndarray | None = None
        self._hinv: Tensor | None = None

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    # ------------------------------------------------------------------ MM side
    def _ensure_relaxed(self, fit: FitParameters, x: Tensor) -> None:
        key = x.detach().numpy().tobytes()
        if key == self._relaxed_at:
            return
        cached = self._relax_cache.get(key)
        if cached is None:
            values = fit.system_values(self.system, x.detach())
            start = self.geometries if self._relaxed is None else self._relaxed
            relaxed = relax(self.engine, values, start, self.spec)
            hinv = restrained_hessian_inverse(self.engine, relaxed, values, self.spec)
            cached = (relaxed, hinv)
            self._relax_cache[key] = cached
            while len(self._relax_cache) > 4:  # keep a few: start, current, trial points
                self._relax_cache.pop(next(iter(self._relax_cache)))
        self._relaxed, self._hinv = cached
        self._relaxed_at = key

    def mm_positions(self, fit: FitParameters, x: Tensor) -> Tensor:
        """Geometries the MM energies are evaluated at (differentiable for ``relaxed``)."""
        if self.mode == "single_point":
            return torch.as_tensor(self.geometries)
        self._ensure_relaxed(fit, x)
        values = fit.system_values(self.system, x)
        return linearized_relaxed_positions(self.engine, self._relaxed, self._hinv, values,
                                            self.spec)

    def mm_relative(self, fit: FitParameters, x: Tensor) -> Tensor:
        """MM relative energies (kcal/mol) on the kept scan points."""
        values = fit.system_values(self.system, x)
        energy = self.engine.energy(self.mm_positions(fit, x), values)
        return relative(energy, self.reference_mode, self.anchor)

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        return self.sqrt_w * (self.mm_relative(fit, x) - self.reference)

    def metrics(self, fit: FitParameters, x: Tensor) -> dict[str, float]:
        with torch.no_grad():
            diff = self.mm_relative(fit, x).detach() - self.reference
        out = {"rmse [kcal/mol]": float(torch.sqrt(torch.mean(diff**2))),
               "max_error [kcal/mol]": float(diff.abs().max())}
        if self.mode == "relaxed":
            rmsd = np.sqrt(((self._relaxed - self.geometries) ** 2).sum(-1).mean(-1))
            out["relaxed_rmsd [A]"] = float(rmsd.mean())
        return out

    def profile_table(self, fit: FitParameters, x: Tensor) -> dict[str, np.ndarray]:
        """Angles (deg), QM and MM relative energies (kcal/mol) for plots, aligned as in the
        fit and shifted together so that the QM minimum is 0."""
        with torch.no_grad():
            mm = self.mm_relative(fit, x).detach().numpy()
        qm = self.reference.numpy()
        shift = qm[self.anchor]
        return {"angles": self.profile.angles[self.keep], "qm": qm - shift, "mm": mm - shift}
