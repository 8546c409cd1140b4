"""Polarizable (Drude) liquids: box and gas Systems, dual-thermostat dynamics, density,
heat of vaporization and the static dielectric constant.

Systems: the one-molecule Drude System of :func:`ffparam.mm.drude.build_openmm_drude`
(core charges q - q_D, Drude charge q_D, ``DrudeForce`` springs k/2 d^2 with the 1-2/1-3
Thole pairs) is the gas phase (NoCutoff, the liquid's constraints) and, replicated by
:func:`ffparam.liquid.openmm_system.build_box_system` with its ``DrudeForce``, the box
(PME). Each molecule's particles are its atoms, then its Drude particles in
``drude.parents`` order. Masses: 0.4 amu moves from each parent to its Drude
(:data:`ffparam.params.drude.DRUDE_MASS_AMU`, the CHARMM Drude / OpenMM convention), so
molecular masses and the density are unchanged. Drudes start on their parents displaced by
``drude_offset_a`` along a seeded random direction, then the energy minimization relaxes
them with the atoms.

Dynamics: OpenMM's ``DrudeLangevinIntegrator`` (extended Lagrangian, dual thermostat):
centres of mass of each core-Drude pair at T with the liquid's friction, the relative
core-Drude motion at ``drude_temperature_k`` (1 K) with ``drude_friction_per_ps`` (20/ps),
and the hard-wall ``setMaxDrudeDistance`` (0.2 Angstrom, as CHARMM) that reflects a Drude
reaching it. The Drude spring's period at 0.4 amu and k = 1000 kcal/mol/A^2 is about 6 fs,
so time steps above 1 fs are refused. The gas phase uses the same integrator (plain, not
tempered).

Properties: density and Hvap exactly as for fixed charges (:mod:`ffparam.liquid.properties`;
energies include the Drude springs and Thole terms). LJ-parameter derivatives by the same
fluctuation formula on the core frames: with the Drudes cold (1 K) the cores sample the
self-consistent (adiabatic) surface U_SCF(x) = min_d U(x, d), and since no LJ term
involves a Drude, dU_SCF/dtheta = dU_LJ/dtheta at the cores (envelope theorem).
``epsilon_scale`` holds the derivatives by a common scale s of every LJ epsilon of the
molecule (d/ds = sum_k eps_k d/deps_k at s = 1), the one-parameter rebalancing of
cohesion when polarization is added on top of LJ fitted for fixed charges
(:func:`scale_lj_epsilon`; :func:`scale_lj_sigma` moves the size instead). The
dielectric constant (:mod:`ffparam.liquid.dielectric`) uses the box dipole of cores and
Drudes over the same equilibrated frames, with eps_inf by Clausius-Mossotti from the
molecule's isotropic polarizability (trace/3 of :meth:`DrudeEngine.polarizability` at its
first conformer, the gas-phase Drude response at fixed cores) and the mean number density.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import openmm
from openmm import unit

from ffparam.errors import InputError
from ffparam.liquid.box import box_density, molar_mass
from ffparam.liquid.conformers import torsion_drift
from ffparam.liquid.dielectric import (
    DielectricEstimate,
    box_dipoles,
    clausius_mossotti,
    dielectric_constant,
)
from ffparam.liquid.job import (
    LiquidJob,
    cached_frame_statistics,
    lj_keys,
    packed_box,
    run_summary,
)
from ffparam.liquid.lj import (
    CutoffScheme,
    LJLayout,
    LJModel,
    box_frame_statistics,
    gas_frame_statistics,
)
from ffparam.liquid.openmm_system import build_box_system, constraint_rows
from ffparam.liquid.properties import (
    LiquidResult,
    PhaseData,
    liquid_properties,
    select_equilibrated,
)
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import PhaseSpec, PhaseTrajectory, run_phase
from ffparam.mm.drude import (
    DrudeEngine,
    build_openmm_drude,
    hbond_thole_force,
    nonbonded_exclusions,
)
from ffparam.params.drude import (
    DRUDE_SECTION,
    add_drude,
    element_drude_types,
    starting_drude_parameters,
)
from ffparam.params.parameter_set import ParameterKey, ParameterSet
from ffparam.params.system import ParameterizedSystem
from ffparam.settings import Settings, require_positive
from ffparam.units import NM_PER_ANGSTROM

AVOGADRO_G_ML_TO_PER_A3 = 6.02214076e23 * 1e-24
"""A density in g/mL over a molar mass in g/mol, times this: molecules per Angstrom^3."""
MAX_DRUDE_TIMESTEP_FS = 1.0
GAS_PLATFORM = "Reference"


@dataclass(frozen=True)
class DrudeDynamicsSettings(Settings):
    """The Drude part of a polarizable liquid simulation.

    Attributes:
        drude_temperature_k: temperature of the core-Drude relative motion, K (1 K keeps
            the Drudes near their self-consistent positions).
        drude_friction_per_ps: friction of that motion, 1/ps.
        max_drude_distance_a: hard wall on |d|, Angstrom (0: none).
        drude_offset_a: start displacement of each Drude from its parent, Angstrom.
    """

    drude_temperature_k: float = 1.0
    drude_friction_per_ps: float = 20.0
    max_drude_distance_a: float = 0.2
    drude_offset_a: float = 0.01

    what: ClassVar[str] = "Drude dynamics settings"

    def __post_init__(self) -> None:
        require_positive(self, "drude_temperature_k")
        require_positive(self, "drude_friction_per_ps")
        require_positive(self, "drude_offset_a")
        if not self.max_drude_distance_a >= 0:
            raise InputError(f"max_drude_distance_a must not be negative, got "
                             f"{self.max_drude_distance_a}")
        if self.max_drude_distance_a and self.drude_offset_a >= self.max_drude_distance_a:
            raise InputError("drude_offset_a must be below max_drude_distance_a")

    def check(self, settings: LiquidSettings) -> None:
        """One-line InputError for liquid ``settings`` a Drude run refuses (a time step
        above :data:`MAX_DRUDE_TIMESTEP_FS`, a tempered gas phase), before any work."""
        if settings.timestep_fs > MAX_DRUDE_TIMESTEP_FS:
            raise InputError(f"a Drude liquid needs a time step of at most "
                             f"{MAX_DRUDE_TIMESTEP_FS} fs, got {settings.timestep_fs} fs")
        if settings.gas_replicas != 1:
            raise InputError("a Drude liquid's gas phase runs without tempering; set "
                             "gas_replicas=1")

    def integrator(self, temperature_k: float, settings: LiquidSettings
                   ) -> openmm.DrudeLangevinIntegrator:
        """The dual-thermostat integrator (cores at ``temperature_k``, time step and
        friction of ``settings``; seed set by the caller)."""
        if settings.timestep_fs > MAX_DRUDE_TIMESTEP_FS:
            raise InputError(f"a Drude liquid needs a time step of at most "
                             f"{MAX_DRUDE_TIMESTEP_FS} fs, got {settings.timestep_fs} fs")
        integrator = openmm.DrudeLangevinIntegrator(
            temperature_k * unit.kelvin, settings.friction_per_ps / unit.picosecond,
            self.drude_temperature_k * unit.kelvin,
            self.drude_friction_per_ps / unit.picosecond,
            settings.timestep_fs * unit.femtosecond)
        integrator.setMaxDrudeDistance(self.max_drude_distance_a * NM_PER_ANGSTROM)
        return integrator


def _require_drude(system: ParameterizedSystem) -> None:
    if system.drude is None or len(system.drude) == 0:
        raise InputError(f"{system.molecule.name} has no Drude particles "
                         "(use ffparam.params.drude.add_drude)")


def override_parameters(system: ParameterizedSystem, source: ParameterSet
                        ) -> ParameterizedSystem:
    """``system`` with every field of ``source`` that it has (same section, id and field;
    section ``Drude`` aside, see :func:`polarizable_system`) set to ``source``'s value:
    e.g. the rebalanced LJ epsilons of a Drude model. InputError when no entry of
    ``source`` outside ``Drude`` is one of the system's."""
    vector = system.parameters.vector().copy()
    own = {key: i for i, key in enumerate(system.parameters.keys())}
    changed = 0
    for section, parameter in source:
        if section == DRUDE_SECTION:
            continue
        for name, value in parameter.values.items():
            index = own.get(ParameterKey(section, parameter.id, name))
            if index is not None:
                vector[index] = value
                changed += 1
    if not changed:
        raise InputError(f"no parameter of the file applies to {system.molecule.name} "
                         "(outside its Drude section)")
    return system.with_parameters(system.parameters.with_vector(vector))


