"""Brief HIGH relaxation of LOW constrained-optimized geometries (``HIGH//LOW`` points).

A ``HIGH//LOW`` single point E_HIGH(x_LOW) sits above the HIGH constrained minimum at the
same scanned angle(s) by the relaxation energy HIGH would gain from LOW's geometry error.
Three ways to deal with it (``high_relax``):

* ``none``: the single point (an ``energy`` record of HIGH on the LOW geometry).
* ``newton`` (one HIGH ``gradient`` record per point plus one LOW ``hessian`` record): the
  constrained relaxation energy from a quadratic model with the LOW Hessian,
  ``E_relaxed ~= E_HIGH(x) - 1/2 g_q^T H_q^-1 g_q`` (:func:`newton_step`), where ``_q``
  means restricted to the displacements that keep the scanned dihedral(s) fixed to first
  order and move no rigid-body mode: the orthogonal complement of the dihedrals' Wilson
  B-rows and the 3 translations and 3 rotations (:func:`constraint_basis`). The model
  Hessian is that of the Lagrangian, ``H_LOW - sum_d lambda_d d2phi_d`` with the constraint
  forces ``lambda_d`` of the HIGH gradient (the curvature of the constraint surface matters
  where the profile is steep); its eigenvalues are taken in absolute value and floored at
  ``eigenvalue_floor_kcal_mol_a2`` and the step is capped at ``max_step_a`` (norm over all
  atoms), the energy change then being the model's along the capped step.
* ``steps:N``: N constrained quasi-Newton steps with HIGH gradients from the LOW geometry,
  the LOW Lagrangian Hessian as the start Hessian and BFGS updates in the constrained
  subspace; after each step the dihedral(s) are put back exactly on their angle(s). A step
  that raises the HIGH energy is rejected (the next one starts from the better point with
  half the step cap). The estimate is the lowest HIGH energy reached plus the Newton
  estimate from there: ``newton`` is ``steps:0``. N + 1 HIGH gradients per point.

Every HIGH evaluation is an ordinary ``gradient`` record and the LOW Hessian an ordinary
``hessian`` record, run through :func:`~ffparam.reference.compute.run_jobs`: the steps are
deterministic, so a rerun asks for the same geometries, finds them all in the Store and
computes nothing. A point whose HIGH gradient (or LOW Hessian) failed is returned with
``ok = False``; a failure after the first step ends that point's relaxation at its best
point so far.

Units: energies kcal/mol, lengths Angstrom, gradients kcal/mol/Angstrom, Hessians
kcal/mol/Angstrom^2, angles degrees at the API (radians inside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import Progress

from ffparam.errors import InputError
from ffparam.mm.analytic import dihedrals_with_gradients
from ffparam.reference.compute import RunSummary, run_jobs
from ffparam.reference.jobs import Job
from ffparam.reference.records import Record, Species, Task
from ffparam.reference.spec import MethodSpec
from ffparam.reference.store import Store
from ffparam.runtime import Executor
from ffparam.settings import Settings, require_at_least, require_positive

MAX_RELAX_STEPS = 10
"""Most quasi-Newton steps ``steps:N`` allows."""
HIGH_RELAX_CHOICES = "none, newton or steps:N"
"""How errors name the accepted ``high_relax`` values."""


def parse_high_relax(text: str) -> int | None:
    """Number of quasi-Newton steps of a ``high_relax`` value: ``none`` -> None (single
    points), ``newton`` -> 0, ``steps:N`` -> N (1 <= N <= :data:`MAX_RELAX_STEPS`).
    InputError for anything else."""
    value = str(text).strip().lower()
    if value == "none":
        return None
    if value == "newton":
        return 0
    head, _, count = value.partition(":")
    if head == "steps" and count.strip().isdigit() and 1 <= int(count) <= MAX_RELAX_STEPS:
        return int(count)
    raise InputError(f"high_relax must be {HIGH_RELAX_CHOICES} (N from 1 to "
                     f"{MAX_RELAX_STEPS}), got {text!r}")


@dataclass(frozen=True)
class RelaxSettings(Settings):
    """Numbers of the relaxation model (module docstring).

    Attributes:
        steps: quasi-Newton steps with HIGH gradients (0: the Newton estimate alone).
        eigenvalue_floor_kcal_mol_a2: smallest model-Hessian eigenvalue used, kcal/mol/A^2
            (absolute values below it are raised to it: soft and negative modes).
        max_step_a: longest model step, Angstrom (norm over all atoms).
    """

    steps: int = 0
    eigenvalue_floor_kcal_mol_a2: float = 2.0
    max_step_a: float = 0.3

    def __post_init__(self) -> None:
        require_at_least(self, 0, "steps")
        require_positive(self, "eigenvalue_floor_kcal_mol_a2", "max_step_a")
        if self.steps > MAX_RELAX_STEPS:
            raise InputError(f"steps must be at most {MAX_RELAX_STEPS}, got {self.steps}")


def _dihedral_and_b_row(geometry: np.ndarray, dihedral: Sequence[int]
                        ) -> tuple[float, np.ndarray]:
    """(phi radians, d(phi)/dx (n, 3) radians/Angstrom) of atoms ``dihedral`` in
    ``geometry`` (n, 3): the MM engine's analytic dihedral and its gradient
    (:func:`ffparam.mm.analytic.dihedrals_with_gradients`, IUPAC sign)."""
    x = torch.as_tensor(np.asarray(geometry, dtype=float), dtype=torch.float64)
    quad = torch.as_tensor([list(dihedral)], dtype=torch.int64)
    phi, grads = dihedrals_with_gradients(tuple(x.T[:, None, :]), quad)
    row = np.zeros((len(x), 3))
    for atom, g in zip(dihedral, grads):
        row[atom] += [float(c[0, 0]) for c in g]
    return float(phi[0, 0]), row


def dihedral_rad(geometry: np.ndarray, dihedral: Sequence[int]) -> float:
    """Dihedral angle (radians, (-pi, pi]) of atoms ``dihedral`` in ``geometry`` (n, 3)."""
    return _dihedral_and_b_row(geometry, dihedral)[0]


def dihedral_gradient(geometry: np.ndarray, dihedral: Sequence[int]) -> np.ndarray:
    """d(phi)/dx (n, 3) radians/Angstrom: the dihedral's Wilson B-row, in the sign
    convention of :func:`dihedral_rad`."""
    return _dihedral_and_b_row(geometry, dihedral)[1]


def dihedral_hessian(geometry: np.ndarray, dihedral: Sequence[int],
                     step_a: float = 1e-4) -> np.ndarray:
    """d2(phi)/dx2 (3n, 3n) radians/Angstrom^2, central differences of
    :func:`dihedral_gradient` over the four atoms' coordinates (zero elsewhere)."""
    x = np.asarray(geometry, dtype=float)
    n = len(x)
    out = np.zeros((3 * n, 3 * n))
    for atom in dihedral:
        for c in range(3):
            plus, minus = x.copy(), x.copy()
            plus[atom, c] += step_a
            minus[atom, c] -= step_a
            column = (dihedral_gradient(plus, dihedral) - dihedral_gradient(minus, dihedral))
            out[:, 3 * atom + c] = column.reshape(-1) / (2 * step_a)
    return 0.5 * (out + out.T)


