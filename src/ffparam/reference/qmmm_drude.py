"""QM/MM in a polarizable (Drude) environment: QM density and MM Drudes self-consistent.

The MM environment is one :class:`~ffparam.params.system.ParameterizedSystem` with Drude
oscillators (:func:`ffparam.params.drude.add_drude`; several molecules are one system of
several fragments) at core positions ``x``. Its charge sites are the cores (``q - q_D``)
and the Drude particles (``q_D`` at ``x_parent + d``). The total energy, minimized over
the Drude displacements ``d``, is

    E(x_QM, x) = min_d [ E_QM/MM(x_QM; sites(x, d)) + E_pol(x, d) ],
    E_pol(x, d) = E_MM(x, d) - E_MM(x, 0),

with E_QM/MM the electrostatic-embedding QM/MM energy of :mod:`ffparam.reference.qmmm`
(QM energy in the site charges plus their interaction with the QM nuclei) and E_MM the
``d``-dependent terms of :class:`ffparam.mm.drude.DrudeEngine` (site Coulomb energy of
the environment, Drude springs k/2 d^2, Thole screening): E_pol is the environment's
polarization energy (spring + Drude-MM + Thole; zero for d = 0, where every core and
its Drude coincide and carry the atom's charge ``q``). Adding the environment's
fixed-charge MM energy (bonded, Lennard-Jones, Coulomb with charges ``q``) and the QM-MM
Lennard-Jones energy gives the energy of the whole system.

Self-consistency (:func:`self_consistent_qmmm`): start with d = 0; QM/MM SCF in the site
charges; the gradient of the QM/MM energy on each Drude site, g_D = -q_D F_D with F_D
the electric field of the QM region (nuclei + density) at the site, is the external
field in which :meth:`DrudeEngine.relax` relaxes the Drudes together with the MM field
(energy term sum_D g_D.d_D, the QM/MM energy to first order in the displacement); repeat
until the total energy changes by less than ``energy_tolerance_kcal_mol`` between
iterations. At convergence dE/dd = g_D(new) - g_D(previous) ~ 0 (the energy is
stationary in the Drudes; the largest component is reported as ``residual``), so by the
envelope theorem the forces are the partial derivatives at fixed Drude displacements:
on QM atoms the QM/MM gradient; on an MM atom the gradient on its core site, plus that
on its Drude (the Drude moves with its parent at fixed d), plus dE_pol/dx.

Stored like any QM/MM calculation (:func:`compute_qmmm_drude`, Store and runtime
executor): the key holds the QM species, method and geometry, the core positions, the
atoms' charges, every alpha and Thole factor, k, the Drude parents, the MM pair list and
the convergence settings (:meth:`DrudeEnvironment.key_bytes`). A record's ``energy`` is
E (kcal/mol), ``gradient`` on the QM atoms, ``mm_positions``/``mm_charges`` the MM atoms'
core positions and total charges, ``mm_gradient`` dE/dx on the MM atoms (kcal/mol/A);
``provenance["details"]`` has E_QM/MM, E_pol, the relaxed Drude positions, the
iterations and energy changes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from ffparam.errors import CalculationError, InputError
from ffparam.params.system import ParameterizedSystem
from ffparam.reference.jobs import GEOMETRY_PRECISION, Job
from ffparam.reference.methods import get_calculator
from ffparam.reference.qmmm import (
    CHARGE_PRECISION,
    Environment,
    check_qm_geometry,
    check_qmmm_method,
    embed,
    qmmm_species,
    run_qmmm_jobs,
)
from ffparam.reference.records import PointResult, Species
from ffparam.reference.spec import MethodSpec
from ffparam.settings import Settings, require_at_least, require_positive

if TYPE_CHECKING:
    from rich.progress import Progress

    from ffparam.mm.drude import DrudeEngine
    from ffparam.reference.compute import RunSummary
    from ffparam.reference.records import Record
    from ffparam.reference.store import Store
    from ffparam.runtime import Executor


@dataclass(frozen=True)
class DrudeQMMMSettings(Settings):
    """Convergence of the QM/MM-Drude self-consistency.

    Attributes:
        energy_tolerance_kcal_mol: converged when the total energy changes by less than
            this between two iterations (kcal/mol).
        max_iterations: QM/MM calculations before :class:`CalculationError` (at least 2:
            convergence is judged on a change).
        drude_gradient_tolerance_kcal_mol_a: convergence of each MM Drude relaxation
            (max |dE/dd|, kcal/mol/A; :class:`ffparam.mm.drude.DrudeSCFSettings`).
    """

    energy_tolerance_kcal_mol: float = 1e-6
    max_iterations: int = 40
    drude_gradient_tolerance_kcal_mol_a: float = 1e-8

    what: ClassVar[str] = "Drude QM/MM settings"

    def __post_init__(self) -> None:
        require_positive(self, "energy_tolerance_kcal_mol",
                         "drude_gradient_tolerance_kcal_mol_a")
        require_at_least(self, 2, "max_iterations")


@dataclass(frozen=True, eq=False)
class DrudeEnvironment:
    """A polarizable MM environment: a Drude system at its atoms' (core) positions.

    Attributes:
        system: ParameterizedSystem with ``drude`` set (all the MM molecules, as fragments).
        positions: (n_atoms, 3) core positions, Angstrom.
        settings: convergence of the self-consistency (part of the Store key).
        charges: (n_atoms,) the atoms' total charges, e (derived).
    """

    system: ParameterizedSystem
    positions: np.ndarray
    settings: DrudeQMMMSettings = field(default_factory=DrudeQMMMSettings)
    charges: np.ndarray = field(init=False)

    self_consistent: ClassVar[bool] = True
    """Jobs with this environment compute through :func:`drude_fields`."""

    def __post_init__(self) -> None:
        if self.system.drude is None or len(self.system.drude) == 0:
            raise InputError(f"{self.system.molecule.name}: a Drude environment needs Drude "
                             "particles (params.drude.add_drude); use reference.qmmm."
                             "Environment for fixed charges")
        positions = np.array(self.positions, dtype=np.float64)
        if positions.shape != (self.system.n_atoms, 3):
            raise InputError(f"Drude environment {self.system.molecule.name}: positions "
                             f"{positions.shape}, expected ({self.system.n_atoms}, 3)")
        if not np.all(np.isfinite(positions)):
            raise InputError("Drude environment: non-finite position")
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "charges", np.asarray(self.system.charges(), dtype=float))

    def __len__(self) -> int:
        return self.system.n_atoms

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.system.parameters.vector(), dtype=np.float64)

    @property
    def alphas(self) -> np.ndarray:
        """(n_drude,) polarizabilities, Angstrom^3."""
        return self.system.drude.alphas(self.vector)

    def sites(self, displacements: np.ndarray) -> Environment:
        """The point charges: cores (``q - q_D``) at the atoms, then Drudes (``q_D``) at
        parent + ``displacements`` (n_drude, 3) Angstrom."""
        drude = self.system.drude
        q_d = drude.charges(self.vector)
        cores = self.charges.copy()
        cores[drude.parents] -= q_d
        xyz = self.positions[drude.parents] + np.asarray(displacements).reshape(-1, 3)
        return Environment(np.concatenate([cores, q_d]), np.concatenate([self.positions, xyz]))

    def key_bytes(self, precision: float = GEOMETRY_PRECISION) -> bytes:
        """The environment's part of a Store key: rounded core positions and charges (as
        :meth:`Environment.key_bytes`), every alpha and Thole factor, k, the parents, the
        MM pair list with its Coulomb scales and the convergence settings."""
        drude, nb = self.system.drude, self.system.nonbonded
        vector = self.vector
        digest = hashlib.sha256(b"qmmm-drude")
        digest.update(Environment(self.charges, self.positions).key_bytes(precision))
        for values in (drude.alphas(vector), vector[drude.thole_index],
                       [drude.k_kcal_mol_a2], nb.coulomb_scale):
            digest.update(np.rint(np.asarray(values, dtype=float) / CHARGE_PRECISION)
                          .astype(np.int64).tobytes())
        for index in (drude.parents, drude.screened, nb.pairs):
            digest.update(np.asarray(index, dtype=np.int64).tobytes())
        digest.update(repr(sorted(self.settings.to_dict().items())).encode())
        return digest.digest()


@dataclass
class DrudeQMMMResult:
    """A converged QM/MM calculation in a Drude environment (kcal/mol, Angstrom).

    Attributes:
        energy: E = E_QM/MM + E_pol, kcal/mol.
        qmmm_energy, polarization_energy: the two parts, kcal/mol.
        gradient: (n_qm_atoms, 3) dE/dx_QM, kcal/mol/A.
        mm_gradient: (n_mm_atoms, 3) dE/dx on the MM atoms (cores), kcal/mol/A.
        displacements: (n_drude, 3) relaxed Drude displacements from their parents, A.
        energies: total energy of every iteration, kcal/mol.
        residual_kcal_mol_a: max |dE/dd| left at convergence (kcal/mol/A).
        point: the last QM/MM PointResult (dipole, Mulliken charges, SCF details).
    """

    energy: float
    qmmm_energy: float
    polarization_energy: float
    gradient: np.ndarray
    mm_gradient: np.ndarray
    displacements: np.ndarray
    energies: list[float]
    residual_kcal_mol_a: float
    point: PointResult

    @property
    def iterations(self) -> int:
        return len(self.energies)


class _Polarization:
    """E_pol(x, d) = E_MM(x, d) - E_MM(x, 0) of a Drude environment and its derivatives."""

    def __init__(self, environment: DrudeEnvironment) -> None:
        from ffparam.mm.drude import DrudeEngine, DrudeSCFSettings

        settings = environment.settings
        self.engine: DrudeEngine = DrudeEngine(environment.system, DrudeSCFSettings(
            gradient_tolerance_kcal_mol_a=settings.drude_gradient_tolerance_kcal_mol_a))
        self.p = self.engine.parameter_vector().detach()
        self.pos = torch.as_tensor(environment.positions[None], dtype=torch.float64)
        self.parents = environment.system.drude.parents
        self.q_d = environment.system.drude.charges(environment.vector)

    def energy_and_gradient(self, d: np.ndarray) -> tuple[float, np.ndarray]:
        """(E_pol kcal/mol, dE_pol/dx (n_atoms, 3) kcal/mol/A at fixed ``d``)."""
        pos = self.pos.clone().requires_grad_(True)
        disp = torch.as_tensor(d[None], dtype=torch.float64)
        with torch.enable_grad():
            energy = self._terms(pos, disp) - self._terms(pos, torch.zeros_like(disp))
            (grad,) = torch.autograd.grad(energy.sum(), pos)
        return float(energy[0].detach()), grad[0].numpy()

    def _terms(self, pos: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return sum(self.engine.polarization_terms(pos, d, self.p, moving_only=True).values())

    def relax(self, drude_gradient: np.ndarray) -> np.ndarray:
        """Drude displacements (n_drude, 3) A minimizing E_MM(d) + sum_D g_D.d_D, i.e.
        relaxed in the field F_D = -g_D / q_D of the QM region at each Drude."""
        field = -np.asarray(drude_gradient) / self.q_d[:, None]
        return self.engine.relax(self.pos, self.p, field[None]).numpy()[0]


def self_consistent_qmmm(species: Species, geometry: np.ndarray,
                         environment: DrudeEnvironment, method: MethodSpec | str
                         ) -> DrudeQMMMResult:
    """QM/MM of ``species`` at ``geometry`` (n_atoms, 3) Angstrom in a polarizable
    ``environment``, the QM density and the Drudes iterated to self-consistency (module
    docstring); direct and unstored (see :func:`compute_qmmm_drude`). CalculationError
    when not converged in ``environment.settings.max_iterations``."""
    spec = check_qmmm_method(method)
    geometry = check_qm_geometry(species, geometry, environment.positions)
    settings = environment.settings
    polar = _Polarization(environment)
    calc = get_calculator(spec, species)
    n_atoms = len(environment)
    d = np.zeros((len(polar.parents), 3))
    energies: list[float] = []
    previous_g = None
    for _ in range(settings.max_iterations):
        embed(calc, environment.sites(d))
        point = calc.compute(geometry, gradient=True)
        e_pol, g_pol = polar.energy_and_gradient(d)
        energies.append(point.energy + e_pol)
        g_drude = point.mm_gradient[n_atoms:]
        if len(energies) > 1 and abs(energies[-1] - energies[-2]) < \
                settings.energy_tolerance_kcal_mol:
            residual = float(np.abs(g_drude - previous_g).max())
            mm_gradient = point.mm_gradient[:n_atoms] + g_pol
            np.add.at(mm_gradient, polar.parents, g_drude)
            return DrudeQMMMResult(energies[-1], point.energy, e_pol, point.gradient,
                                   mm_gradient, d, energies, residual, point)
        previous_g = g_drude
        d = polar.relax(g_drude)
    changes = np.abs(np.diff(energies))
    raise CalculationError(
        f"QM/MM with Drude environment not self-consistent in {settings.max_iterations} "
        f"iterations (last energy change {changes[-1] if len(changes) else float('nan'):.2e}"
        f" kcal/mol, tolerance {settings.energy_tolerance_kcal_mol:g})")


def drude_fields(job: Job) -> dict:
    """The Record fields of a QM/MM job in a :class:`DrudeEnvironment` (runs in workers;
    called by :func:`ffparam.reference.jobs.execute_job` through the environment)."""
    start = time.perf_counter()
    result = self_consistent_qmmm(job.species, job.geometry, job.environment, job.method)
    environment = job.environment
    details = {
        "drude": {
            "qmmm_energy_kcal_mol": result.qmmm_energy,
            "polarization_energy_kcal_mol": result.polarization_energy,
            "iterations": result.iterations,
            "energies_kcal_mol": result.energies,
            "residual_kcal_mol_a": result.residual_kcal_mol_a,
            "energy_tolerance_kcal_mol": environment.settings.energy_tolerance_kcal_mol,
            "alpha_a3": environment.alphas.tolist(),
            "drude_positions_a": (environment.positions[environment.system.drude.parents]
                                  + result.displacements).tolist(),
            "wall_time_s": time.perf_counter() - start,
        },
        **result.point.details,
    }
    return {"energy": result.energy, "gradient": result.gradient,
            "mm_gradient": result.mm_gradient, "dipole": result.point.dipole,
            "charges": result.point.charges, "details": details}


def drude_qmmm_job(species: Species, geometry: np.ndarray, environment: DrudeEnvironment,
                   method: MethodSpec | str, precision: float = GEOMETRY_PRECISION) -> Job:
    """One stored QM/MM gradient job of ``species`` at ``geometry`` (n_atoms, 3) Angstrom
    in a Drude ``environment``; a non-PySCF method or overlapping atoms are refused
    (InputError) before anything runs."""
    spec = check_qmmm_method(method)
    geometry = check_qm_geometry(species, geometry, environment.positions)
    return Job.create(qmmm_species(species), spec, "gradient", geometry, precision,
                      environment=environment)


def compute_qmmm_drude(points: Sequence[tuple[Species, np.ndarray, DrudeEnvironment]],
                       method: MethodSpec | str, store: Store | None = None,
                       executor: Executor | None = None, retry_failed: bool = False,
                       progress: Progress | bool = False) -> tuple[list[Record], RunSummary]:
    """One stored self-consistent QM/MM-Drude calculation per (species, geometry (n, 3)
    Angstrom, environment), in order, computing only what ``store`` lacks (default: an
    in-memory Store); every job is checked before any runs."""
    jobs = [drude_qmmm_job(s, g, env, method) for s, g, env in points]
    return run_qmmm_jobs(jobs, store, executor, retry_failed, progress, "QM/MM Drude")