def polarizable_system(system: ParameterizedSystem, source: ParameterSet | None = None
                       ) -> ParameterizedSystem:
    """``system`` with a Drude particle on every heavy atom. Each atom's alpha and Thole
    come from section ``Drude`` of ``source`` (default: the system's own parameters) under
    its type with attached hydrogens (``C3H3``, the typing of polarizability fits) or
    else without (``C3``, :func:`ffparam.params.drude.element_drude_types`); an atom whose
    types are in neither gets the starting values of its plain type
    (:func:`ffparam.params.drude.starting_drude_parameters`)."""
    given = system.parameters if source is None else source
    plain = element_drude_types(system)
    types = [h if h is not None and (DRUDE_SECTION, h) in given else p
             for h, p in zip(element_drude_types(system, hydrogens=True), plain)]
    missing = [t if t is not None and (DRUDE_SECTION, t) not in given else None for t in types]
    merged = starting_drude_parameters(system, missing)
    for tid in dict.fromkeys(t for t in types if t is not None and t not in missing):
        merged.add(DRUDE_SECTION, given.get(DRUDE_SECTION, tid))
    return add_drude(system, types, source=merged)


def drude_gas_system(system: ParameterizedSystem, settings: LiquidSettings,
                     values: np.ndarray | None = None) -> openmm.System:
    """One Drude molecule (atoms then Drudes), NoCutoff, with the liquid's constraints."""
    _require_drude(system)
    omm = build_openmm_drude(system, values).system
    for i, j, distance in constraint_rows(system, settings):
        omm.addConstraint(i, j, distance * NM_PER_ANGSTROM)
    return omm