def constraint_basis(geometry: np.ndarray, dihedrals: Sequence[Sequence[int]]) -> np.ndarray:
    """Orthonormal basis (3n, 3n - 6 - d) of the displacements that move neither a
    scanned dihedral (to first order) nor a rigid-body mode (3 translations, 3 rotations
    about the centroid) of ``geometry`` (n, 3) Angstrom."""
    x = np.asarray(geometry, dtype=float)
    n = len(x)
    centred = x - x.mean(axis=0)
    rows = [np.tile(np.eye(3)[c], n) for c in range(3)]
    rows += [np.cross(np.eye(3)[c], centred).reshape(-1) for c in range(3)]
    rows += [dihedral_gradient(x, d).reshape(-1) for d in dihedrals]
    u, s, _ = np.linalg.svd(np.array(rows).T, full_matrices=True)
    rank = int(np.sum(s > 1e-8 * s[0]))
    return u[:, rank:]


@dataclass(frozen=True)
class NewtonStep:
    """A model step in the constrained subspace: ``step`` (n, 3) Angstrom and the model's
    energy change along it ``delta_e_kcal_mol`` (<= 0), plus whether the cap cut it."""

    step: np.ndarray
    delta_e_kcal_mol: float
    capped: bool


def lagrangian_hessian(geometry: np.ndarray, gradient: np.ndarray, hessian: np.ndarray,
                       dihedrals: Sequence[Sequence[int]]) -> np.ndarray:
    """``hessian - sum_d lambda_d d2phi_d`` (3n, 3n) kcal/mol/Angstrom^2, ``lambda_d``
    (kcal/mol/radian) the least-squares constraint forces of ``gradient`` on the
    dihedrals' B-rows."""
    b = np.array([dihedral_gradient(geometry, d).reshape(-1) for d in dihedrals]).T
    lam = np.linalg.lstsq(b, np.asarray(gradient, dtype=float).reshape(-1), rcond=None)[0]
    out = np.array(hessian, dtype=float)
    for value, d in zip(lam, dihedrals):
        out -= value * dihedral_hessian(geometry, d)
    return 0.5 * (out + out.T)


