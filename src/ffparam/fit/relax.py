"""Restrained MM relaxation of scan geometries, and its exact parameter derivative.

For torsion profiles "as BespokeFit does": at each scan point the scanned dihedral(s) are
held at the QM value by a stiff harmonic restraint, every atom is tethered to its QM
position by a weak harmonic restraint, and the rest of the molecule relaxes:

    E_tot(x; theta) = E_MM(x; theta) + sum_d k_d/2 wrap(phi_d(x) - phi_d^QM)^2
                      + k_pos/2 sum_i |x_i - x_i^QM|^2

The compared energy is E_MM at the relaxed geometry x*(theta). Its exact derivative with
respect to the parameters uses the implicit-function theorem, dx*/dtheta = -H^-1
d2E_tot/dx dtheta (H the Hessian of E_tot at x*), written as the linearization
x_lin(theta) = x* - H^-1 grad_x E_tot(x*; theta), which equals x* at the current
parameters and has the right first derivative, so ordinary autograd gives the exact
Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ffparam.errors import CalculationError
from ffparam.mm import terms as F
from ffparam.mm.engine import MMEngine

Tensor = torch.Tensor


@dataclass
class RestraintSpec:
    """Restraints of a relaxed scan.

    Attributes:
        dihedrals: int (n_d, 4) scanned dihedral atoms.
        target_angles: (P, n_d) radians, the QM dihedral values of each scan point.
        reference: (P, N, 3) Angstrom, QM geometries the atoms are tethered to.
        k_dihedral: kcal/mol/rad^2 (default 5000: < 0.1 deg drift for typical torques).
        k_position: kcal/mol/A^2 (default 1.0, the BespokeFit/ForceBalance ``restrain_k``).
    """

    dihedrals: np.ndarray
    target_angles: np.ndarray
    reference: np.ndarray
    k_dihedral: float = 5000.0
    k_position: float = 1.0


def restrained_energy(engine: MMEngine, positions: Tensor, values: Tensor,
                      spec: RestraintSpec) -> Tensor:
    """E_tot per scan point (P,), kcal/mol."""
    e_mm = engine.energy(positions, values)
    quads = torch.as_tensor(spec.dihedrals, dtype=torch.long).reshape(-1, 4)
    phi = F.dihedrals(positions, quads)
    target = torch.as_tensor(spec.target_angles, dtype=positions.dtype).reshape(phi.shape)
    dphi = torch.remainder(phi - target + torch.pi, 2 * torch.pi) - torch.pi
    e_dih = 0.5 * spec.k_dihedral * (dphi**2).sum(-1)
    ref = torch.as_tensor(spec.reference, dtype=positions.dtype)
    e_pos = 0.5 * spec.k_position * ((positions - ref) ** 2).sum((-1, -2))
    return e_mm + e_dih + e_pos


def restrained_energy_and_gradient(engine: MMEngine, positions: Tensor, values: Tensor,
                                   spec: RestraintSpec) -> tuple[Tensor, Tensor]:
    """E_tot per point (P,) and dE_tot/dx (P, N, 3), with the analytic MM forces and the
    closed-form restraint derivatives (no autograd: this is the relaxation's inner loop)."""
    from ffparam.mm import analytic as A

    result = engine.compute(positions, values, terms=False, check_finite=False)
    grad = -result.forces
    quads = torch.as_tensor(spec.dihedrals, dtype=torch.long).reshape(-1, 4)
    x = tuple(positions[..., c].contiguous() for c in range(3))
    phi, dphi_dx = A.dihedrals_with_gradients(x, quads)
    target = torch.as_tensor(spec.target_angles, dtype=positions.dtype).reshape(phi.shape)
    dphi = torch.remainder(phi - target + torch.pi, 2 * torch.pi) - torch.pi
    e_dih = 0.5 * spec.k_dihedral * (dphi**2).sum(-1)
    for atoms, g in A.dihedral_gradients(quads, spec.k_dihedral * dphi, dphi_dx):
        grad.index_add_(1, atoms, torch.stack(g, dim=-1))
    ref = torch.as_tensor(spec.reference, dtype=positions.dtype)
    delta = positions - ref
    e_pos = 0.5 * spec.k_position * (delta**2).sum((-1, -2))
    grad = grad + spec.k_position * delta
    return result.energy + e_dih + e_pos, grad


def relax(engine: MMEngine, values: Tensor, start: np.ndarray, spec: RestraintSpec,
          gtol: float = 1e-5, max_iterations: int = 5000) -> np.ndarray:
    """Minimize E_tot for all scan points at once (L-BFGS-B on the stacked coordinates).

    Returns relaxed positions (P, N, 3) Angstrom. Raises CalculationError when the
    minimizer fails to reach a finite energy.
    """
    shape = start.shape
    values = values.detach()

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        pos = torch.as_tensor(flat.reshape(shape))
        energy, grad = restrained_energy_and_gradient(engine, pos, values, spec)
        return float(energy.sum()), grad.numpy().reshape(-1)

    result = scipy.optimize.minimize(fun, start.reshape(-1), jac=True, method="L-BFGS-B",
                                     options={"maxiter": max_iterations, "gtol": gtol,
                                              "ftol": 1e-15, "maxcor": 30})
    if not np.isfinite(result.fun):
        raise CalculationError("restrained MM relaxation produced a non-finite energy")
    return result.x.reshape(shape)


def restrained_hessian_inverse(engine: MMEngine, positions: np.ndarray, values: Tensor,
                               spec: RestraintSpec) -> Tensor:
    """Inverse Hessians of E_tot at each relaxed point, (P, 3N, 3N).

    The Hessian is block-diagonal over scan points, so 3N batched backward passes give
    every block at once.
    """
    with torch.enable_grad():
        return _hessian_inverse(engine, positions, values, spec)


def _hessian_inverse(engine: MMEngine, positions: np.ndarray, values: Tensor,
                     spec: RestraintSpec) -> Tensor:
    pos = torch.as_tensor(positions).requires_grad_(True)
    n_points, n_atoms = pos.shape[:2]
    energy = restrained_energy(engine, pos, values.detach(), spec).sum()
    (grad,) = torch.autograd.grad(energy, pos, create_graph=True)
    grad = grad.reshape(n_points, -1)
    rows = []
    for c in range(3 * n_atoms):
        (col,) = torch.autograd.grad(grad[:, c].sum(), pos, retain_graph=True)
        rows.append(col.reshape(n_points, -1))
    hess = torch.stack(rows, dim=1)  # (P, 3N, 3N): d(grad_c)/dx
    hess = 0.5 * (hess + hess.transpose(1, 2))
    if spec.k_position > 0:
        eye = torch.eye(3 * n_atoms, dtype=pos.dtype)
        return torch.linalg.solve(hess, eye.expand(n_points, -1, -1)).detach()
    # without tethers the six rigid-body modes have zero curvature: pseudo-inverse
    return torch.linalg.pinv(hess.detach(), hermitian=True, rtol=1e-10)


def linearized_relaxed_positions(engine: MMEngine, relaxed: np.ndarray, hessian_inverse: Tensor,
                                 values: Tensor, spec: RestraintSpec) -> Tensor:
    """x_lin(theta) = x* - H^-1 grad_x E_tot(x*; theta): equals x* at the relaxation's
    parameters, with the exact implicit derivative dx*/dtheta."""
    differentiable = values.requires_grad
    with torch.enable_grad():
        pos = torch.as_tensor(relaxed).requires_grad_(True)
        energy = restrained_energy(engine, pos, values, spec).sum()
        (grad,) = torch.autograd.grad(energy, pos, create_graph=differentiable)
    shift = (hessian_inverse @ grad.reshape(grad.shape[0], -1, 1)).reshape(grad.shape)
    return pos.detach() - shift
