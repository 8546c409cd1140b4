"""Molecular dynamics with an ML potential through ASE, with safety stops and drift checks.

The potential runs as a :class:`~ffparam.ml.energy_model.PotentialEnergyModel` inside the
one ASE calculator, :class:`~ffparam.energy.ase.EnergyModelCalculator` (eV at that edge).

``run_md`` integrates with ASE's Langevin thermostat (NVT) or velocity Verlet (NVE). After
every step it stops the run, with a one-line reason, when

* a force component is not finite or any atom's force exceeds ``max_force`` (eV/Angstrom),
* the model's uncertainty (committee spread or GP sigma) of any force component exceeds
  ``max_force_sigma`` (eV/Angstrom) - the run has left the training data.

For NVE runs the total energy E_tot = E_pot + E_kin is recorded and its drift reported as
the slope of a least-squares line, in eV per atom per picosecond, next to its RMS
fluctuation; ``drift_ok`` compares the drift with ``drift_tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units

from ffparam.energy.ase import EnergyModelCalculator, langevin, thermalize
from ffparam.errors import InputError
from ffparam.ml.energy_model import PotentialEnergyModel
from ffparam.ml.potential import Potential

ENSEMBLES = ("langevin", "nve")


@dataclass
class MDResult:
    """Outcome of an MD run (times ps, energies eV, temperature K)."""

    steps_done: int
    stopped: bool
    reason: str
    ensemble: str
    time_ps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    potential_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    kinetic_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    temperature_k: np.ndarray = field(default_factory=lambda: np.zeros(0))
    drift_ev_per_atom_ps: float = float("nan")
    fluctuation_ev_per_atom: float = float("nan")
    drift_ok: bool | None = None
    max_force_sigma: float = float("nan")
    trajectory: str | None = None

    @property
    def total_energy(self) -> np.ndarray:
        return self.potential_energy + self.kinetic_energy


class _Stop(Exception):
    """Raised inside the MD loop to end a run early (never leaves this module)."""


def run_md(
    potential: Potential,
    atoms,
    steps: int,
    temperature_k: float = 300.0,
    timestep_fs: float = 0.5,
    ensemble: str = "langevin",
    friction_per_fs: float = 0.01,
    trajectory: str | Path | None = None,
    interval: int = 10,
    max_force: float = 20.0,
    max_force_sigma: float | None = 1.0,
    drift_tolerance: float = 1e-3,
    seed: int = 0,
    initialize_velocities: bool = True,
) -> MDResult:
    """Run MD from ``atoms`` (ASE Atoms, Angstrom) with ``potential``.

    Args:
        steps: number of integration steps.
        temperature_k: thermostat and initial Maxwell-Boltzmann temperature (K).
        timestep_fs: integration step (fs).
        ensemble: "langevin" (NVT) or "nve" (velocity Verlet).
        friction_per_fs: Langevin friction (1/fs).
        trajectory: extended XYZ file written every ``interval`` steps (appended as it runs).
        max_force: stop when an atom's force norm exceeds this (eV/Angstrom).
        max_force_sigma: stop when a force component's predicted sigma exceeds this
            (eV/Angstrom); ignored for potentials without uncertainty; None disables.
        drift_tolerance: NVE drift (eV/atom/ps) below which ``drift_ok`` is True.
        seed: seeds the initial velocities and the Langevin noise.
    """
    _check_md_input(ensemble, steps, timestep_fs, temperature_k, interval, seed,
                    friction_per_fs, max_force, max_force_sigma)
    atoms = atoms.copy()
    watch = max_force_sigma is not None and potential.has_uncertainty
    model = PotentialEnergyModel(potential, atoms.numbers, uncertainty=watch,
                                 atom_energies=False)
    atoms.calc = EnergyModelCalculator(model)
    rng = np.random.default_rng(seed)
    if initialize_velocities:
        thermalize(atoms, temperature_k, rng)
    dyn = _integrator(atoms, ensemble, temperature_k, timestep_fs, friction_per_fs, rng)
    if trajectory is not None:
        Path(trajectory).unlink(missing_ok=True)
    observer = _Observer(atoms, dyn, timestep_fs, trajectory, interval, max_force,
                         max_force_sigma if watch else None)
    stopped, reason = False, ""
    try:
        dyn.attach(observer, interval=1)  # ASE calls observers at step 0 too
        dyn.run(steps)
    except _Stop as stop:
        stopped, reason = True, str(stop)
    result = observer.result(stopped, reason, ensemble)
    if ensemble == "nve" and len(result.time_ps) > 2:
        drift, fluct = energy_drift(result.time_ps, result.total_energy, len(atoms))
        result.drift_ev_per_atom_ps, result.fluctuation_ev_per_atom = drift, fluct
        result.drift_ok = abs(drift) <= drift_tolerance
    return result


def _check_md_input(ensemble: str, steps: int, timestep_fs: float, temperature_k: float,
                    interval: int, seed: int, friction_per_fs: float, max_force: float,
                    max_force_sigma: float | None) -> None:
    """One :class:`InputError` for the first bad MD setting."""
    if ensemble not in ENSEMBLES:
        raise InputError(f"unknown ensemble {ensemble!r} (choose {', '.join(ENSEMBLES)})")
    if steps < 1 or timestep_fs <= 0:
        raise InputError("MD needs steps >= 1 and a positive timestep")
    for name, value, low in (
        ("temperature_k", temperature_k, 0),
        ("interval", interval, 1),
        ("seed", seed, 0),
    ):
        if value < low:
            raise InputError(f"MD needs {name} >= {low}, got {value}")
    for name, value in (
        ("friction_per_fs", friction_per_fs),
        ("max_force", max_force),
        ("max_force_sigma", max_force_sigma),
    ):
        if value is not None and not value > 0:
            raise InputError(f"MD needs a positive {name}, got {value}")


def _integrator(atoms, ensemble: str, temperature_k: float, timestep_fs: float,
                friction_per_fs: float, rng: np.random.Generator):
    """ASE Langevin (centre of mass fixed) or velocity-Verlet dynamics of ``atoms``."""
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep_fs * units.fs)
    return langevin(atoms, temperature_k, timestep_fs, friction_per_fs, rng)


class _Observer:
    """Called by ASE after every step: records energies, writes the trajectory and raises
    :class:`_Stop` on non-finite or exploding forces or too high a force sigma."""

    def __init__(self, atoms, dyn, timestep_fs: float, trajectory, interval: int,
                 max_force: float, max_force_sigma: float | None) -> None:
        self.atoms, self.dyn, self.timestep_fs = atoms, dyn, timestep_fs
        self.trajectory, self.interval = trajectory, interval
        self.max_force, self.max_force_sigma = max_force, max_force_sigma
        self.record: dict[str, list] = {"t": [], "epot": [], "ekin": [], "temp": []}
        self.sigma_max = 0.0

    def __call__(self) -> None:
        atoms, step = self.atoms, self.dyn.nsteps
        forces = atoms.calc.results["forces"]
        epot = atoms.calc.results["energy"]
        self.record["t"].append(step * self.timestep_fs / 1000.0)
        self.record["epot"].append(epot)
        self.record["ekin"].append(atoms.get_kinetic_energy())
        self.record["temp"].append(atoms.get_temperature())
        if self.trajectory is not None and step % self.interval == 0:
            from ase.io import write

            write(str(self.trajectory), atoms, format="extxyz", append=True)
        if not np.all(np.isfinite(forces)) or not np.isfinite(epot):
            raise _Stop(f"non-finite energy or forces at step {step}")
        worst = float(np.linalg.norm(forces, axis=1).max())
        if worst > self.max_force:
            raise _Stop(f"forces exploded at step {step}: {worst:.3g} eV/A > "
                        f"max_force {self.max_force:g} eV/A")
        if self.max_force_sigma is not None and "forces_sigma" in atoms.calc.results:
            sigma = float(np.max(atoms.calc.results["forces_sigma"]))
            self.sigma_max = max(self.sigma_max, sigma)
            if sigma > self.max_force_sigma:
                raise _Stop(f"model uncertainty too high at step {step}: force sigma "
                            f"{sigma:.3g} eV/A > {self.max_force_sigma:g} eV/A (committee "
                            "disagrees / outside the training data)")

    def result(self, stopped: bool, reason: str, ensemble: str) -> MDResult:
        return MDResult(
            steps_done=int(self.dyn.nsteps),
            stopped=stopped,
            reason=reason,
            ensemble=ensemble,
            time_ps=np.asarray(self.record["t"]),
            potential_energy=np.asarray(self.record["epot"]),
            kinetic_energy=np.asarray(self.record["ekin"]),
            temperature_k=np.asarray(self.record["temp"]),
            max_force_sigma=self.sigma_max if self.max_force_sigma is not None else float("nan"),
            trajectory=None if self.trajectory is None else str(self.trajectory),
        )


def energy_drift(
    time_ps: np.ndarray, total_energy: np.ndarray, n_atoms: int
) -> tuple[float, float]:
    """Slope of a least-squares line through E_tot(t) (eV/atom/ps) and the RMS residual
    (eV/atom)."""
    slope, intercept = np.polyfit(time_ps, total_energy, 1)
    residual = total_energy - (slope * time_ps + intercept)
    return float(slope / n_atoms), float(np.sqrt(np.mean(residual**2)) / n_atoms)
