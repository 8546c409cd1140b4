"""Drude polarization in the MM engine: self-consistent Drude positions, energies, forces.

A system with Drude oscillators (:mod:`ffparam.params.drude`) has charge *sites*: each atom
core (charge ``q - q_D``) and each Drude particle (``q_D``) at ``x_parent + d``. For given
core positions the Drude displacements ``d`` are relaxed to the minimum of the energy
(the SCF condition ``dE/dd = 0``), batched over conformers, by Newton steps on ``d`` with
the exact Hessian (autograd; a non-positive-definite Hessian is a polarization
catastrophe and raises). Converged when max |dE/dd| <= ``gradient_tolerance_kcal_mol_a``
(default 1e-8 kcal/mol/A, i.e. |d| converged to ~1e-11 A at k = 1000 kcal/mol/A^2).

Derivatives: the relaxed displacements enter the energy as ``d* - H^-1 g(d*)`` with ``H``
held fixed, which equals ``d*`` in value and carries the implicit-function derivative
``dd*/dtheta = -H^-1 d2E/(dd dtheta)``; so energies, forces (the total derivative with the
Drudes following, = OpenMM's core forces at relaxed Drudes) and their parameter gradients
are exact to first order in the residual gradient.

Terms (kcal/mol): the fixed-charge terms of :class:`~ffparam.mm.engine.MMEngine` with
``Electrostatics`` over the charge sites (pairs of sites inherit their atoms' pair
scale; excluded pairs have none), plus ``DrudeSpring`` (k/2 d^2) and ``Thole`` (screened
induced dipole - induced dipole of 1-2 and 1-3 pairs, as OpenMM ``DrudeForce``), and, for
Drude types with ``hbond_thole`` (:mod:`ffparam.params.drude`), ``HBondThole``: the
screening of their Drude dipoles by donor hydrogens, in OpenMM a ``CustomNonbondedForce``
(:func:`hbond_thole_force`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError, NonFiniteError
from ffparam.mm.engine import EnergyResult, MMEngine
from ffparam.mm.openmm_export import OpenMMExport, build_openmm
from ffparam.params.drude import DRUDE_MASS_AMU, drude_charge
from ffparam.params.system import ParameterizedSystem
from ffparam.settings import Settings, require_at_least, require_positive
from ffparam.units import COULOMB_CONSTANT_KCAL_MOL_A_E2, KJ_PER_KCAL, NM_PER_ANGSTROM

Tensor = torch.Tensor

DRUDE_TERMS = ("DrudeSpring", "Thole")


@dataclass(frozen=True)
class DrudeSCFSettings(Settings):
    """Convergence of the Drude relaxation.

    Attributes:
        gradient_tolerance_kcal_mol_a: converged when every component of dE/dd is at most
            this (kcal/mol/A).
        max_iterations: Newton steps before :class:`CalculationError`.
    """

    gradient_tolerance_kcal_mol_a: float = 1e-8
    max_iterations: int = 50

    def __post_init__(self) -> None:
        require_positive(self, "gradient_tolerance_kcal_mol_a")
        require_at_least(self, 1, "max_iterations")


class DrudeEngine:
    """Energies and forces of a system with Drude oscillators (core atoms only in, out).

    Args:
        system: a :class:`ParameterizedSystem` whose ``drude`` is set
            (:func:`ffparam.params.drude.add_drude`).
        settings: SCF convergence (:class:`DrudeSCFSettings`).
    """

    def __init__(self, system: ParameterizedSystem, settings: DrudeSCFSettings | None = None,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
                 ) -> None:
        if system.drude is None:
            raise InputError("system has no Drude particles (use params.drude.add_drude)")
        self.system = system
        self.settings = settings or DrudeSCFSettings()
        self.core = MMEngine(system, dtype, device)
        self.dtype, self.device = dtype, self.core.device
        drude = system.drude
        self.n_atoms, self.n_drude = system.n_atoms, len(drude)
        self.k = float(drude.k_kcal_mol_a2)

        def index(a) -> Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)

        self._parents = index(drude.parents)
        self._alpha, self._thole = index(drude.alpha_index), index(drude.thole_index)
        self._charge = index(system.nonbonded.charge_index)
        self._screened = index(drude.screened).reshape(-1, 2)
        self._hbond = index(drude.hbond_index)
        self._hbond_pairs = index(drude.hbond_pairs).reshape(-1, 2)
        pairs, scale = self._site_pairs()
        self._pairs = index(pairs).reshape(-1, 2)
        self._pair_scale = torch.as_tensor(scale, dtype=dtype, device=self.device)
        self._moving = (self._pairs >= self.n_atoms).any(dim=1)

    def _site_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Site pairs (site index: atom i -> i, Drude n -> n_atoms + n) and their Coulomb
        scale: every nonbonded atom pair expands to its cores' and Drudes' pairs."""
        nb = self.system.nonbonded
        slot = np.full(self.n_atoms, -1, dtype=np.int64)
        slot[self.system.drude.parents] = self.n_atoms + np.arange(self.n_drude)
        rows, scales = [], []
        for (i, j), s in zip(nb.pairs.tolist(), nb.coulomb_scale.tolist()):
            sites_i = [i] + ([int(slot[i])] if slot[i] >= 0 else [])
            sites_j = [j] + ([int(slot[j])] if slot[j] >= 0 else [])
            for a in sites_i:
                for b in sites_j:
                    rows.append((a, b))
                    scales.append(s)
        return np.array(rows, dtype=np.int64).reshape(-1, 2), np.array(scales)

    # ------------------------------------------------------------------ parameters
    def parameter_vector(self) -> Tensor:
        return self.core.parameter_vector()

    def _site_charges(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(site charges (n_atoms + n_drude,), Drude charges, alphas) in e, e, A^3."""
        alpha = p[self._alpha]
        q_d = drude_charge(alpha, self.k)
        core = p[self._charge].index_add(0, self._parents, -q_d)
        return torch.cat([core, q_d]), q_d, alpha

    # ------------------------------------------------------------------ energies
    def polarization_terms(self, pos: Tensor, d: Tensor, p: Tensor, moving_only: bool = False
                           ) -> dict[str, Tensor]:
        """Site ``Electrostatics``, ``DrudeSpring`` and ``Thole`` (n_conformers,) kcal/mol
        at core positions ``pos`` and Drude displacements ``d`` (n_conformers, n_drude, 3)
        Angstrom; ``moving_only`` keeps only the site pairs with a Drude (for relaxing)."""
        q, q_d, alpha = self._site_charges(p)
        core_d = pos[:, self._parents]
        sites = torch.cat([pos, core_d + d], dim=1)
        pairs, scale = self._pairs, self._pair_scale
        if moving_only:
            pairs, scale = pairs[self._moving], scale[self._moving]
        r = torch.linalg.vector_norm(sites[:, pairs[:, 0]] - sites[:, pairs[:, 1]], dim=-1)
        elec = COULOMB_CONSTANT_KCAL_MOL_A_E2 * (q[pairs[:, 0]] * q[pairs[:, 1]] * scale / r)
        spring = 0.5 * self.k * (d * d).sum(dim=(-1, -2))
        out = {"Electrostatics": elec.sum(-1), "DrudeSpring": spring,
               "Thole": self._thole_energy(core_d, core_d + d, q_d, alpha, p)}
        if len(self._hbond_pairs):
            out["HBondThole"] = self._hbond_energy(pos, core_d, d, q[:self.n_atoms], q_d,
                                                   alpha, p)
        return out

    def _hbond_energy(self, pos: Tensor, cores: Tensor, d: Tensor, q_atoms: Tensor,
                      q_d: Tensor, alpha: Tensor, p: Tensor) -> Tensor:
        """Screening of Drude dipoles by donor hydrogens (kcal/mol, n_conformers): for each
        (Drude k, donor h) pair, -C q_D q_H sum over the Drude (+) and its core (-) of
        (1 + u/2) exp(-u) / r, u = a_k r / alpha_k^(1/3) (:mod:`ffparam.params.drude`)."""
        k, h = self._hbond_pairs[:, 0], self._hbond_pairs[:, 1]
        width = p[self._hbond[k]] / alpha[k] ** (1.0 / 3.0)
        total = 0
        for site, sign in ((cores[:, k] + d[:, k], 1.0), (cores[:, k], -1.0)):
            r = torch.linalg.vector_norm(site - pos[:, h], dim=-1)
            u = width * r
            total = total + sign * (1.0 + 0.5 * u) * torch.exp(-u) / r
        return -(COULOMB_CONSTANT_KCAL_MOL_A_E2 * q_d[k] * q_atoms[h] * total).sum(-1)

    def _thole_energy(self, cores: Tensor, drudes: Tensor, q_d: Tensor, alpha: Tensor,
                      p: Tensor) -> Tensor:
        """Screened interaction of the dipoles (q_D at the Drude, -q_D at the core) of each
        screened pair: S(u) = 1 - (1 + u/2) exp(-u), u = (a_i + a_j) r / (alpha_i alpha_j)^(1/6)."""
        if len(self._screened) == 0:
            return cores.new_zeros(cores.shape[0])
        a, b = self._screened[:, 0], self._screened[:, 1]
        thole = p[self._thole]
        scale = (thole[a] + thole[b]) / (alpha[a] * alpha[b]) ** (1.0 / 6.0)
        total = 0
        for left, right, sign in ((drudes[:, a], drudes[:, b], 1.0),
                                  (drudes[:, a], cores[:, b], -1.0),
                                  (cores[:, a], drudes[:, b], -1.0),
                                  (cores[:, a], cores[:, b], 1.0)):
            r = torch.linalg.vector_norm(left - right, dim=-1)
            u = scale * r
            total = total + sign * (1.0 - (1.0 + 0.5 * u) * torch.exp(-u)) / r
        return (COULOMB_CONSTANT_KCAL_MOL_A_E2 * q_d[a] * q_d[b] * total).sum(-1)

    def _polar_energy(self, pos: Tensor, d: Tensor, p: Tensor, field: Tensor | None = None
                      ) -> Tensor:
        """The energy terms that depend on ``d``; with an external ``field``
        (n_conformers, n_drude, 3) kcal/mol/(e A) (:meth:`_per_drude_field`) also its
        energy on the Drude dipoles, -sum_D q_D field_D.d_D."""
        energy = sum(self.polarization_terms(pos, d, p, moving_only=True).values())
        if field is not None:
            q_d = drude_charge(p[self._alpha], self.k)
            energy = energy - torch.einsum("d,cdk,cdk->c", q_d, d, field)
        return energy

    def _per_drude_field(self, field, n_conformers: int) -> Tensor | None:
        """An external field in kcal/mol/(e A) as (n_conformers, n_drude, 3): uniform,
        (3,) or (n_conformers, 3), or already one per Drude (n_conformers, n_drude, 3)."""
        if field is None:
            return None
        field = torch.as_tensor(field, dtype=self.dtype, device=self.device)
        if field.dim() < 3:
            field = field.expand(n_conformers, 3)[:, None, :]
        return field.expand(n_conformers, self.n_drude, 3)

    # ------------------------------------------------------------------ SCF
    def relax(self, positions, values: Tensor | None = None, field_kcal_mol_e_a=None
              ) -> Tensor:
        """Relaxed Drude displacements (n_conformers, n_drude, 3) Angstrom (no graph),
        optionally in an external field in kcal/mol/(e A): uniform, (3,) or (n_conformers,
        3), or one per Drude, (n_conformers, n_drude, 3) (e.g. a QM region's field at the
        Drude sites)."""
        pos = self.core._positions(positions).detach()
        p = (self.parameter_vector() if values is None else values).detach()
        field = self._per_drude_field(field_kcal_mol_e_a, len(pos))
        d = pos.new_zeros((pos.shape[0], self.n_drude, 3))
        tol = self.settings.gradient_tolerance_kcal_mol_a
        for _ in range(self.settings.max_iterations):
            grad, hess = self._grad_hess(pos, d, p, field)
            if bool((grad.abs().amax(dim=1) <= tol).all()):
                return d
            d = self._newton_step(pos, d, p, grad, hess, field)
        raise CalculationError(f"Drude SCF not converged in {self.settings.max_iterations} "
                               f"Newton steps (max |dE/dd| {float(grad.abs().max()):.2e} "
                               "kcal/mol/A)")

    def _grad_hess(self, pos: Tensor, d: Tensor, p: Tensor, field: Tensor | None = None
                   ) -> tuple[Tensor, Tensor]:
        """dE/dd (n_conf, 3 n_drude) and d2E/dd2 (n_conf, 3 n_drude, 3 n_drude)."""
        def single(d_flat: Tensor, x: Tensor, f: Tensor) -> Tensor:
            return self._polar_energy(x.unsqueeze(0), d_flat.reshape(1, -1, 3), p,
                                      f.unsqueeze(0))[0]

        flat = d.reshape(d.shape[0], -1)
        f = pos.new_zeros((len(pos), self.n_drude, 3)) if field is None else field
        grad = torch.func.vmap(torch.func.grad(single))(flat, pos, f)
        hess = torch.func.vmap(torch.func.hessian(single))(flat, pos, f)
        return grad, hess

    def _hessian_with_graph(self, pos: Tensor, d: Tensor, p: Tensor) -> Tensor:
        """d2E/dd2 (n_conf, 3 n_drude, 3 n_drude) by double backward, keeping the graph to
        ``p`` and ``d`` (one row per Drude coordinate, all conformers at once)."""
        with torch.enable_grad():
            d_var = d if d.requires_grad else d.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._polar_energy(pos, d_var, p).sum(), d_var,
                                          create_graph=True)
            grad = grad.reshape(len(pos), -1)
            rows = [torch.autograd.grad(grad[:, i].sum(), d_var, create_graph=True)[0]
                    for i in range(grad.shape[1])]
        return torch.stack([r.reshape(len(pos), -1) for r in rows], dim=1)

    def _newton_step(self, pos: Tensor, d: Tensor, p: Tensor, grad: Tensor, hess: Tensor,
                     field: Tensor | None = None) -> Tensor:
        """One Newton step per conformer, halved while the energy rises."""
        chol, info = torch.linalg.cholesky_ex(hess)
        if bool((info != 0).any()):
            raise CalculationError("Drude SCF: the energy has no minimum in the Drude "
                                   "displacements (polarization catastrophe: alpha too "
                                   "large or Thole screening too weak)")
        step = -torch.cholesky_solve(grad.unsqueeze(-1), chol).squeeze(-1).reshape(d.shape)
        before = self._polar_energy(pos, d, p, field)
        for _ in range(30):
            trial = d + step
            after = self._polar_energy(pos, trial, p, field)
            worse = after > before + 1e-12 * before.abs().clamp(min=1.0)
            if not bool(worse.any()):
                return trial
            step = torch.where(worse[:, None, None], 0.5 * step, step)
        return d + step

    def displacements(self, pos: Tensor, p: Tensor, field: Tensor | None = None) -> Tensor:
        """Relaxed displacements that carry the implicit derivative w.r.t. ``pos`` and
        ``p`` when either requires grad (value: :meth:`relax`); optionally in an external
        ``field`` kcal/mol/(e A) (the shapes :meth:`relax` takes)."""
        d0 = self.relax(pos, p, field)
        if not (pos.requires_grad or p.requires_grad):
            return d0
        field = self._per_drude_field(field, len(d0))
        _, hess = self._grad_hess(pos.detach(), d0, p.detach(), field)
        d_var = d0.clone().requires_grad_(True)
        with torch.enable_grad():
            energy = self._polar_energy(pos, d_var, p, field).sum()
            (grad,) = torch.autograd.grad(energy, d_var, create_graph=True)
        correction = torch.linalg.solve(hess, grad.reshape(grad.shape[0], -1, 1))
        return d0 - correction.reshape(d0.shape)

    # ------------------------------------------------------------------ public API
    def term_energies(self, positions, values: Tensor | None = None) -> dict[str, Tensor]:
        """Per-term energies (n_conformers,) kcal/mol at relaxed Drudes, differentiable
        in positions and parameters."""
        pos = self.core._positions(positions)
        p = self.parameter_vector() if values is None else values
        out = self.core.term_energies(pos, p)
        out.update(self.polarization_terms(pos, self.displacements(pos, p), p))
        return out

    def energy(self, positions, values: Tensor | None = None) -> Tensor:
        """Total energy (n_conformers,) kcal/mol at relaxed Drude positions."""
        return sum(self.term_energies(positions, values).values())

    def compute(self, positions, values: Tensor | None = None, forces: bool = True,
                terms: bool = True) -> EnergyResult:
        """Energies, forces on the atoms (kcal/mol/A, Drudes relaxed) and per-term energies;
        with ``values.requires_grad`` the results keep their graph (as MMEngine.compute)."""
        pos = self.core._positions(positions).detach()
        graph = values is not None and values.requires_grad
        if forces:
            pos = pos.requires_grad_(True)
        with torch.enable_grad() if forces or graph else torch.no_grad():
            per_term = self.term_energies(pos, values)
            total = sum(per_term.values())
            force = None
            if forces:
                (grad,) = torch.autograd.grad(total.sum(), pos, create_graph=graph)
                force = -grad
        if not bool(torch.isfinite(total.detach()).all()):
            raise NonFiniteError("non-finite Drude MM energy (overlapping atoms?)")
        if not graph:
            total = total.detach()
            per_term = {k: v.detach() for k, v in per_term.items()}
            force = None if force is None else force.detach()
        return EnergyResult(total, force, per_term if terms else {})

    def drude_positions(self, positions, values: Tensor | None = None) -> np.ndarray:
        """Absolute relaxed Drude positions (n_conformers, n_drude, 3) Angstrom."""
        pos = self.core._positions(positions).detach()
        d = self.relax(pos, values)
        return (pos[:, self._parents] + d).cpu().numpy()

    def induced_dipole(self, positions, values: Tensor | None = None,
                       field_kcal_mol_e_a=None) -> np.ndarray:
        """Induced dipole sum_D q_D d (n_conformers, 3) in e*Angstrom (optionally in a
        uniform external field, kcal/mol/(e A))."""
        pos = self.core._positions(positions).detach()
        p = (self.parameter_vector() if values is None else values).detach()
        d = self.relax(pos, p, field_kcal_mol_e_a)
        _, q_d, _ = self._site_charges(p)
        return (q_d[None, :, None] * d).sum(1).cpu().numpy()

    def polarizability(self, positions, values: Tensor | None = None) -> Tensor:
        """Molecular polarizability tensor (n_conformers, 3, 3) Angstrom^3 at fixed cores:
        d(induced dipole)/d(uniform field) = C Q^T H^-1 Q with H the Hessian of the energy
        in the Drude displacements at the relaxed Drudes and Q the Drude charges (C the
        Coulomb constant turns e^2 A^2/(kcal/mol) into A^3). Differentiable in ``values``
        (through the implicit derivative of the relaxed Drudes)."""
        pos = self.core._positions(positions).detach()
        p = self.parameter_vector() if values is None else values
        d = self.displacements(pos, p)
        hess = self._hessian_with_graph(pos, d, p)
        q_d = drude_charge(p[self._alpha], self.k)
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        charge_block = (q_d[:, None, None] * eye).reshape(-1, 3)  # (3 n_drude, 3)
        solved = torch.linalg.solve(hess, charge_block.expand(len(pos), -1, -1))
        alpha = charge_block.T @ solved
        alpha = COULOMB_CONSTANT_KCAL_MOL_A_E2 * 0.5 * (alpha + alpha.transpose(1, 2))
        return alpha if p.requires_grad else alpha.detach()


# ---------------------------------------------------------------------- OpenMM
def build_openmm_drude(system: ParameterizedSystem, values: np.ndarray | None = None
                       ) -> OpenMMExport:
    """The fixed-charge OpenMM System of :func:`ffparam.mm.build_openmm` plus one Drude
    particle per polarizable atom, appended after the atoms in ``drude.parents`` order
    (particle ``n_atoms + n``): core charges ``q - q_D``, Drude charge ``q_D`` with
    epsilon 0, Drude pairs inheriting their parents' exclusions and 1-4 scales, a
    ``DrudeForce`` (alpha in nm^3; OpenMM derives k = C q_D^2 / alpha, E = k/2 d^2) with
    the 1-2/1-3 screened pairs (thole_i + thole_j), and the Drude mass
    (:data:`~ffparam.params.drude.DRUDE_MASS_AMU`) moved from each parent."""
    import openmm

    p = system.parameters.vector() if values is None else np.asarray(values, dtype=float)
    drude = system.drude
    if drude is None:
        raise InputError("system has no Drude particles")
    export = build_openmm(system, p)
    omm, n = export.system, system.n_atoms
    alpha, q_d = drude.alphas(p), drude.charges(p)
    thole = p[drude.thole_index]
    for parent in drude.parents.tolist():
        omm.setParticleMass(parent, omm.getParticleMass(parent)._value - DRUDE_MASS_AMU)
        omm.addParticle(DRUDE_MASS_AMU)
    nonbonded = next(f for f in omm.getForces() if isinstance(f, openmm.NonbondedForce))
    _add_drude_sites(system, nonbonded, p, q_d)
    force = openmm.DrudeForce()
    for k, parent in enumerate(drude.parents.tolist()):
        force.addParticle(n + k, parent, -1, -1, -1, float(q_d[k]),
                          float(alpha[k]) * NM_PER_ANGSTROM**3, 1.0, 1.0)
    for a, b in drude.screened.tolist():
        force.addScreenedPair(a, b, float(thole[a] + thole[b]))
    force.setForceGroup(len(export.group_names))
    export.group_names[len(export.group_names)] = "Drude"
    omm.addForce(force)
    hbond = hbond_thole_force(system, p, exclusions=nonbonded_exclusions(omm))
    if hbond is not None:
        hbond.setForceGroup(len(export.group_names))
        export.group_names[len(export.group_names)] = "HBondThole"
        omm.addForce(hbond)
    return export


HBOND_THOLE_ENERGY = ("-{c}*q1*q2*x*(1+0.5*u)*exp(-u)/r; x=h1+h2-2*h1*h2; "
                      "u=(s1+s2)*r")
"""OpenMM expression of the H-bond Thole screening (kJ/mol, nm; ``c`` the Coulomb constant
of ffparam in kJ/mol nm/e^2): per particle ``q`` (Drude q_D, its core -q_D, a donor H its
charge), ``s`` (a / alpha^(1/3) in 1/nm on the Drude sites, 0 on the donors) and ``h``
(1 on donors, else 0), so that only Drude-site x donor pairs count (x = 1) also where no
interaction groups are set (ffxml)."""


def nonbonded_exclusions(omm_system) -> list[tuple[int, int]]:
    """The particle pairs of the exceptions of a System's ``NonbondedForce``."""
    import openmm

    force = next(f for f in omm_system.getForces() if isinstance(f, openmm.NonbondedForce))
    return [tuple(force.getExceptionParameters(k)[:2])
            for k in range(force.getNumExceptions())]


def hbond_thole_force(system: ParameterizedSystem, values: np.ndarray | None = None,
                      n_molecules: int = 1, cutoff_a: float | None = None,
                      exclusions: list[tuple[int, int]] = ()):
    """The ``HBondThole`` term as an OpenMM ``CustomNonbondedForce`` over ``n_molecules``
    copies of ``system`` laid out as :func:`build_openmm_drude` (each molecule's atoms,
    then its Drudes): interaction groups Drude sites (Drude and core) of the types with
    ``hbond_thole`` x donor hydrogens; ``exclusions``: one molecule's particle pairs
    without the term, which must be the exceptions of its ``NonbondedForce`` (OpenMM
    wants the same exclusions on every nonbonded force; :func:`nonbonded_exclusions`:
    the site pairs of the 1-2, 1-3 and 1-4 atom pairs, so only full pairs count, as in
    the engine); NoCutoff, or CutoffPeriodic at ``cutoff_a`` Angstrom (no switch: the
    term decays as exp(-u)). None when the system has no such Drude type or no donor."""
    import openmm

    drude = system.drude
    p = system.parameters.vector() if values is None else np.asarray(values, dtype=float)
    with_hbond = np.flatnonzero(drude.hbond_index >= 0)
    if len(with_hbond) == 0 or len(drude.donors) == 0:
        return None
    n, per = system.n_atoms, system.n_atoms + len(drude)
    q_d, alpha = drude.charges(p), drude.alphas(p)
    q, s, h = np.zeros(per), np.zeros(per), np.zeros(per)
    q[drude.donors] = p[system.nonbonded.charge_index[drude.donors]]
    h[drude.donors] = 1.0
    sites = []
    for k in with_hbond.tolist():
        width = p[drude.hbond_index[k]] / alpha[k] ** (1.0 / 3.0) / NM_PER_ANGSTROM
        parent = int(drude.parents[k])
        q[n + k], q[parent], s[n + k], s[parent] = q_d[k], -q_d[k], width, width
        sites += [(k, n + k), (k, parent)]
    coulomb = COULOMB_CONSTANT_KCAL_MOL_A_E2 * KJ_PER_KCAL * NM_PER_ANGSTROM
    force = openmm.CustomNonbondedForce(HBOND_THOLE_ENERGY.format(c=repr(coulomb)))
    force.addPerParticleParameter("q")
    force.addPerParticleParameter("s")
    force.addPerParticleParameter("h")
    for m in range(n_molecules):
        for i in range(per):
            force.addParticle([float(q[i]), float(s[i]), float(h[i])])
        for a, b in exclusions:
            force.addExclusion(m * per + a, m * per + b)
    force.addInteractionGroup([m * per + site for m in range(n_molecules) for _, site in sites],
                              [m * per + h for m in range(n_molecules)
                               for h in drude.donors.tolist()])
    if cutoff_a is None:
        force.setNonbondedMethod(openmm.CustomNonbondedForce.NoCutoff)
    else:
        force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        force.setCutoffDistance(cutoff_a * NM_PER_ANGSTROM)
    return force


def _add_drude_sites(system: ParameterizedSystem, force, p: np.ndarray, q_d: np.ndarray
                     ) -> None:
    """Drude particles and their exceptions in the NonbondedForce; core charges q - q_D."""
    nb, drude, n = system.nonbonded, system.drude, system.n_atoms
    q_core = p[nb.charge_index].copy()
    q_core[drude.parents] -= q_d
    slot = dict(zip(drude.parents.tolist(), range(n, n + len(drude))))
    charge = {**dict(enumerate(q_core.tolist())), **{slot[a]: float(q) for a, q in
                                                     zip(drude.parents.tolist(), q_d)}}
    for i in range(n):
        sig, eps = force.getParticleParameters(i)[1:]
        force.setParticleParameters(i, charge[i], sig, eps)
    for parent in drude.parents.tolist():
        force.addParticle(charge[slot[parent]], 0.1, 0.0)
        force.addException(parent, slot[parent], 0.0, 0.1, 0.0)
    scale = {tuple(sorted(pair)): s for pair, s in zip(nb.pairs.tolist(),
                                                       nb.coulomb_scale.tolist())}
    for k in range(force.getNumExceptions()):
        a, b, _, sig, eps = force.getExceptionParameters(k)
        if a >= n or b >= n:
            continue
        s = scale.get(tuple(sorted((a, b))), 0.0)
        force.setExceptionParameters(k, a, b, charge[a] * charge[b] * s, sig, eps)
        for x, y in ((slot.get(a), b), (a, slot.get(b)), (slot.get(a), slot.get(b))):
            if x is not None and y is not None:
                force.addException(x, y, charge[x] * charge[y] * s, 0.1, 0.0)


def evaluate_openmm_drude_scf(omm_system, positions: np.ndarray, n_atoms: int,
                              tolerance_kj_mol_nm: float = 1e-6, platform: str = "Reference"
                              ) -> tuple[np.ndarray, np.ndarray]:
    """OpenMM's own Drude relaxation at fixed cores: energies (n_conf,) kcal/mol and Drude
    positions (n_conf, n_drude, 3) Angstrom after one ``DrudeSCFIntegrator`` step of a
    copy of ``omm_system`` whose atoms have mass 0 (OpenMM does not move them), Drudes
    started on their parents; ``positions`` (n_conf, n_atoms, 3) Angstrom, cores only."""
    import openmm
    from openmm import unit as omm_unit

    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(omm_system))
    for i in range(n_atoms):
        copy.setParticleMass(i, 0.0)
    drude = next(f for f in copy.getForces() if isinstance(f, openmm.DrudeForce))
    parents = [drude.getParticleParameters(k)[1] for k in range(drude.getNumParticles())]
    integrator = openmm.DrudeSCFIntegrator(1e-6)
    integrator.setMinimizationErrorTolerance(tolerance_kj_mol_nm)
    context = openmm.Context(copy, integrator, openmm.Platform.getPlatformByName(platform))
    energies, drudes = [], []
    for xyz in np.asarray(positions, dtype=float).reshape(-1, n_atoms, 3):
        full = np.concatenate([xyz, xyz[parents]]) * NM_PER_ANGSTROM
        context.setPositions(full)
        context.setVelocities(np.zeros_like(full))
        integrator.step(1)
        state = context.getState(getEnergy=True, getPositions=True)
        energies.append(state.getPotentialEnergy().value_in_unit(omm_unit.kilojoule_per_mole))
        pos = state.getPositions(asNumpy=True).value_in_unit(omm_unit.nanometer)
        drudes.append(np.asarray(pos)[n_atoms:] / NM_PER_ANGSTROM)
    del context
    return np.array(energies) / KJ_PER_KCAL, np.array(drudes)
