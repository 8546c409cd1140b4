"""Normal-mode analysis as pure functions: Eckart projection, frequencies, MM Hessians.

Conventions and units:

* Hessians are Cartesian, atom-major (x0, y0, z0, x1, ...), (3N, 3N) kcal/mol/Angstrom^2;
  masses amu; positions (N, 3) Angstrom.
* The mass-weighted Hessian is M^-1/2 H M^-1/2 (kcal/mol/Angstrom^2/amu). Its eigenvalues
  lambda give wavenumbers nu = sign(lambda) sqrt(|lambda|) * HESSIAN_EIGENVALUE_TO_WAVENUMBER
  in cm^-1; imaginary modes are returned as negative numbers.
* Translations and rotations are removed with the Eckart conditions: the six (five for a
  linear molecule) mass-weighted rigid-body vectors sqrt(m_i) e_a and
  sqrt(m_i) (e_a x (r_i - r_com)) span the external space; the vibrational space is its
  orthogonal complement with orthonormal basis D (3N, 3N - k), and the vibrational
  eigenproblem is D^T (M^-1/2 H M^-1/2) D. This gives exactly 3N - 6 (3N - 5) modes without
  guessing which eigenvalues are "near zero". P = D D^T is the Eckart projector.
* Derivatives: frequencies are differentiable (PyTorch) with respect to the Hessian. D is
  built from detached positions; at a stationary point the first-order change of the
  external space does not change the vibrational eigenvalues (P H P with H Q = 0), so the
  parameter derivative is exact there. Only eigenvalues carry gradients (eigenvectors are
  detached), so degenerate modes (CH4, NH3, CO2) have finite gradients.
* The MM Hessian :func:`mm_hessian` is differentiable with respect to the parameter values
  and to the positions (third derivatives by double backward). At (numerically) linear
  angles the autograd Hessian of atan2-based angles is NaN or wrong; there it uses
  central differences of autograd gradients, which are accurate and differentiable too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError, NonFiniteError
from ffparam.units import HESSIAN_EIGENVALUE_TO_WAVENUMBER

Tensor = torch.Tensor

LINEAR_INERTIA_TOL = 1e-3
"""A molecule is linear if its smallest principal moment of inertia is below this
(amu Angstrom^2) while the largest is not; the rotation about its axis is then not a mode."""

LINEAR_ANGLE_TOL = 1e-4
"""An angle within this many rad of 0 or pi counts as linear for :func:`mm_hessian`."""

FD_HESSIAN_STEP = 1e-4
"""Central-difference step (Angstrom) of :func:`mm_hessian`'s finite-difference fallback."""


@dataclass
class NormalModes:
    """Result of a normal-mode analysis.

    Attributes:
        frequencies: (n_vib,) wavenumbers in cm^-1, ascending, imaginary as negative.
        eigenvalues: (n_vib,) of the projected mass-weighted Hessian, kcal/mol/A^2/amu.
        modes: (n_vib, N, 3) orthonormal mass-weighted normal coordinates (detached);
            Cartesian displacements are ``modes / sqrt(m)[:, None]``.
        n_external: number of projected translations + rotations (6, 5 for linear, 3 atom).
    """

    frequencies: Tensor
    eigenvalues: Tensor
    modes: Tensor
    n_external: int

    @property
    def n_modes(self) -> int:
        return int(self.frequencies.shape[0])


# ---------------------------------------------------------------------- geometry helpers
def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy().astype(np.float64)
    return np.asarray(a, dtype=np.float64)


def principal_moments(positions, masses) -> np.ndarray:
    """Principal moments of inertia (3,) amu Angstrom^2, ascending, about the centre of mass."""
    pos, m = _as_numpy(positions).reshape(-1, 3), _as_numpy(masses)
    r = pos - (m[:, None] * pos).sum(0) / m.sum()
    inertia = np.einsum("i,ij,ik->jk", m, r, r)
    inertia = np.trace(inertia) * np.eye(3) - inertia
    return np.linalg.eigvalsh(inertia)


def stretched_bond(topology, geometry) -> tuple[int, int, float] | None:
    """The bond of ``topology`` most stretched in ``geometry`` (N, 3) Angstrom beyond
    :data:`~ffparam.chem.geometry.BOND_LENGTH_FACTOR` x the covalent radii sum, as
    (i, j, length), or None."""
    from ffparam.chem.geometry import stretched_bond as worst_bond

    bad = worst_bond(topology.molecule.atomic_numbers, topology.bonds, _as_numpy(geometry))
    return None if bad is None else bad[1:]


