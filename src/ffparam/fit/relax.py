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
          gtol: float = 1e-5, max_iterations: int = 5000, backend: str = "openmm") -> np.ndarray:
    """Minimize E_tot for every scan point; returns relaxed positions (P, N, 3) Angstrom.

    ``backend="openmm"`` (default): OpenMM's L-BFGS minimizer on the Reference platform
    (double precision) with the same restraints as OpenMM custom forces, one point after
    another in one Context; an order of magnitude faster than driving the batched PyTorch
    engine from scipy for molecules of drug size. ``"torch"``: scipy L-BFGS-B on the stacked
    coordinates with the analytic PyTorch forces. Either way the implicit derivative
    (:func:`linearized_relaxed_positions`) absorbs a residual gradient to first order.
    Raises CalculationError when the minimizer fails to reach a finite energy.
    """
    if backend == "openmm":
        return relax_openmm(engine, values, start, spec)
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
                               spec: RestraintSpec, step: float = 1e-4) -> Tensor:
    """Inverse Hessians of E_tot at each relaxed point, (P, 3N, 3N).

    The Hessian is the central difference of the analytic gradient
    (:func:`restrained_energy_and_gradient`) with a ``step`` of 1e-4 Angstrom, all 2 x 3N
    displaced copies of all P points in one batched evaluation (truncation error
    ~step^2 x third derivative, far below what the Jacobian needs; double-backward autograd
    gives the same matrix an order of magnitude slower).
    """
    pos = np.asarray(positions, dtype=np.float64)
    n_points, n_atoms = pos.shape[:2]
    n3 = 3 * n_atoms
    shifts = np.eye(n3).reshape(n3, n_atoms, 3) * step
    displaced = np.concatenate([pos[:, None] + shifts[None], pos[:, None] - shifts[None]],
                               axis=1)  # (P, 2*3N, N, 3)
    repeat = lambda a: np.repeat(np.asarray(a), 2 * n3, axis=0)  # noqa: E731
    expanded = RestraintSpec(spec.dihedrals, repeat(spec.target_angles),
                             repeat(spec.reference), spec.k_dihedral, spec.k_position)
    _, grad = restrained_energy_and_gradient(
        engine, torch.as_tensor(displaced.reshape(-1, n_atoms, 3)), values.detach(), expanded)
    grad = grad.reshape(n_points, 2, n3, n3)  # (P, +/-, displaced coordinate, gradient)
    hess = (grad[:, 0] - grad[:, 1]) / (2.0 * step)
    hess = 0.5 * (hess + hess.transpose(1, 2))
    if spec.k_position > 0:
        eye = torch.eye(n3, dtype=hess.dtype)
        return torch.linalg.solve(hess, eye.expand(n_points, -1, -1))
    # without tethers the six rigid-body modes have zero curvature: pseudo-inverse
    return torch.linalg.pinv(hess, hermitian=True, rtol=1e-10)


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


def relax_openmm(engine: MMEngine, values: Tensor, start: np.ndarray, spec: RestraintSpec,
                 tolerance_kj_mol_nm: float = 1e-3, max_iterations: int = 0) -> np.ndarray:
    """:func:`relax` with OpenMM's minimizer (Reference platform, double precision).

    Restraints: ``CustomTorsionForce`` 0.5 k wrap(theta - theta0)^2 per scanned dihedral and
    ``CustomExternalForce`` 0.5 k |r - r0|^2 per atom, their per-point targets updated in
    the Context between points (units converted at this edge: kcal -> kJ, A -> nm).
    """
    import openmm
    from openmm import unit as omm_unit

    from ffparam.mm.openmm_export import to_openmm
    from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

    system = to_openmm(engine.system, values.detach().numpy())
    dihedral = openmm.CustomTorsionForce(
        "0.5*k_dih*d^2; d = dt - 6.283185307179586*floor((dt + 3.141592653589793)"
        "/6.283185307179586); dt = theta - theta0")
    dihedral.addGlobalParameter("k_dih", spec.k_dihedral * KJ_PER_KCAL)
    dihedral.addPerTorsionParameter("theta0")
    quads = np.asarray(spec.dihedrals, dtype=int).reshape(-1, 4)
    targets = np.asarray(spec.target_angles, dtype=float).reshape(len(start), -1)
    for quad in quads:
        dihedral.addTorsion(*map(int, quad), [0.0])
    system.addForce(dihedral)
    tether = openmm.CustomExternalForce("0.5*k_pos*((x-x0)^2 + (y-y0)^2 + (z-z0)^2)")
    tether.addGlobalParameter("k_pos", spec.k_position * KCAL_MOL_A2_TO_KJ_MOL_NM2)
    for name in ("x0", "y0", "z0"):
        tether.addPerParticleParameter(name)
    reference = np.asarray(spec.reference, dtype=float) * NM_PER_ANGSTROM
    for atom in range(system.getNumParticles()):
        tether.addParticle(atom, [0.0, 0.0, 0.0])
    system.addForce(tether)
    context = openmm.Context(system, openmm.VerletIntegrator(1.0 * omm_unit.femtoseconds),
                             openmm.Platform.getPlatformByName("Reference"))
    relaxed = np.empty_like(np.asarray(start, dtype=float))
    for point, xyz in enumerate(np.asarray(start, dtype=float)):
        for d in range(len(quads)):
            dihedral.setTorsionParameters(d, *map(int, quads[d]), [float(targets[point, d])])
        dihedral.updateParametersInContext(context)
        for atom, r0 in enumerate(reference[point]):
            tether.setParticleParameters(atom, atom, [float(v) for v in r0])
        tether.updateParametersInContext(context)
        context.setPositions(xyz * NM_PER_ANGSTROM)
        openmm.LocalEnergyMinimizer.minimize(context, tolerance_kj_mol_nm, max_iterations)
        state = context.getState(getPositions=True, getEnergy=True)
        energy = state.getPotentialEnergy().value_in_unit(omm_unit.kilojoule_per_mole)
        if not np.isfinite(energy):
            raise CalculationError(f"restrained MM relaxation of scan point {point} produced a "
                                   "non-finite energy")
        relaxed[point] = state.getPositions(asNumpy=True).value_in_unit(omm_unit.nanometer) \
            / NM_PER_ANGSTROM
    del context
    return relaxed
