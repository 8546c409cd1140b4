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

Perturbing point charges Q_j at R_j (CHARMM's recipe; the QM side is
:func:`ffparam.reference.esp_field.charge_jobs`): the Drudes relax in their exact,
non-uniform potential, energy ``C sum_D sum_j q_D Q_j / |x_D - R_j|`` added to the Drude
energy (:func:`relax_in_charges`: Newton steps on d with the exact Hessian, the implicit
derivative as in the engine); the cores' energy in that potential does not depend on d.
The ESP again leaves out the charges' own potential.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError
from ffparam.mm.drude import DrudeEngine
from ffparam.params.drude import drude_charge
from ffparam.params.system import ParameterizedSystem
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2

Tensor = torch.Tensor

MIN_POINT_DISTANCE_A = 0.5
"""A grid point closer than this to an atom (Angstrom) is refused (ESP singular there)."""
MIN_CHARGE_DISTANCE_A = 2.0
"""A perturbing point charge closer than this to an atom is refused (Angstrom)."""


class DrudeFieldESP:
    """ESP of a Drude system in uniform fields on point sets (one entry per field).

    Args:
        system: a system with Drude particles (:func:`ffparam.params.drude.add_drude`).
        geometries: (n, n_atoms, 3) Angstrom, one core geometry per entry.
        fields: (n, 3) uniform field per entry, kcal/mol/(e A).
        points: one (m_i, 3) Angstrom point array per entry.
        charges: optional, one (k_i, 4) array per entry of perturbing point charges
            (x, y, z Angstrom, Q e; k_i = 0 for none), in addition to the field.
    """

    def __init__(self, system: ParameterizedSystem, geometries, fields,
                 points: Sequence[np.ndarray], engine: DrudeEngine | None = None,
                 charges: Sequence[np.ndarray] | None = None) -> None:
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
        self.charges = _checked_charges(geoms, charges)
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
                d = self._relaxed(p).reshape(-1)
                eye = torch.eye(len(d), dtype=d.dtype, device=d.device)
                (jac,) = torch.autograd.grad(d, p, eye, is_grads_batched=True)
            self._memo = (key, d.detach(), jac)
        _, d, jac = self._memo
        if values.requires_grad:
            d = d + jac @ (values - values.detach())
        return d.reshape(len(self.geometries), -1, 3)

    def _relaxed(self, p: Tensor) -> Tensor:
        """Relaxed displacements (n, n_drude, 3) A with their implicit derivative: the
        engine's relaxation in uniform fields, or :func:`relax_in_charges` in the fields
        and the perturbing charges when any entry has charges."""
        if not any(len(c) for c in self.charges):
            return self.engine.displacements(self.geometries, p, self.fields)
        return relax_in_charges(self.engine, self.geometries, p, self.fields,
                                _padded(self.charges, self.geometries))

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


def _checked_charges(geometries: np.ndarray, charges: Sequence[np.ndarray] | None
                     ) -> list[Tensor]:
    """Perturbing charges per entry as (k_i, 4) tensors; InputError for a wrong shape, a
    non-finite value or a charge within MIN_CHARGE_DISTANCE_A of an atom."""
    if charges is None:
        return [torch.zeros((0, 4), dtype=torch.float64) for _ in geometries]
    if len(charges) != len(geometries):
        raise InputError(f"need one perturbing-charge array per entry, got {len(charges)} "
                         f"for {len(geometries)}")
    out = []
    for geom, entry in zip(geometries, charges):
        entry = np.asarray(entry, dtype=np.float64).reshape(-1, 4)
        if not np.all(np.isfinite(entry)):
            raise InputError("non-finite perturbing charge")
        if len(entry):
            gap = np.linalg.norm(entry[:, None, :3] - geom[None], axis=-1).min()
            if gap < MIN_CHARGE_DISTANCE_A:
                raise InputError(f"a perturbing charge lies {gap:.2f} A from an atom "
                                 f"(closer than {MIN_CHARGE_DISTANCE_A} A)")
        out.append(torch.as_tensor(entry))
    return out


