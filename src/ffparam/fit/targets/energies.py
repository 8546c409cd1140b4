"""Relative-energy (PES) and force-matching targets."""

from __future__ import annotations

import numpy as np
import torch

from ffparam.chem.geometry import stretched_bond
from ffparam.errors import InputError
from ffparam.fit.parameters import FitParameters
from ffparam.fit.targets.base import Target
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem
from ffparam.units import BOLTZMANN_KCAL_MOL_K

Tensor = torch.Tensor


def check_geometries(system: ParameterizedSystem, geometries: np.ndarray, what: str) -> np.ndarray:
    """Validate reference geometries (n, n_atoms, 3) for ``system`` and that bonded atoms sit
    at bonded distances (catches a reference with another atom order)."""
    geometries = np.asarray(geometries, dtype=np.float64)
    n_atoms = system.n_atoms
    if geometries.ndim != 3 or geometries.shape[1:] != (n_atoms, 3):
        raise InputError(f"{what}: geometries have shape {geometries.shape}, molecule "
                         f"{system.molecule.name} needs (n, {n_atoms}, 3)")
    if not np.all(np.isfinite(geometries)):
        raise InputError(f"{what}: non-finite reference geometry")
    bad = stretched_bond(system.molecule.atomic_numbers, system.topology.bonds, geometries)
    if bad is not None:
        frame, a, b, length = bad
        raise InputError(
            f"{what}: atoms {a} and {b} are bonded in the molecule but {length:.2f} A apart "
            f"in reference frame {frame}; the reference atom order does not match the "
            "molecule"
        )
    return geometries


def relative(energies: Tensor, mode: str, anchor: int | None = None) -> Tensor:
    """Energies relative to their mean (``mean``) or to the value at ``anchor``
    (``min``: the index of the reference minimum)."""
    if mode == "mean":
        return energies - energies.mean()
    if mode == "min":
        return energies - energies[anchor]
    raise InputError(f"unknown energy reference {mode!r}; use 'mean' or 'min'")


def boltzmann_weights(reference: np.ndarray, temperature_k: float | None) -> np.ndarray:
    """w_i = exp(-(E_i - E_min)/kT), normalized to mean 1 (all ones when no temperature)."""
    if temperature_k is None:
        return np.ones_like(reference)
    w = np.exp(-(reference - reference.min()) / (BOLTZMANN_KCAL_MOL_K * temperature_k))
    return w / w.mean()


class RelativeEnergyTarget(Target):
    """MM vs reference relative energies on fixed geometries (PES fitting).

    Residual_i = sqrt(w_i) [(E_MM,i - ref_MM) - (E_QM,i - ref_QM)] in kcal/mol, where ref is
    the mean of the set (``reference="mean"``) or the value at the QM minimum (``"min"``),
    and w_i are optional Boltzmann weights at ``boltzmann_temperature_k`` (K).
    """

    unit = "kcal/mol"

    def __init__(self, name: str, system: ParameterizedSystem, geometries: np.ndarray,
                 energies: np.ndarray, reference: str = "mean",
                 boltzmann_temperature_k: float | None = None, weight: float = 1.0,
                 denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        self.system = system
        self.geometries = check_geometries(system, geometries, name)
        energies = np.asarray(energies, dtype=np.float64)
        if energies.shape != (len(self.geometries),):
            raise InputError(f"{name}: {energies.size} energies for {len(self.geometries)} "
                             "geometries")
        if len(energies) < 2:
            raise InputError(f"{name}: relative energies need at least 2 points")
        if not np.all(np.isfinite(energies)):
            raise InputError(f"{name}: non-finite reference energy")
        self.reference_mode = reference
        self.anchor = int(np.argmin(energies))
        self.reference = relative(torch.as_tensor(energies), reference, self.anchor)
        weights = boltzmann_weights(energies, boltzmann_temperature_k)
        self.sqrt_w = torch.as_tensor(np.sqrt(weights))
        self.engine = MMEngine(system)
        self._positions = torch.as_tensor(self.geometries)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def mm_relative(self, fit: FitParameters, x: Tensor) -> Tensor:
        e = self.engine.energy(self._positions, fit.system_values(self.system, x))
        return relative(e, self.reference_mode, self.anchor)

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        return self.sqrt_w * (self.mm_relative(fit, x) - self.reference)


class ForceTarget(Target):
    """Force matching: MM vs reference Cartesian forces (kcal/mol/A), optionally with the
    net force and net torque removed from both (only internal forces compared)."""

    unit = "kcal/mol/A"

    def __init__(self, name: str, system: ParameterizedSystem, geometries: np.ndarray,
                 forces: np.ndarray, remove_net: bool = False, weight: float = 1.0,
                 denominator: float = 1.0) -> None:
        super().__init__(name, weight, denominator)
        self.system = system
        self.geometries = check_geometries(system, geometries, name)
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != self.geometries.shape:
            raise InputError(f"{name}: forces shape {forces.shape} != geometries "
                             f"{self.geometries.shape}")
        if not np.all(np.isfinite(forces)):
            raise InputError(f"{name}: non-finite reference force")
        self.remove_net = remove_net
        self._positions = torch.as_tensor(self.geometries)
        masses = torch.as_tensor(system.molecule.masses)
        self._masses = masses
        ref = torch.as_tensor(forces)
        self.reference = remove_net_force_and_torque(ref, self._positions, masses) \
            if remove_net else ref
        self.engine = MMEngine(system)

    @property
    def systems(self) -> list[ParameterizedSystem]:
        return [self.system]

    def residuals(self, fit: FitParameters, x: Tensor) -> Tensor:
        with torch.enable_grad():  # forces need autograd even when called under no_grad
            values = fit.system_values(self.system, x)
            pos = self._positions.clone().requires_grad_(True)
            energy = self.engine.energy(pos, values).sum()
            (grad,) = torch.autograd.grad(energy, pos, create_graph=torch.is_grad_enabled()
                                          and x.requires_grad)
        forces = -grad
        if self.remove_net:
            forces = remove_net_force_and_torque(forces, self._positions, self._masses)
        return (forces - self.reference).reshape(-1)


def remove_net_force_and_torque(forces: Tensor, positions: Tensor, masses: Tensor) -> Tensor:
    """Project out the net force and net torque (about the centre of mass) of each frame.

    forces, positions: (n, N, 3); masses (N,). The rigid-body part removed is
    F_rigid,i = m_i a + m_i (alpha x r_i) with a and alpha solving the net force/torque
    equations, so what remains has zero net force and zero net torque.
    """
    m = masses.to(forces.dtype)[None, :, None]
    com = (m * positions).sum(1, keepdim=True) / m.sum()
    r = positions - com
    net_force = forces.sum(1, keepdim=True)
    forces = forces - m * net_force / m.sum()
    torque = torch.cross(r, forces, dim=-1).sum(1)  # (n, 3)
    # inertia tensor I = sum m (r.r 1 - r r^T)
    rr = (r * r).sum(-1)
    eye = torch.eye(3, dtype=forces.dtype)
    inertia = (m[..., None] * (rr[..., None, None] * eye - r[..., :, None] * r[..., None, :])
               ).sum(1)
    alpha = (torch.linalg.pinv(inertia) @ torque.unsqueeze(-1)).squeeze(-1)  # (n, 3); pinv: linear
    return forces - m * torch.cross(alpha[:, None, :].expand_as(r), r, dim=-1)