def is_linear(positions, masses) -> bool:
    """True for a linear molecule (smallest principal moment ~ 0, largest not)."""
    moments = principal_moments(positions, masses)
    return bool(moments[0] < LINEAR_INERTIA_TOL and moments[-1] > LINEAR_INERTIA_TOL)


def rigid_body_basis(positions, masses, mass_weighted: bool = True) -> np.ndarray:
    """Orthonormal basis (3N, k) of translations and rotations, k = 6, 5 (linear) or 3.

    With ``mass_weighted`` the vectors are sqrt(m_i) e_a and sqrt(m_i) e_a x (r_i - r_com)
    (the Eckart frame of the mass-weighted Hessian); otherwise unit masses are used (the
    space of rigid Cartesian displacements, for Newton steps and Cartesian projections).
    """
    pos, m = _as_numpy(positions).reshape(-1, 3), _as_numpy(masses)
    n = len(pos)
    if m.shape != (n,):
        raise InputError(f"{m.size} masses for {n} atoms")
    w = np.sqrt(m) if mass_weighted else np.ones(n)
    com = (m[:, None] * pos).sum(0) / m.sum()
    r = pos - com
    vectors = np.zeros((6, n, 3))
    for a in range(3):
        e = np.zeros(3)
        e[a] = 1.0
        vectors[a, :, a] = w
        vectors[3 + a] = w[:, None] * np.cross(e, r)
    mat = vectors.reshape(6, 3 * n).T
    k = 3 if n == 1 else (5 if is_linear(pos, m) else 6)
    u, _, _ = np.linalg.svd(mat, full_matrices=False)
    return u[:, :k]


def vibrational_basis(positions, masses, mass_weighted: bool = True) -> np.ndarray:
    """Orthonormal basis D (3N, 3N - k) of the complement of :func:`rigid_body_basis`."""
    external = rigid_body_basis(positions, masses, mass_weighted)
    q, _ = np.linalg.qr(external, mode="complete")
    return q[:, external.shape[1]:]


def eckart_projector(positions, masses, mass_weighted: bool = True) -> np.ndarray:
    """P = I - Q Q^T (3N, 3N) removing translations and rotations (Q the rigid basis)."""
    q = rigid_body_basis(positions, masses, mass_weighted)
    return np.eye(q.shape[0]) - q @ q.T


def mass_weight(hessian: Tensor, masses) -> Tensor:
    """M^-1/2 H M^-1/2 (3N, 3N) kcal/mol/A^2/amu from H (kcal/mol/A^2) and masses (amu)."""
    m = torch.as_tensor(_as_numpy(masses), dtype=hessian.dtype)
    inv = torch.repeat_interleave(m.rsqrt(), 3)
    return hessian * inv[:, None] * inv[None, :]


def eigenvalues_to_wavenumbers(eigenvalues: Tensor) -> Tensor:
    """cm^-1 from mass-weighted Hessian eigenvalues (kcal/mol/A^2/amu); negative = imaginary.

    |lambda| is floored at 1e-12 inside the square root so an exactly zero eigenvalue has a
    finite derivative.
    """
    magnitude = torch.sqrt(torch.clamp(eigenvalues.abs(), min=1e-12))
    return torch.sign(eigenvalues) * magnitude * HESSIAN_EIGENVALUE_TO_WAVENUMBER