def drude_box_system(system: ParameterizedSystem, n_molecules: int, box_length_a: float,
                     settings: LiquidSettings, values: np.ndarray | None = None
                     ) -> openmm.System:
    """``n_molecules`` Drude molecules in a cubic PME box (see the module docstring); the
    H-bond Thole screening (``hbond_thole`` types) as one box-wide ``CustomNonbondedForce``
    (:func:`ffparam.mm.drude.hbond_thole_force`, cut off at the liquid's cutoff)."""
    _require_drude(system)
    single = build_openmm_drude(system, values).system
    hbond = [k for k, f in enumerate(single.getForces())
             if isinstance(f, openmm.CustomNonbondedForce)]
    group = single.getForce(hbond[0]).getForceGroup() if hbond else 0
    for k in reversed(hbond):
        single.removeForce(k)
    box = build_box_system(system, n_molecules, box_length_a, settings, values, single=single)
    force = hbond_thole_force(system, values, n_molecules, settings.cutoff_a,
                              nonbonded_exclusions(single))
    if force is not None:
        force.setForceGroup(group)
        box.addForce(force)
    return box


def with_drude_particles(system: ParameterizedSystem, core_positions_a: np.ndarray,
                         offset_a: float, seed: int) -> np.ndarray:
    """Positions of whole molecules (n_molecules * n_atoms, 3) Angstrom with each
    molecule's Drudes appended after its atoms, on their parents displaced by
    ``offset_a`` along random (seeded) directions."""
    n = system.n_atoms
    cores = np.asarray(core_positions_a, dtype=float).reshape(-1, n, 3)
    parents = system.drude.parents
    direction = np.random.default_rng(seed).normal(size=(len(cores), len(parents), 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    drudes = cores[:, parents] + offset_a * direction
    return np.concatenate([cores, drudes], axis=1).reshape(-1, 3)


def site_charges(omm_system: openmm.System) -> np.ndarray:
    """Charges (n_particles,) e of a System's NonbondedForce (cores and Drudes)."""
    force = next(f for f in omm_system.getForces() if isinstance(f, openmm.NonbondedForce))
    return np.array([force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(force.getNumParticles())])


def drude_displacements(system: ParameterizedSystem, positions_a: np.ndarray) -> np.ndarray:
    """|Drude - parent| (n_frames, n_molecules * n_drude) Angstrom of frames (n_frames,
    n_molecules * (n_atoms + n_drude), 3) laid out as the Drude box/gas Systems."""
    n, parents = system.n_atoms, system.drude.parents
    frames = np.asarray(positions_a, dtype=np.float64)
    per = frames.reshape(len(frames), -1, n + len(parents), 3)
    return np.linalg.norm(per[:, :, n:] - per[:, :, parents], axis=-1).reshape(len(frames), -1)


def core_positions(system: ParameterizedSystem, positions_a: np.ndarray) -> np.ndarray:
    """The atoms only (n_frames, n_molecules * n_atoms, 3) of Drude-System frames."""
    n, n_drude = system.n_atoms, len(system.drude)
    frames = np.asarray(positions_a)
    per = frames.reshape(len(frames), -1, n + n_drude, 3)
    return per[:, :, :n].reshape(len(frames), -1, 3)


def isotropic_polarizability(system: ParameterizedSystem) -> float:
    """trace/3 of the molecular polarizability tensor at the first conformer, Angstrom^3
    (:meth:`DrudeEngine.polarizability`)."""
    _require_drude(system)
    system.molecule.require_conformers()
    tensor = DrudeEngine(system).polarizability(system.molecule.conformers[:1])[0]
    return float(np.trace(tensor.numpy()) / 3.0)


def trajectory_dielectric(trajectory: PhaseTrajectory, charges_e: np.ndarray, first_frame: int,
                          temperature_k: float, eps_inf: float = 1.0, n_blocks: int = 10
                          ) -> DielectricEstimate:
    """Dielectric constant of a box trajectory from frame ``first_frame`` on (charges of
    every saved particle; 1 as eps_inf for fixed charges)."""
    dipoles = box_dipoles(trajectory.positions[first_frame:], charges_e)
    return dielectric_constant(dipoles, trajectory.volumes[first_frame:], temperature_k,
                               eps_inf, n_blocks)


@dataclass
class DrudeLiquidResult:
    """A Drude liquid: the usual result (density, Hvap, LJ derivatives), the dielectric
    constant, the molecular polarizability (Angstrom^3) behind its eps_inf, the largest
    Drude displacement seen in the liquid production (Angstrom) and the derivatives by a
    common LJ epsilon scale (``d_density_g_ml``, ``d_hvap_kcal_mol`` and their
    ``..._error``, per unit scale at the simulated parameters)."""

    liquid: LiquidResult
    dielectric: DielectricEstimate
    alpha_a3: float
    max_drude_displacement_a: float
    drude_settings: dict[str, Any]
    epsilon_scale: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {**self.liquid.to_json(), "dielectric": self.dielectric.to_json(),
                "alpha_a3": self.alpha_a3,
                "max_drude_displacement_a": self.max_drude_displacement_a,
                "drude_settings": dict(self.drude_settings),
                "epsilon_scale": dict(self.epsilon_scale)}


def _run_gas(job: LiquidJob, dynamics: DrudeDynamicsSettings, values: np.ndarray,
             report: Callable[[str, float, float], None]) -> PhaseTrajectory:
    settings = job.settings
    system = job.system
    start = with_drude_particles(system, system.molecule.conformers[0],
                                 dynamics.drude_offset_a, settings.seed)
    spec = PhaseSpec(drude_gas_system(system, settings, values), start, None,
                     job.temperature_k, None, settings.gas_equilibration_ps,
                     settings.gas_production_ps, settings.gas_save_interval_ps,
                     f"{job.name} gas", drude=dynamics)
    gas_settings = settings.replace(platform=GAS_PLATFORM, threads=None)
    return run_phase(Path(job.directory) / "gas", spec, gas_settings, report)


def simulate_drude_liquid(job: LiquidJob, dynamics: DrudeDynamicsSettings | None = None,
                          progress: Callable[[str, float, float], None] | None = None
                          ) -> DrudeLiquidResult:
    """Run (or resume) the gas and box phases of a Drude ``job`` (its system from
    :func:`ffparam.params.drude.add_drude`) in ``job.directory`` and return density, Hvap
    and dielectric constant with errors (module docstring). The gas phase is not tempered
    (``gas_replicas`` must be 1)."""
    dynamics = dynamics or DrudeDynamicsSettings()
    settings, system = job.settings, job.system
    _require_drude(system)
    dynamics.check(settings)
    system.molecule.require_conformers()
    values = system.parameters.vector()

    def report(phase: str) -> Callable[[str, float, float], None]:
        return lambda stage, done, total: progress and progress(f"{phase} {stage}", done, total)

    gas = _run_gas(job, dynamics, values, report("gas"))
    cores = replace(gas, positions=core_positions(system, gas.positions))
    box = packed_box(job, Path(job.directory), cores)
    box_system = drude_box_system(system, settings.n_molecules, box["length"], settings, values)
    start = with_drude_particles(system, box["positions"], dynamics.drude_offset_a,
                                 settings.seed)
    liquid = run_phase(Path(job.directory) / "liquid", PhaseSpec(
        box_system, start, box["length"], job.temperature_k, job.pressure_atm,
        settings.equilibration_ps, settings.production_ps, settings.save_interval_ps,
        f"{job.name} liquid", drude=dynamics), settings, report("liquid"))
    return _drude_result(job, dynamics, gas, liquid, site_charges(box_system))


def _lj_phase_data(job: LiquidJob, liquid: PhaseTrajectory, gas: PhaseTrajectory,
                   densities: np.ndarray, keys: list[ParameterKey]
                   ) -> tuple[PhaseData, PhaseData]:
    """Equilibrated liquid and gas frames with dU/dtheta of ``keys`` from the cores' LJ
    frame statistics (kept in ``liquid_lj.npz``/``gas_lj.npz`` of the run directory)."""
    settings, system, directory = job.settings, job.system, Path(job.directory)
    layout = LJLayout.from_system(system)
    scheme = CutoffScheme(settings.cutoff_a, settings.switch_a, settings.dispersion_correction)
    liquid = replace(liquid, positions=core_positions(system, liquid.positions))
    gas = replace(gas, positions=core_positions(system, gas.positions))
    liquid_stats = cached_frame_statistics(
        directory / "liquid_lj.npz", liquid,
        lambda t: box_frame_statistics(layout, t.positions, t.box_lengths, scheme))
    gas_stats = cached_frame_statistics(directory / "gas_lj.npz", gas,
                                        lambda t: gas_frame_statistics(layout, t.positions))
    model, values = LJModel(layout, scheme), system.parameters.vector()
    return (select_equilibrated(liquid, liquid_stats, model, values, keys, densities),
            select_equilibrated(gas, gas_stats, model, values, keys, detect=False))


def epsilon_scale_derivatives(liquid: PhaseData, gas: PhaseData, keys: list[ParameterKey],
                              values: np.ndarray, n_molecules: int, temperature_k: float
                              ) -> dict[str, float]:
    """d(density)/ds (g/mL) and d(Hvap)/ds (kcal/mol) with standard errors, for every
    epsilon among ``keys`` (values ``values``, kcal/mol) scaled by s, at s = 1."""
    weights = np.array([value if key.field == "epsilon" else 0.0
                        for key, value in zip(keys, values)])[:, None]
    props = liquid_properties(replace(liquid, du_dtheta=liquid.du_dtheta @ weights),
                              replace(gas, du_dtheta=gas.du_dtheta @ weights),
                              n_molecules, temperature_k)
    return {"d_density_g_ml": float(props["density_gradient"][0]),
            "d_density_error": float(props["density_gradient_error"][0]),
            "d_hvap_kcal_mol": float(props["hvap_gradient"][0]),
            "d_hvap_error": float(props["hvap_gradient_error"][0])}


def scale_lj_epsilon(system: ParameterizedSystem, scale: float) -> ParameterizedSystem:
    """A copy of ``system`` with every LJ epsilon its atoms use multiplied by ``scale`` (a
    change of those entries of its ParameterSet, exported like any other parameter)."""
    return _scale_lj_field(system, system.nonbonded.epsilon_index, scale, "epsilon")


def scale_lj_sigma(system: ParameterizedSystem, scale: float) -> ParameterizedSystem:
    """A copy of ``system`` with every LJ sigma (A) its atoms use multiplied by ``scale``:
    the size rebalancing of a liquid whose density is off while its cohesion is right (a
    Lennard-Jones fluid at fixed epsilon/kT has rho sigma^3 fixed, so density moves by about
    scale^-3)."""
    return _scale_lj_field(system, system.nonbonded.sigma_index, scale, "sigma")


def _scale_lj_field(system: ParameterizedSystem, index: np.ndarray, scale: float,
                    name: str) -> ParameterizedSystem:
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"LJ {name} scale must be positive, got {scale}")
    vector = system.parameters.vector().copy()
    vector[np.unique(index)] *= scale
    return system.with_parameters(system.parameters.with_vector(vector))


def _drude_result(job: LiquidJob, dynamics: DrudeDynamicsSettings, gas: PhaseTrajectory,
                  liquid: PhaseTrajectory, charges: np.ndarray) -> DrudeLiquidResult:
    settings, system, molecule = job.settings, job.system, job.system.molecule
    mass = molar_mass(molecule)
    densities = box_density(mass, settings.n_molecules, liquid.volumes)
    keys = list(job.gradient_keys) or lj_keys(system)
    liquid_data, gas_data = _lj_phase_data(job, liquid, gas, densities, keys)
    props = liquid_properties(liquid_data, gas_data, settings.n_molecules, job.temperature_k)
    alpha = isotropic_polarizability(system)
    number_density = float(np.mean(liquid_data.densities)) / mass * AVOGADRO_G_ML_TO_PER_A3
    dielectric = trajectory_dielectric(liquid, charges, liquid_data.discarded,
                                       job.temperature_k,
                                       clausius_mossotti(alpha, number_density))
    values = system.parameters.vector()[[system.parameters.index(k) for k in keys]]
    result = LiquidResult(
        **run_summary(job, liquid, gas, liquid_data, gas_data), settings=settings.to_dict(),
        keys=[str(k) for k in keys], values=[float(v) for v in values],
        torsion_drift=[d.to_json() for d in torsion_drift(
            molecule, core_positions(system, liquid.positions))],
        **props)
    return DrudeLiquidResult(result, dielectric, alpha,
                             float(drude_displacements(system, liquid.positions).max()),
                             dynamics.to_dict(),
                             epsilon_scale_derivatives(liquid_data, gas_data, keys, values,
                                                       settings.n_molecules,
                                                       job.temperature_k))
