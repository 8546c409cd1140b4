"""The electrostatic potential of a Drude model polarized by uniform external fields.

The MM side of the ``esp_field`` reference task (:mod:`ffparam.reference.esp_field`): at
fixed cores the Drude particles relax in the field **F** (energy term ``-sum_D q_D F.d``
added to the Drude energy, :meth:`~ffparam.mm.drude.DrudeEngine.relax`), and the potential
of the molecule's charge sites (cores ``q - q_D`` at the atoms, Drudes ``q_D`` at the
relaxed positions) is evaluated at the grid points:

    V(r) = C sum_s q_s / |r - x_s|   (kcal/mol/e, C = 332.0637 kcal/mol A/e^2),

without the field's own potential (as the QM record). The relaxed displacements carry
their implicit derivative (:meth:`DrudeEngine.displacements`), so V is differentiable in
every parameter: the charges, the Drude alpha (through q_D and the spring) and Thole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import InputError
from ffparam.mm.drude import DrudeEngine
from ffparam.params.drude import drude_charge
from ffparam.params.system import ParameterizedSystem
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor

MIN_POINT_DISTANCE_A = 0.5
"""A grid point closer than this to an atom (Angstrom) is refused (ESP singular there)."""


class DrudeFieldESP:
    """ESP of a Drude system in uniform fields on point sets (one entry per field).

    Args:
        system: a system with Drude particles (:func:`ffparam.params.drude.add_drude`).
        geometries: (n, n_atoms, 3) Angstrom, one core geometry per entry.
        fields: (n, 3) uniform field per entry, kcal/mol/(e A).
        points: one (m_i, 3) Angstrom point array per entry.
    """

    def __init__(self, system: ParameterizedSystem, geometries, fields,
                 points: Sequence[np.ndarray], engine: DrudeEngine | None = None) -> None:
        self.engine = engine or DrudeEngine(system)
        self.system = system
        geoms = np.asarray(geometries, dtype=np.float64).reshape(-1, system.n_atoms, 3)
        fields = np.asarray(fields, dtype=np.float64).reshape(-1, 3)
        if not len(geoms) == len(fields) == len(points) or len(geoms) == 0:
            raise InputError(f"need one geometry, field and point set per entry, got "
                             f"{len(geoms)}, {len(fields)}, {len(points)}")
        self.points = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in points]
        for geom, pts in zip(geoms, self.points):
            check_points(geom, pts)
        self.geometries = torch.as_tensor(geoms)
        self.fields = torch.as_tensor(fields)
        self._points = [torch.as_tensor(p) for p in self.points]
        drude = system.drude
        self._parents = torch.as_tensor(drude.parents)
        self._alpha = torch.as_tensor(drude.alpha_index)
        self._charge = torch.as_tensor(system.nonbonded.charge_index)
        self._memo: tuple[bytes, Tensor, Tensor] | None = None

    def site_charges(self, values: Tensor) -> Tensor:
        """(n_atoms + n_drude,) e: cores ``q - q_D``, then the Drude charges."""
        q_d = drude_charge(values[self._alpha], self.engine.k)
        core = values[self._charge].index_add(0, self._parents, -q_d)
        return torch.cat([core, q_d])

    def sites(self, values: Tensor) -> Tensor:
        """Site positions (n, n_atoms + n_drude, 3) Angstrom with Drudes relaxed in each
        entry's field (differentiable in ``values``)."""
        d = self.displacements(values)
        return torch.cat([self.geometries, self.geometries[:, self._parents] + d], dim=1)

    def displacements(self, values: Tensor) -> Tensor:
        """Relaxed Drude displacements (n, n_drude, 3) Angstrom in each entry's field.

        The result is ``d* + J (values - values)`` with ``J = dd*/dvalues`` (the implicit
        derivative, one backward pass per displacement component): the value of ``d*``
        and its exact first derivative, so a Jacobian over many ESP points costs backward
        passes through this small linear map instead of through the Drude relaxation
        (second derivatives are not carried). ``d*`` and ``J`` of the last parameter
        values are kept (an optimizer asks for residuals and Jacobian at the same point).
        """
        key = values.detach().cpu().numpy().tobytes()
        if self._memo is None or self._memo[0] != key:
            p = values.detach().requires_grad_(True)
            with torch.enable_grad():
                d = self.engine.displacements(self.geometries, p, self.fields).reshape(-1)
                eye = torch.eye(len(d), dtype=d.dtype, device=d.device)
                (jac,) = torch.autograd.grad(d, p, eye, is_grads_batched=True)
            self._memo = (key, d.detach(), jac)
        _, d, jac = self._memo
        if values.requires_grad:
            d = d + jac @ (values - values.detach())
        return d.reshape(len(self.geometries), -1, 3)

    def esp(self, values: Tensor | None = None) -> list[Tensor]:
        """ESP (m_i,) kcal/mol/e of each entry at its points.

        Built so that a Jacobian over many points stays cheap: the value is
        ``K q`` (K the inverse distances to the sites at the relaxed positions) plus, when
        the Drude displacements carry a derivative, ``G (d - d)`` with ``G`` = dV/dx_D
        (C q_D (r - x_D)/|r - x_D|^3) held fixed: both products are matrix-vector, so
        each point's backward pass is one row of K and G (first derivatives exact)."""
        values = self.engine.parameter_vector() if values is None else values
        q = self.site_charges(values)
        d = self.displacements(values)
        n = self.system.n_atoms
        out = []
        for e, pts in enumerate(self._points):
            geom = self.geometries[e]
            x = torch.cat([geom, geom[self._parents] + d[e].detach()])
            diff = pts[:, None, :] - x[None, :, :]
            inv = 1.0 / torch.linalg.vector_norm(diff, dim=-1)
            esp = inv @ q
            if d.requires_grad:
                slope = diff[:, n:] * inv[:, n:, None] ** 3 * q.detach()[None, n:, None]
                esp = esp + slope.reshape(len(pts), -1) @ (d[e] - d[e].detach()).reshape(-1)
            out.append(COULOMB_CONSTANT_KCAL_MOL_A_E2 * esp)
        return out

    def induced_dipoles(self, values: Tensor | None = None) -> Tensor:
        """Dipole of the Drude displacements sum_D q_D d (n, 3) e*Angstrom per entry."""
        values = self.engine.parameter_vector() if values is None else values
        d = self.displacements(values)
        q_d = drude_charge(values[self._alpha], self.engine.k)
        return (q_d[None, :, None] * d).sum(1)


def check_points(geometry: np.ndarray, points: np.ndarray) -> None:
    """InputError for an empty or non-finite point set or a point on top of an atom."""
    if len(points) == 0:
        raise InputError("no ESP points")
    if not np.all(np.isfinite(points)):
        raise InputError("non-finite ESP point")
    nearest = np.linalg.norm(points[:, None, :] - geometry[None, :, :], axis=-1).min()
    if nearest < MIN_POINT_DISTANCE_A:
        raise InputError(f"an ESP point lies {nearest:.3f} A from an atom (closer than "
                         f"{MIN_POINT_DISTANCE_A} A)")
