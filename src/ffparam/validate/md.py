"""MD stability: gas-phase Langevin dynamics of one molecule in OpenMM.

The system is exported with :func:`ffparam.mm.to_openmm` (NoCutoff, no constraints, no
centre-of-mass remover), energy-minimized, given Maxwell-Boltzmann velocities and integrated
with ``LangevinMiddleIntegrator``. Every ``report_interval_ps`` the run is checked; it is
*unstable*, and stops with a one-line reason, when

* OpenMM raises (e.g. "Particle coordinate is NaN") or an energy or coordinate is not finite;
* a bond is longer than ``max_bond_ratio`` (1.5) times its length in the start geometry, or
  longer than ``max_bond_length_a`` (2.5 A; start length + 0.5 A for bonds already longer
  than 2 A), or shorter than ``min_bond_ratio`` (0.5) times it (a bond that collapsed
  onto itself: thermal compression of a bond is a few per cent);
* two atoms that interact through the nonbonded terms (1-4 and beyond) come closer than
  ``min_pair_distance_a`` (0.5 A: collapsing charges);
* the potential energy leaves a window of +/- ``energy_window_kcal_mol_per_atom`` (10) x
  n_atoms around the minimized energy (thermal fluctuations at 300 K are about
  1 kcal/mol per atom).

A blow-up is a result (``stable=False`` with ``reason``), never an exception, and a NaN is
never reported as a number: statistics cover the finite frames before the stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ffparam.chem import Molecule
from ffparam.errors import FFParamError, InputError
from ffparam.params.system import ParameterizedSystem
from ffparam.runtime import progress_task
from ffparam.settings import Settings, require_positive
from ffparam.units import (
    ANGSTROM_PER_NM,
    BOLTZMANN_KCAL_MOL_K,
    KCAL_PER_KJ,
    NM_PER_ANGSTROM,
)
from ffparam.validate.results import finite_or_none, json_safe
from ffparam.validate.sampling import VALIDATION_SEED


@dataclass(frozen=True)
class MDLimitSettings(Settings):
    """Thresholds of the stability checks (see the module docstring): bond length over its
    start length within [min_bond_ratio, max_bond_ratio] and below max_bond_length_a
    (Angstrom), non-bonded pairs no closer than min_pair_distance_a (Angstrom), total
    energy within energy_window_kcal_mol_per_atom of its start (kcal/mol per atom)."""

    max_bond_ratio: float = 1.5
    min_bond_ratio: float = 0.5
    max_bond_length_a: float = 2.5
    min_pair_distance_a: float = 0.5
    energy_window_kcal_mol_per_atom: float = 10.0

    def __post_init__(self) -> None:
        require_positive(self, "max_bond_ratio", "min_bond_ratio", "max_bond_length_a",
                         "min_pair_distance_a", "energy_window_kcal_mol_per_atom")
        if not self.min_bond_ratio < 1.0 < self.max_bond_ratio:
            raise InputError(f"MDLimitSettings: need min_bond_ratio < 1 < max_bond_ratio, got "
                             f"{self.min_bond_ratio} and {self.max_bond_ratio}")


@dataclass
class MDValidation:
    """Outcome of a gas-phase Langevin run.

    Attributes:
        stable: True when the whole run passed every check.
        reason: one-line reason when unstable (None when stable).
        stage: where it failed: ``setup``, ``minimization`` or ``md`` (None when stable).
        length_ps: requested length; simulated_ps: length integrated before any stop.
        temperature_k, timestep_fs, friction_per_ps, seed, platform: run settings.
        n_frames: checked frames (one per report interval).
        minimized_energy_kcal_mol: potential energy after minimization.
        potential_energy_mean_kcal_mol, potential_energy_std_kcal_mol: over the frames.
        potential_energy_rise_kcal_mol: mean potential energy minus the minimized energy.
        mean_temperature_k: kinetic temperature 2 KE / (3 N k_B) averaged over frames.
        max_bond_deviation_a: largest |r - r_start| of any bond in any frame, Angstrom.
        max_bond_ratio: largest r / r_start; worst_bond: its atom pair.
        min_pair_distance_a: closest approach of two nonbonded-interacting atoms.
        wall_time_s: whole call (setup + minimization + MD); md_wall_time_s: MD loop only.
        ns_per_day: simulated ns per day of MD loop wall time.
        limits: the thresholds used.
    """

    stable: bool
    reason: str | None
    stage: str | None
    length_ps: float
    simulated_ps: float
    temperature_k: float
    timestep_fs: float
    friction_per_ps: float
    seed: int
    platform: str
    n_frames: int = 0
    minimized_energy_kcal_mol: float | None = None
    potential_energy_mean_kcal_mol: float | None = None
    potential_energy_std_kcal_mol: float | None = None
    potential_energy_rise_kcal_mol: float | None = None
    mean_temperature_k: float | None = None
    max_bond_deviation_a: float | None = None
    max_bond_ratio: float | None = None
    worst_bond: list[int] | None = None
    min_pair_distance_a: float | None = None
    wall_time_s: float = 0.0
    md_wall_time_s: float = 0.0
    ns_per_day: float | None = None
    limits: MDLimitSettings = field(default_factory=MDLimitSettings)

    def to_json(self) -> dict[str, Any]:
        return json_safe(self)


class _Monitor:
    """Bond, pair and energy checks of one frame; keeps running extremes."""

    def __init__(self, system: ParameterizedSystem, start: np.ndarray, limits: MDLimitSettings):
        self.limits = limits
        self.bonds = np.asarray(system.topology.bonds, dtype=np.int64).reshape(-1, 2)
        self.r0 = _lengths(start, self.bonds)
        self.limit = np.minimum(limits.max_bond_ratio * self.r0,
                                np.maximum(limits.max_bond_length_a, self.r0 + 0.5))
        self.pairs = np.asarray(system.nonbonded.pairs, dtype=np.int64).reshape(-1, 2)
        self.n_atoms = system.n_atoms
        self.max_deviation = -np.inf
        self.max_ratio = -np.inf
        self.worst_bond: list[int] | None = None
        self.min_pair = np.inf
        self.reference_energy: float | None = None

    def check(self, positions: np.ndarray, energy: float) -> str | None:
        """One-line reason if the frame (positions Angstrom, energy kcal/mol) is broken."""
        if not np.all(np.isfinite(positions)):
            return "non-finite coordinates"
        if not np.isfinite(energy):
            return "non-finite potential energy"
        if len(self.bonds):
            r = _lengths(positions, self.bonds)
            ratio = r / self.r0
            self.max_deviation = max(self.max_deviation, float(np.abs(r - self.r0).max()))
            worst = int(np.argmax(ratio))
            if ratio[worst] > self.max_ratio:
                self.max_ratio = float(ratio[worst])
                self.worst_bond = self.bonds[worst].tolist()
            shortest = self.limits.min_bond_ratio * self.r0
            # how far past its limit each bond is, >1 when broken either way
            excess = np.maximum(r / self.limit, shortest / np.maximum(r, 1e-300))
            b = int(np.argmax(excess))
            if excess[b] > 1.0:
                i, j = self.bonds[b]
                how, limit = (("stretched", self.limit[b]) if r[b] > self.limit[b]
                              else ("compressed", shortest[b]))
                return (f"bond {i}-{j} {how} to {r[b]:.3g} A ({ratio[b]:.3g} x its start "
                        f"length {self.r0[b]:.2f} A; limit {limit:.2f} A)")
        if len(self.pairs):
            d = _lengths(positions, self.pairs)
            k = int(np.argmin(d))
            self.min_pair = min(self.min_pair, float(d[k]))
            if d[k] < self.limits.min_pair_distance_a:
                i, j = self.pairs[k]
                return (f"nonbonded atoms {i} and {j} collapsed to {d[k]:.2f} A "
                        f"(limit {self.limits.min_pair_distance_a} A)")
        if self.reference_energy is not None:
            window = self.limits.energy_window_kcal_mol_per_atom * self.n_atoms
            shift = energy - self.reference_energy
            if abs(shift) > window:
                side = "above" if shift > 0 else "below"
                return (f"potential energy {abs(shift):.3g} kcal/mol {side} the minimized "
                        f"energy (window {window:.0f} kcal/mol)")
        return None


def _lengths(positions: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=-1)


def start_positions(system: ParameterizedSystem, molecule: Molecule | None, seed: int
                    ) -> np.ndarray:
    """(n_atoms, 3) Angstrom: the first conformer of ``molecule``, else of the system's
    molecule, else a new ETKDG/MMFF94 conformer."""
    for mol in (molecule, system.molecule):
        if mol is not None and mol.n_conformers:
            return np.asarray(mol.conformers[0], dtype=np.float64)
    return system.molecule.generate_conformers(1, seed=seed).conformers[0]


def md_stability(system: ParameterizedSystem, molecule: Molecule | None = None,
                 length_ps: float = 100.0, temperature_k: float = 300.0,
                 timestep_fs: float = 1.0, seed: int = VALIDATION_SEED,
                 friction_per_ps: float = 1.0, report_interval_ps: float = 0.1,
                 platform: str = "CPU", threads: int | None = 1, minimize: bool = True,
                 limits: MDLimitSettings | None = None, positions: np.ndarray | None = None,
                 progress: bool = False) -> MDValidation:
    """Run gas-phase Langevin MD of ``system`` and say whether it stayed intact.

    Args:
        system: the parameterized molecule.
        molecule: supplies the start geometry (first conformer) when ``positions`` is None.
        length_ps: simulated time, ps; temperature_k: K; timestep_fs: fs;
        friction_per_ps: Langevin collision rate, 1/ps.
        seed: seeds the velocities and the integrator's random forces (0 is mapped to 1,
            because OpenMM reads 0 as "pick a random seed").
        report_interval_ps: how often the checks run, ps.
        platform: OpenMM platform (``CPU`` falls back to ``Reference`` if unavailable);
            threads: CPU threads (None: OpenMM's default).
        minimize: energy-minimize (OpenMM LocalEnergyMinimizer) before the dynamics.
        limits: thresholds, see :class:`MDLimitSettings`.
        positions: (n_atoms, 3) Angstrom start geometry.
        progress: show a progress bar (stderr).
    """
    import openmm

    limits = limits or MDLimitSettings()
    seed = int(seed) % 2**31 or 1
    t_start = time.perf_counter()
    start = _start_geometry(system, molecule, positions, seed)
    result = MDValidation(False, None, None, float(length_ps), 0.0, float(temperature_k),
                          float(timestep_fs), float(friction_per_ps), seed, platform,
                          limits=limits)
    run = _Run(result, _Monitor(system, start, limits), t_start)
    try:
        context, integrator, result.platform = _simulation(
            system, temperature_k, friction_per_ps, timestep_fs, seed, platform, threads)
    except (FFParamError, openmm.OpenMMException) as exc:
        return _stop(run, _first_line(exc))
    context.setPositions(start * NM_PER_ANGSTROM)
    try:
        if minimize:
            run.stage = "minimization"
            openmm.LocalEnergyMinimizer.minimize(context, 1.0, 2000)
        return _dynamics(context, integrator, run, report_interval_ps, progress)
    except openmm.OpenMMException as exc:
        where = ""
        if run.stage == "md":
            run.md_time = time.perf_counter() - run.t_md
            where = f" at t <= {result.simulated_ps + report_interval_ps:g} ps"
        return _stop(run, f"OpenMM: {_first_line(exc)}{where}")
    finally:
        del context


@dataclass
class _Run:
    """What one md_stability call has gathered so far."""

    result: MDValidation
    monitor: _Monitor
    t_start: float
    stage: str = "setup"
    energies: list[float] = field(default_factory=list)
    kinetic: list[float] = field(default_factory=list)
    t_md: float = 0.0
    md_time: float = 0.0


def _start_geometry(system: ParameterizedSystem, molecule: Molecule | None,
                    positions: np.ndarray | None, seed: int) -> np.ndarray:
    """(n_atoms, 3) Angstrom start geometry, shape-checked (InputError)."""
    start = np.asarray(positions if positions is not None
                       else start_positions(system, molecule, seed), dtype=np.float64)
    if start.shape not in ((system.n_atoms, 3), (1, system.n_atoms, 3)):
        raise InputError(f"MD start positions must have shape ({system.n_atoms}, 3), got "
                         f"{start.shape}")
    return start.reshape(system.n_atoms, 3)


def _simulation(system: ParameterizedSystem, temperature_k: float, friction_per_ps: float,
                timestep_fs: float, seed: int, platform: str, threads: int | None):
    """OpenMM context, Langevin integrator and the platform name used."""
    import openmm
    from openmm import unit

    from ffparam.mm import to_openmm

    omm_system = to_openmm(system)
    integrator = openmm.LangevinMiddleIntegrator(
        temperature_k * unit.kelvin, friction_per_ps / unit.picosecond,
        timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    context, name = _context(omm_system, integrator, platform, threads)
    return context, integrator, name


def _dynamics(context, integrator, run: _Run, report_interval_ps: float,
              progress: bool) -> MDValidation:
    """Check the (minimized) start, then integrate in report intervals, checking each."""
    from openmm import unit

    result = run.result
    run.stage = "minimization"
    pos, energy, _ = _state(context)
    reason = run.monitor.check(pos, energy)
    if reason:
        return _stop(run, reason)
    result.minimized_energy_kcal_mol = energy
    run.monitor.reference_energy = energy
    run.stage = "md"
    context.setVelocitiesToTemperature(result.temperature_k * unit.kelvin, result.seed)
    steps_per_report = max(1, round(report_interval_ps * 1000.0 / result.timestep_fs))
    n_steps = max(1, round(result.length_ps * 1000.0 / result.timestep_fs))
    run.t_md = time.perf_counter()
    done = 0
    with progress_task(progress, "MD (ps)", round(result.length_ps, 3)) as (bar, task):
        while done < n_steps:
            chunk = min(steps_per_report, n_steps - done)
            integrator.step(chunk)
            done += chunk
            result.simulated_ps = done * result.timestep_fs / 1000.0
            bar.update(task, completed=result.simulated_ps)
            pos, energy, ke = _state(context)
            reason = run.monitor.check(pos, energy)
            if reason:
                run.md_time = time.perf_counter() - run.t_md
                return _stop(run, f"{reason} at t = {result.simulated_ps:g} ps")
            run.energies.append(energy)
            run.kinetic.append(ke)
    run.md_time = time.perf_counter() - run.t_md
    result.stable = True
    return _finish(run)


def _context(omm_system, integrator, platform: str, threads: int | None):
    import openmm

    names = [openmm.Platform.getPlatform(i).getName()
             for i in range(openmm.Platform.getNumPlatforms())]
    name = platform if platform in names else "Reference"
    properties = {"Threads": str(threads)} if name == "CPU" and threads else {}
    chosen = openmm.Platform.getPlatformByName(name)
    return openmm.Context(omm_system, integrator, chosen, properties), name


def _state(context) -> tuple[np.ndarray, float, float]:
    """Positions (n_atoms, 3) Angstrom, potential and kinetic energy kcal/mol."""
    from openmm import unit

    state = context.getState(getPositions=True, getEnergy=True)
    pos = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    pe = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) * KCAL_PER_KJ
    ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole) * KCAL_PER_KJ
    return pos * ANGSTROM_PER_NM, float(pe), float(ke)


def _stop(run: _Run, reason: str) -> MDValidation:
    run.result.stable = False
    run.result.stage = run.stage
    run.result.reason = reason
    return _finish(run)


def _finish(run: _Run) -> MDValidation:
    result, monitor = run.result, run.monitor
    e = np.array([x for x in run.energies if np.isfinite(x)])
    ke = np.array([x for x in run.kinetic if np.isfinite(x)])
    result.n_frames = len(e)
    if len(e):
        result.potential_energy_mean_kcal_mol = float(e.mean())
        result.potential_energy_std_kcal_mol = float(e.std())
        if result.minimized_energy_kcal_mol is not None:
            result.potential_energy_rise_kcal_mol = float(e.mean()
                                                          - result.minimized_energy_kcal_mol)
    if len(ke) and monitor.n_atoms:
        result.mean_temperature_k = float(2.0 * ke.mean()
                                          / (3 * monitor.n_atoms * BOLTZMANN_KCAL_MOL_K))
    result.max_bond_deviation_a = finite_or_none(monitor.max_deviation)
    result.max_bond_ratio = finite_or_none(monitor.max_ratio)
    result.worst_bond = monitor.worst_bond
    result.min_pair_distance_a = finite_or_none(monitor.min_pair)
    result.wall_time_s = time.perf_counter() - run.t_start
    result.md_wall_time_s = run.md_time
    if run.md_time > 0 and result.simulated_ps > 0:
        result.ns_per_day = result.simulated_ps / 1000.0 / (run.md_time / 86400.0)
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