def newton_step(geometry: np.ndarray, gradient: np.ndarray, model_hessian: np.ndarray,
                dihedrals: Sequence[Sequence[int]], settings: RelaxSettings) -> NewtonStep:
    """The constrained Newton step from ``geometry`` (n, 3) Angstrom with ``gradient``
    (n, 3) kcal/mol/Angstrom and the model (Lagrangian) Hessian (3n, 3n)
    kcal/mol/Angstrom^2 (module docstring: eigenvalue floor, step cap)."""
    basis = constraint_basis(geometry, dihedrals)
    g = basis.T @ np.asarray(gradient, dtype=float).reshape(-1)
    values, vectors = np.linalg.eigh(basis.T @ model_hessian @ basis)
    values = np.maximum(np.abs(values), settings.eigenvalue_floor_kcal_mol_a2)
    g_modes = vectors.T @ g
    step_modes = -g_modes / values
    length = float(np.linalg.norm(step_modes))
    capped = length > settings.max_step_a
    if capped:
        step_modes *= settings.max_step_a / length
    delta = float(g_modes @ step_modes + 0.5 * np.sum(values * step_modes**2))
    step = (basis @ (vectors @ step_modes)).reshape(-1, 3)
    return NewtonStep(step, min(delta, 0.0), capped)


def restore_dihedrals(geometry: np.ndarray, dihedrals: Sequence[Sequence[int]],
                      targets_rad: Sequence[float], iterations: int = 20) -> np.ndarray:
    """``geometry`` moved along the dihedrals' B-rows (least norm) until each dihedral is
    back on its target angle (radians) to 1e-10 rad."""
    x = np.array(geometry, dtype=float)
    for _ in range(iterations):
        error = np.array([np.angle(np.exp(1j * (t - dihedral_rad(x, d))))
                          for d, t in zip(dihedrals, targets_rad)])
        if np.max(np.abs(error)) < 1e-10:
            break
        b = np.array([dihedral_gradient(x, d).reshape(-1) for d in dihedrals])
        x += np.linalg.lstsq(b, error, rcond=None)[0].reshape(-1, 3)
    return x


@dataclass
class RelaxedPoint:
    """The HIGH relaxation of one LOW geometry.

    Attributes:
        energy_sp_kcal_mol: HIGH energy on the LOW geometry (the single point).
        energy_kcal_mol: the relaxed HIGH estimate (``none``: the single point).
        predicted_kcal_mol: the Newton part of the estimate (<= 0) at the final point.
        geometry: the best geometry reached, Angstrom (the LOW one for ``newton``).
        n_high: HIGH calculations asked for this point; keys: their Store keys.
        error: why the point failed ("" when ``ok``).
    """

    energy_sp_kcal_mol: float = float("nan")
    energy_kcal_mol: float = float("nan")
    predicted_kcal_mol: float = 0.0
    geometry: np.ndarray | None = None
    n_high: int = 0
    keys: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and np.isfinite(self.energy_kcal_mol)


@dataclass
class _State:
    """One point's quasi-Newton state between HIGH gradients."""

    x: np.ndarray
    energy: float
    gradient: np.ndarray
    hessian: np.ndarray
    cap_a: float
    done: bool = False


def relax_points(species: Species, high: MethodSpec | str, low: MethodSpec | str,
                 geometries: np.ndarray, dihedrals: Sequence[Sequence[int]],
                 settings: RelaxSettings, store: Store, executor: Executor | None = None,
                 retry_failed: bool = False, progress: Progress | bool = False,
                 summary: RunSummary | None = None) -> list[RelaxedPoint]:
    """Relaxed HIGH energies (kcal/mol) of LOW geometries (m, n, 3) Angstrom, each with
    the scanned ``dihedrals`` held at its own angles (module docstring), every calculation
    through ``store``; ``summary`` (if given) collects the jobs."""
    high, low = MethodSpec.parse(high), MethodSpec.parse(low)
    summary = summary if summary is not None else RunSummary()
    geometries = np.asarray(geometries, dtype=float).reshape(-1, species.n_atoms, 3)
    dihedrals = [tuple(int(a) for a in d) for d in dihedrals]
    points = [RelaxedPoint(geometry=g) for g in geometries]
    grads = _gradients(species, high, list(geometries), store, executor, retry_failed,
                       progress, summary)
    hessians, part = run_jobs([Job.create(species, low, Task.parse("hessian"), g)
                               for g in geometries], store, executor, retry_failed,
                              progress, f"  {low.canonical()} hessian")
    summary.merge(part)
    states: list[_State | None] = []
    for point, grad, hess in zip(points, grads, hessians):
        point.keys.append(grad.key)
        point.n_high = 1
        states.append(_start(point, grad, hess, dihedrals, settings))
    for _ in range(settings.steps):
        _step_all(species, high, points, states, dihedrals, settings, store, executor,
                  retry_failed, progress, summary)
    for point, state in zip(points, states):
        if state is not None:
            newton = newton_step(state.x, state.gradient, state.hessian, dihedrals, settings)
            point.predicted_kcal_mol = newton.delta_e_kcal_mol
            point.energy_kcal_mol = state.energy + newton.delta_e_kcal_mol
            point.geometry = state.x
    return points