def normal_modes(hessian, positions, masses) -> NormalModes:
    """Harmonic analysis of a Cartesian Hessian with translations/rotations projected out.

    Args:
        hessian: (3N, 3N) kcal/mol/A^2, tensor (differentiable) or array.
        positions: (N, 3) Angstrom (only used for the Eckart frame; detached).
        masses: (N,) amu.
    """
    h = torch.as_tensor(hessian, dtype=torch.float64) if not isinstance(hessian, Tensor) \
        else hessian
    n3 = 3 * _as_numpy(positions).reshape(-1, 3).shape[0]
    if h.shape != (n3, n3):
        raise InputError(f"Hessian has shape {tuple(h.shape)}, the molecule needs ({n3}, {n3})")
    if not torch.all(torch.isfinite(h.detach())):
        raise NonFiniteError("non-finite Hessian in normal-mode analysis")
    basis = torch.as_tensor(vibrational_basis(positions, masses), dtype=h.dtype)
    hmw = mass_weight(0.5 * (h + h.T), masses)
    internal = basis.T @ hmw @ basis
    internal = 0.5 * (internal + internal.T)
    if basis.shape[1] == 0:
        empty = h.new_zeros(0)
        return NormalModes(empty, empty, h.new_zeros((0, n3 // 3, 3)), n3)
    eigenvalues, vectors = torch.linalg.eigh(internal)
    modes = (basis @ vectors.detach()).T.reshape(-1, n3 // 3, 3)
    return NormalModes(eigenvalues_to_wavenumbers(eigenvalues), eigenvalues, modes,
                       n3 - basis.shape[1])


def frequencies(hessian, positions, masses) -> Tensor:
    """Vibrational wavenumbers (n_vib,) cm^-1, ascending (see :func:`normal_modes`)."""
    return normal_modes(hessian, positions, masses).frequencies


def mode_overlaps(reference_modes, modes) -> np.ndarray:
    """Squared overlaps O[i, j] = (u_ref,i . u_j)^2 of two sets of mass-weighted modes
    (n_ref, N, 3) and (n, N, 3), both orthonormal; rows and columns each sum to <= 1."""
    a = _as_numpy(reference_modes).reshape(len(reference_modes), -1)
    b = _as_numpy(modes).reshape(len(modes), -1)
    return (a @ b.T) ** 2


def match_modes(reference_modes, modes) -> np.ndarray:
    """Hungarian assignment maximizing the total squared overlap: returns ``order`` such
    that ``modes[order[i]]`` is matched to ``reference_modes[i]`` (length n_ref)."""
    from scipy.optimize import linear_sum_assignment

    overlaps = mode_overlaps(reference_modes, modes)
    if overlaps.shape[0] > overlaps.shape[1]:
        raise InputError(f"{overlaps.shape[0]} reference modes but only {overlaps.shape[1]} "
                         "modes to match")
    rows, cols = linear_sum_assignment(-overlaps)
    order = np.empty(overlaps.shape[0], dtype=np.int64)
    order[rows] = cols
    return order


# ---------------------------------------------------------------------- MM Hessian
def mm_hessian(engine, positions: Tensor, values: Tensor | None = None,
               method: str = "auto") -> Tensor:
    """Hessian (3N, 3N) kcal/mol/A^2 of an :class:`~ffparam.mm.MMEngine` at ``positions``
    (N, 3) Angstrom, differentiable in ``values`` and in ``positions``.

    ``method``: ``autograd`` (double backward, all rows at once), ``finite-difference``
    (central differences of autograd gradients, step :data:`FD_HESSIAN_STEP`, symmetrized)
    or ``auto`` (finite differences when an angle term is linear within
    :data:`LINEAR_ANGLE_TOL` — there autograd of the atan2 angle gives NaN or, with
    round-off sized deviations from linearity, a wrong bending block — else autograd, still
    falling back to finite differences if the result is not finite).
    """
    if method not in ("auto", "autograd", "finite-difference"):
        raise InputError(f"unknown Hessian method {method!r}")
    with torch.enable_grad():  # also under no_grad (the objective's residual-only calls)
        return _mm_hessian(engine, positions, values, method)


def _mm_hessian(engine, positions, values, method: str) -> Tensor:
    p = engine.parameter_vector() if values is None else values
    pos = torch.as_tensor(positions, dtype=torch.float64)
    flat = pos.reshape(-1)
    n3 = flat.shape[0]
    if method == "autograd" or (method == "auto" and not has_linear_angle(engine, pos)):
        x = flat if flat.requires_grad else flat.detach().requires_grad_(True)
        energy = engine.energy(x.reshape(1, -1, 3), p)[0]
        (grad,) = torch.autograd.grad(energy, x, create_graph=True)
        eye = torch.eye(n3, dtype=grad.dtype)
        (hess,) = torch.autograd.grad(grad, x, grad_outputs=eye, is_grads_batched=True,
                                      create_graph=True)
        if torch.all(torch.isfinite(hess.detach())) or method == "autograd":
            return 0.5 * (hess + hess.T)
    step = FD_HESSIAN_STEP
    shifts = torch.eye(n3, dtype=flat.dtype) * step
    displaced = torch.cat([flat[None] + shifts, flat[None] - shifts])
    leaf = displaced if displaced.requires_grad else displaced.requires_grad_(True)
    energies = engine.energy(leaf.reshape(2 * n3, -1, 3), p)
    (grads,) = torch.autograd.grad(energies.sum(), leaf, create_graph=True)
    hess = (grads[:n3] - grads[n3:]).T / (2.0 * step)
    hess = 0.5 * (hess + hess.T)
    if not torch.all(torch.isfinite(hess.detach())):
        raise NonFiniteError("non-finite MM Hessian (overlapping atoms?)")
    return hess


def has_linear_angle(engine, positions, tol: float = LINEAR_ANGLE_TOL) -> bool:
    """True if some angle term of the engine's system is within ``tol`` rad of 0 or pi at
    ``positions`` (N, 3): there the autograd Hessian of atan2-based angles is wrong."""
    pos = _as_numpy(positions).reshape(-1, 3)
    for group in engine.system.terms:
        if group.form != "harmonic_angle" or not len(group):
            continue
        u = pos[group.atoms[:, 0]] - pos[group.atoms[:, 1]]
        v = pos[group.atoms[:, 2]] - pos[group.atoms[:, 1]]
        sin = np.linalg.norm(np.cross(u, v), axis=1) / (
            np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        if np.any(sin < tol):
            return True
    return False


def mm_gradient(engine, positions: Tensor, values: Tensor | None = None) -> Tensor:
    """dE/dx (N, 3) kcal/mol/A, differentiable in ``values`` (create_graph)."""
    p = engine.parameter_vector() if values is None else values
    with torch.enable_grad():
        x = torch.as_tensor(positions, dtype=torch.float64).detach().requires_grad_(True)
        energy = engine.energy(x.reshape(1, -1, 3), p)[0]
        (grad,) = torch.autograd.grad(energy, x, create_graph=p.requires_grad)
    return grad


def internal_inverse(hessian: np.ndarray, positions, masses) -> np.ndarray:
    """Inverse of a Cartesian Hessian on the internal (non-rigid) subspace,
    D (D^T H D)^-1 D^T (3N, 3N), with D the unit-mass vibrational basis."""
    basis = vibrational_basis(positions, masses, mass_weighted=False)
    internal = basis.T @ hessian @ basis
    try:
        return basis @ np.linalg.solve(internal, basis.T)
    except np.linalg.LinAlgError:
        raise CalculationError("singular MM Hessian: a vibration has zero curvature") from None


def minimize_mm(engine, positions, values: Tensor | None = None, gtol: float = 1e-8,
                max_steps: int = 200, max_step: float = 0.3) -> np.ndarray:
    """Minimize the MM energy from ``positions`` (N, 3) Angstrom by Newton steps in the
    internal subspace (|eigenvalue| denominators, so steps always go downhill), with
    a trust radius ``max_step`` (Angstrom) and backtracking. Stops when the largest
    gradient component is below ``gtol`` kcal/mol/A. Returns (N, 3) Angstrom.
    """
    p = (engine.parameter_vector() if values is None else values).detach()
    pos = _as_numpy(positions).reshape(-1, 3).copy()
    masses = engine.system.molecule.masses

    def energy_of(xyz: np.ndarray) -> float:
        with torch.no_grad():
            return float(engine.energy(torch.as_tensor(xyz)[None], p)[0])

    energy = energy_of(pos)
    for _ in range(max_steps):
        grad = mm_gradient(engine, torch.as_tensor(pos), p).detach().numpy().reshape(-1)
        if np.abs(grad).max() < gtol:
            return pos
        hess = mm_hessian(engine, torch.as_tensor(pos), p).detach().numpy()
        basis = vibrational_basis(pos, masses, mass_weighted=False)
        lam, vec = np.linalg.eigh(basis.T @ hess @ basis)
        lam = np.maximum(np.abs(lam), 1e-3)
        step = -(basis @ (vec @ ((vec.T @ (basis.T @ grad)) / lam))).reshape(-1, 3)
        norm = np.linalg.norm(step)
        if norm > max_step:
            step *= max_step / norm
        for _ in range(30):
            trial = pos + step
            trial_energy = energy_of(trial)
            if trial_energy <= energy + 1e-10:
                break
            step *= 0.5
        pos, energy = trial, trial_energy
    grad = mm_gradient(engine, torch.as_tensor(pos), p).detach().numpy()
    if np.abs(grad).max() > 100 * gtol:
        raise CalculationError(f"MM minimization did not converge in {max_steps} steps "
                               f"(max gradient {np.abs(grad).max():.2e} kcal/mol/A)")
    return pos