def _padded(charges: list[Tensor], geometries: Tensor) -> Tensor:
    """Per-entry charges (k_i, 4) as one (n, max k_i, 4) tensor, padded with Q = 0 rows
    1000 A from the molecule (no energy, no singularity)."""
    far = geometries.mean(dim=1) + 1000.0
    size = max(len(c) for c in charges)
    rows = [torch.cat([c, torch.cat([far[e].expand(size - len(c), 3),
                                     far.new_zeros((size - len(c), 1))], dim=1)])
            for e, c in enumerate(charges)]
    return torch.stack(rows)


def polarization_energy_in_charges(engine: DrudeEngine, geometry: Tensor, d: Tensor,
                                   p: Tensor, field: Tensor, charges: Tensor) -> Tensor:
    """The d-dependent energy (kcal/mol) of one geometry (n_atoms, 3) A with displacements
    (n_drude, 3) A in a uniform ``field`` (3,) kcal/mol/(e A) and point ``charges`` (k, 4)."""
    polar = sum(engine.polarization_terms(geometry[None], d[None], p, moving_only=True)
                .values())[0]
    drude = engine.system.drude
    q_d = drude_charge(p[torch.as_tensor(drude.alpha_index)], engine.k)
    x_d = geometry[torch.as_tensor(drude.parents)] + d
    r = torch.linalg.vector_norm(x_d[:, None, :] - charges[None, :, :3], dim=-1)
    external = COULOMB_CONSTANT_KCAL_MOL_A_E2 * (q_d[:, None] * charges[None, :, 3] / r).sum()
    return polar + external - (q_d[:, None] * d * field).sum()


def relax_in_charges(engine: DrudeEngine, geometries: Tensor, p: Tensor, fields: Tensor,
                     charges: Tensor) -> Tensor:
    """Drude displacements (n, n_drude, 3) A of core ``geometries`` (n, n_atoms, 3) A
    relaxed in uniform ``fields`` (n, 3) kcal/mol/(e A) and point ``charges`` (n, k, 4)
    (x, y, z A, Q e; pad with Q = 0 away from the molecule): batched Newton steps with the
    exact Hessian (halved per entry while its energy rises) to max |dE/dd| <= the
    engine's tolerance; when ``p`` requires grad the result carries the implicit
    derivative ``-H^-1 d2E/(dd dp)`` (value unchanged)."""
    def energy(flat: Tensor, geometry: Tensor, field: Tensor, charge: Tensor,
               values: Tensor) -> Tensor:
        return polarization_energy_in_charges(engine, geometry, flat.reshape(-1, 3), values,
                                              field, charge)

    def batched(function):
        return torch.func.vmap(function, in_dims=(0, 0, 0, 0, None))

    grad_of, hess_of, energy_of = (batched(torch.func.grad(energy)),
                                   batched(torch.func.hessian(energy)), batched(energy))
    settings, fixed = engine.settings, p.detach()
    data = (geometries, fields, charges)
    flat = geometries.new_zeros((len(geometries), 3 * engine.n_drude))
    for _ in range(settings.max_iterations):
        grad = grad_of(flat, *data, fixed)
        if float(grad.abs().max()) <= settings.gradient_tolerance_kcal_mol_a:
            break
        chol, info = torch.linalg.cholesky_ex(hess_of(flat, *data, fixed))
        if bool((info != 0).any()):
            raise CalculationError("Drude relaxation in point charges: no energy minimum "
                                   "(polarization catastrophe)")
        step = -torch.cholesky_solve(grad[..., None], chol)[..., 0]
        before = energy_of(flat, *data, fixed)
        for _ in range(30):
            worse = energy_of(flat + step, *data, fixed) > before + 1e-12 * before.abs()
            if not bool(worse.any()):
                break
            step = torch.where(worse[:, None], 0.5 * step, step)
        flat = flat + step
    else:
        raise CalculationError(f"Drude relaxation in point charges not converged in "
                               f"{settings.max_iterations} Newton steps")
    if p.requires_grad:
        hess = hess_of(flat, *data, fixed)
        with torch.enable_grad():
            d_var = flat.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy_of(d_var, *data, p).sum(), d_var,
                                          create_graph=True)
        flat = flat - torch.linalg.solve(hess, grad[..., None])[..., 0]
    return flat.reshape(len(geometries), -1, 3)