def _gradients(species, high, geometries, store, executor, retry_failed, progress,
               summary) -> list[Record]:
    jobs = [Job.create(species, high, Task.parse("gradient"), g) for g in geometries]
    records, part = run_jobs(jobs, store, executor, retry_failed, progress,
                             f"  {high.canonical()} gradient")
    summary.merge(part)
    return records


def _start(point: RelaxedPoint, grad: Record, hess: Record, dihedrals,
           settings: RelaxSettings) -> _State | None:
    """The start state of one point (None, with ``point.error`` set, if a job failed)."""
    if not grad.ok:
        point.error = f"HIGH gradient failed: {grad.error}"
        return None
    point.energy_sp_kcal_mol = float(grad.energy)
    if not hess.ok:
        point.error = f"LOW Hessian failed: {hess.error}"
        return None
    x = np.asarray(point.geometry, dtype=float)
    model = lagrangian_hessian(x, grad.gradient, hess.hessian, dihedrals)
    return _State(x, float(grad.energy), np.asarray(grad.gradient, dtype=float), model,
                  settings.max_step_a)


def _step_all(species, high, points, states, dihedrals, settings, store, executor,
              retry_failed, progress, summary) -> None:
    """One quasi-Newton step of every point still relaxing, its HIGH gradients as one
    batch of Store jobs."""
    active = [i for i, s in enumerate(states) if s is not None and not s.done]
    trials = {}
    for i in active:
        state = states[i]
        capped = settings.replace(max_step_a=state.cap_a)
        newton = newton_step(state.x, state.gradient, state.hessian, dihedrals, capped)
        if newton.delta_e_kcal_mol > -1e-4:  # nothing left to gain
            state.done = True
            continue
        targets = [dihedral_rad(state.x, d) for d in dihedrals]
        trials[i] = restore_dihedrals(state.x + newton.step, dihedrals, targets)
    if not trials:
        return
    order = sorted(trials)
    records = _gradients(species, high, [trials[i] for i in order], store, executor,
                         retry_failed, progress, summary)
    for i, record in zip(order, records):
        points[i].keys.append(record.key)
        points[i].n_high += 1
        _accept(states[i], trials[i], record, dihedrals)


def _accept(state: _State, x_new: np.ndarray, record: Record, dihedrals) -> None:
    """BFGS-update ``state``'s model Hessian with the new HIGH gradient and move to the new
    point if it lowered the energy (else halve the step cap); a failed gradient ends it."""
    if not record.ok:
        state.done = True
        return
    g_new = np.asarray(record.gradient, dtype=float)
    b_old, b_new = constraint_basis(state.x, dihedrals), constraint_basis(x_new, dihedrals)
    s = (x_new - state.x).reshape(-1)
    y = b_new @ (b_new.T @ g_new.reshape(-1)) - b_old @ (b_old.T @ state.gradient.reshape(-1))
    sy, hs = float(s @ y), state.hessian @ s
    if sy > 1e-8 * float(s @ s) and float(s @ hs) > 1e-8 * float(s @ s):
        state.hessian = state.hessian + np.outer(y, y) / sy - np.outer(hs, hs) / float(s @ hs)
    if float(record.energy) < state.energy:
        state.x, state.energy, state.gradient = x_new, float(record.energy), g_new
    else:
        state.cap_a *= 0.5


__all__ = [
    "HIGH_RELAX_CHOICES",
    "MAX_RELAX_STEPS",
    "NewtonStep",
    "RelaxSettings",
    "RelaxedPoint",
    "constraint_basis",
    "dihedral_gradient",
    "dihedral_hessian",
    "dihedral_rad",
    "lagrangian_hessian",
    "newton_step",
    "parse_high_relax",
    "relax_points",
    "restore_dihedrals",
]
