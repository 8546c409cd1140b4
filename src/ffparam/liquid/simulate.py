"""Resumable OpenMM runs of one phase (liquid box in NPT, or one gas-phase molecule).

A run directory holds

* ``progress.json`` — stage (``equilibration``, ``production``, ``done``), steps done,
  production chunks written, wall time, and a fingerprint of the System and the
  thermodynamic state (a directory holding another simulation is refused);
* ``state.xml`` — the OpenMM State (positions, velocities, box) at the last checkpoint;
* ``frames_00000.npz``, ... — one file per production chunk: potential energies
  (kcal/mol), box edges (Angstrom), positions (float32 Angstrom, molecules whole), steps.

A checkpoint writes the chunk, then the new state as ``state.xml.next``, then the progress
file (with the SHA-256 of that state), then the new state as ``state.xml`` (and drops the
``.next`` file); each write is atomic (:mod:`ffparam.io.atomic`). A run killed at any
moment continues from its last checkpoint, the one the progress file counts: frames it
does not count are overwritten, and a ``state.xml.next`` it does not name is discarded
(one it names becomes ``state.xml``), so the state always belongs to the counted
checkpoint. Equilibration is
checkpointed the same way (without frames). After every checkpoint the run continues as a
resumed run would: from the state just written, read back, with the Langevin and barostat
random streams restarted from ``settings.seed`` plus the checkpoint number. A killed and
resumed run therefore makes the same trajectory as an uninterrupted one, bit for bit on a
deterministic platform (Reference; CPU with a fixed thread count).

A NaN or infinite energy or coordinate (or OpenMM's own NaN exception) stops the run with
:class:`~ffparam.errors.NonFiniteError`; the frames of the failing chunk are never written,
``failed.json`` records the reason, and no result is produced from the run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import openmm
from openmm import unit

from ffparam.errors import InputError, NonFiniteError
from ffparam.io.atomic import atomic_output, write_text_atomic
from ffparam.liquid.settings import LiquidSettings
from ffparam.units import ANGSTROM_PER_NM, KCAL_PER_KJ, NM_PER_ANGSTROM

if TYPE_CHECKING:
    from ffparam.liquid.drude import DrudeDynamicsSettings

PROGRESS_FILE = "progress.json"
STATE_FILE = "state.xml"
FAILED_FILE = "failed.json"
NEXT_SUFFIX = ".next"


@dataclass
class PhaseTrajectory:
    """Saved production frames of one phase.

    Attributes:
        energies: (n_frames,) potential energy, kcal/mol.
        box_lengths: (n_frames, 3) box edges, Angstrom (None for the gas phase).
        positions: (n_frames, n_atoms, 3) float32 Angstrom.
        steps: (n_frames,) integration step of each frame (from the production start).
        save_interval_ps: time between frames.
        ns_per_day: production speed (simulated ns per wall-clock day).
    """

    energies: np.ndarray
    box_lengths: np.ndarray | None
    positions: np.ndarray
    steps: np.ndarray
    save_interval_ps: float
    ns_per_day: float

    def __len__(self) -> int:
        return len(self.energies)

    @property
    def volumes(self) -> np.ndarray:
        """(n_frames,) box volume, Angstrom^3."""
        if self.box_lengths is None:
            raise InputError("a gas-phase trajectory has no volume")
        return np.prod(self.box_lengths, axis=1)


@dataclass
class PhaseSpec:
    """What one phase simulates.

    Attributes:
        system: the OpenMM System (no barostat; added here for ``pressure_atm``).
        positions: (n_atoms, 3) start positions, Angstrom.
        box_length_a: cubic box edge (None for the gas phase).
        temperature_k: K; pressure_atm: atm (None: NVT, the gas phase).
        equilibration_ps, production_ps, save_interval_ps: lengths, ps.
        label: for messages (``methanol liquid``).
        drude: for a System with Drude particles, the dual-thermostat integrator's
            settings (:class:`ffparam.liquid.drude.DrudeDynamicsSettings`); None: the
            Langevin middle integrator.
    """

    system: openmm.System
    positions: np.ndarray
    box_length_a: float | None
    temperature_k: float
    pressure_atm: float | None
    equilibration_ps: float
    production_ps: float
    save_interval_ps: float
    label: str
    drude: DrudeDynamicsSettings | None = None


def fingerprint(spec: PhaseSpec, settings: LiquidSettings) -> str:
    """SHA-256 of the System XML and the thermodynamic state / integration settings
    (not the run lengths, so a finished run can be extended)."""
    digest = hashlib.sha256(openmm.XmlSerializer.serialize(spec.system).encode())
    fields = {
        "temperature_k": spec.temperature_k, "pressure_atm": spec.pressure_atm,
        "timestep_fs": settings.timestep_fs, "friction": settings.friction_per_ps,
        "save_interval_ps": spec.save_interval_ps, "barostat": settings.barostat_interval,
        "seed": settings.seed, "n_atoms": spec.system.getNumParticles(),
    }
    if spec.drude is not None:  # only then: runs without Drudes keep their fingerprint
        fields["drude"] = spec.drude.to_dict()
    digest.update(json.dumps(fields, sort_keys=True).encode())
    return digest.hexdigest()


def run_phase(directory: str | Path, spec: PhaseSpec, settings: LiquidSettings,
              progress: Callable[[str, float, float], None] | None = None) -> PhaseTrajectory:
    """Minimize, equilibrate and produce ``spec`` in ``directory``, resuming from its last
    checkpoint; returns the production frames.

    Args:
        directory: run directory (created).
        spec: the phase.
        settings: integration, checkpoint and platform settings.
        progress: called as ``progress(stage, done_ps, total_ps)`` after each checkpoint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = fingerprint(spec, settings)
    state = _read_progress(directory, key, spec.label)
    save_steps = settings.steps(spec.save_interval_ps)
    chunk_frames = max(1, round(settings.checkpoint_interval_ps / spec.save_interval_ps))
    eq_steps = settings.steps(spec.equilibration_ps)
    n_frames_total = round(spec.production_ps / spec.save_interval_ps)
    if state["stage"] == "done" and state["frames"] >= n_frames_total:
        return load_trajectory(directory, spec.save_interval_ps, n_frames_total)
    if (directory / STATE_FILE).exists():
        context, integrator = _restart(spec, settings, state, (directory / STATE_FILE).read_text())
    else:
        context, integrator = _make_context(spec, settings, state["checkpoints"])
    try:
        if not (directory / STATE_FILE).exists():
            _minimize(context, spec, settings)
            write_text_atomic(directory / STATE_FILE, _serialize_state(context))
        while state["equilibration_steps"] < eq_steps:
            todo = min(eq_steps - state["equilibration_steps"], chunk_frames * save_steps)
            _step(integrator, context, todo, spec.label)
            _check_state(context, spec.label, "equilibration")
            state["equilibration_steps"] += todo
            text = _checkpoint(directory, context, state, settings)
            context, integrator = _restart(spec, settings, state, text)
            if progress:
                progress("equilibration", state["equilibration_steps"] * settings.timestep_fs
                         / 1000.0, spec.equilibration_ps)
        state["stage"] = "production"
        while state["frames"] < n_frames_total:
            n_chunk = min(chunk_frames, n_frames_total - state["frames"])
            start = time.perf_counter()
            frames = _produce_chunk(
                lambda i=integrator, c=context: _step(i, c, save_steps, spec.label),
                lambda c=context: c,
                n_chunk, save_steps, state["frames"] * save_steps, spec, settings.timestep_fs)
            state["production_wall_s"] += time.perf_counter() - start
            _write_chunk(directory / f"frames_{state['chunks']:05d}.npz", frames)
            state["chunks"] += 1
            state["frames"] += n_chunk
            text = _checkpoint(directory, context, state, settings)
            context, integrator = _restart(spec, settings, state, text)
            if progress:
                progress("production", state["frames"] * spec.save_interval_ps,
                         spec.production_ps)
        _finish(directory, state)
    except NonFiniteError as exc:
        _record_failure(directory, exc)
        raise
    finally:
        del context, integrator
    return load_trajectory(directory, spec.save_interval_ps, n_frames_total)


def load_trajectory(directory: str | Path, save_interval_ps: float,
                    n_frames: int | None = None) -> PhaseTrajectory:
    """The production frames the progress file counts (the first ``n_frames``)."""
    directory = Path(directory)
    state = json.loads((directory / PROGRESS_FILE).read_text())
    parts = []
    for k in range(state["chunks"]):
        with np.load(directory / f"frames_{k:05d}.npz") as data:
            parts.append({name: data[name] for name in data.files})
    if not parts:
        raise InputError(f"{directory} holds no production frames yet")
    merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    count = state["frames"] if n_frames is None else min(n_frames, state["frames"])
    wall = state["production_wall_s"]
    steps_run = state["frames"] * round(save_interval_ps * 1000.0 / state["timestep_fs"])
    ns_per_day = (steps_run * state["timestep_fs"] * 1e-6) / wall * 86400.0 if wall > 0 else 0.0
    box = merged.get("box_lengths")
    return PhaseTrajectory(
        energies=merged["energies"][:count],
        box_lengths=None if box is None or box.size == 0 else box[:count],
        positions=merged["positions"][:count],
        steps=merged["steps"][:count],
        save_interval_ps=save_interval_ps,
        ns_per_day=ns_per_day,
    )


# ---------------------------------------------------------------------- internals
def _read_progress(directory: Path, key: str, label: str, state_file: str = STATE_FILE,
                   fresh: dict | None = None) -> dict:
    """The progress of the run in ``directory`` (refused if its fingerprint is not
    ``key``), or a fresh one (``fresh`` adds fields) after removing stale frames and
    ``state_file``."""
    path = directory / PROGRESS_FILE
    if not path.exists():
        for stale in directory.glob("frames_*.npz"):
            stale.unlink()
        (directory / state_file).unlink(missing_ok=True)
        (directory / (state_file + NEXT_SUFFIX)).unlink(missing_ok=True)
        return {"stage": "equilibration", "fingerprint": key, "equilibration_steps": 0,
                "frames": 0, "chunks": 0, "checkpoints": 0, "production_wall_s": 0.0,
                "timestep_fs": None, **(fresh or {})}
    state = json.loads(path.read_text())
    if state.get("fingerprint") != key:
        raise InputError(f"{directory} holds a different simulation than {label} "
                         "(other system, temperature, pressure or settings); use a new "
                         "output directory")
    (directory / FAILED_FILE).unlink(missing_ok=True)
    _settle_state_file(directory, state_file, state)
    return state


def _settle_state_file(directory: Path, state_file: str, state: dict) -> None:
    """Finish or undo a checkpoint killed between its state and progress writes: the
    ``.next`` state becomes ``state_file`` if the progress file names its hash, else it
    is dropped (the progress file then names the current ``state_file``)."""
    pending = directory / (state_file + NEXT_SUFFIX)
    if not pending.exists():
        return
    text = pending.read_bytes()
    if _sha256(text) == state.get("state_sha256"):
        write_text_atomic(directory / state_file, text.decode())
    pending.unlink()


def _restart(spec: PhaseSpec, settings: LiquidSettings, state: dict, state_text: str):
    """The context a run resumed at the checkpoint ``state`` counts starts from: the
    saved OpenMM state with random streams seeded by the checkpoint number. An
    uninterrupted run passes through it at every checkpoint too, so a killed and resumed
    run reproduces the uninterrupted trajectory (on a deterministic platform)."""
    context, integrator = _make_context(spec, settings, state["checkpoints"])
    context.setState(openmm.XmlSerializer.deserialize(state_text))
    return context, integrator


def _make_context(spec: PhaseSpec, settings: LiquidSettings, checkpoint: int):
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(spec.system))
    temperature = spec.temperature_k * unit.kelvin
    if spec.pressure_atm is not None:
        barostat = openmm.MonteCarloBarostat(spec.pressure_atm * unit.atmosphere, temperature,
                                             settings.barostat_interval)
        barostat.setRandomNumberSeed(settings.seed + 7919 * (checkpoint + 1))
        system.addForce(barostat)
    if spec.drude is not None:
        integrator = spec.drude.integrator(spec.temperature_k, settings)
    else:
        integrator = openmm.LangevinMiddleIntegrator(
            temperature, settings.friction_per_ps / unit.picosecond,
            settings.timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(settings.seed + checkpoint + 1)
    integrator.setConstraintTolerance(1e-6)
    platform = openmm.Platform.getPlatformByName(settings.platform)
    properties = {}
    if settings.platform == "CPU":
        # same forces bit for bit on every evaluation (else the summation order varies):
        # a killed and resumed run then reproduces the uninterrupted trajectory
        properties["DeterministicForces"] = "true"
        if settings.threads:
            properties["Threads"] = str(settings.threads)
    context = openmm.Context(system, integrator, platform, properties)
    if spec.box_length_a is not None:
        edge = spec.box_length_a * NM_PER_ANGSTROM
        context.setPeriodicBoxVectors(openmm.Vec3(edge, 0, 0), openmm.Vec3(0, edge, 0),
                                      openmm.Vec3(0, 0, edge))
    context.setPositions(np.asarray(spec.positions) * NM_PER_ANGSTROM)
    return context, integrator


def _minimize(context: openmm.Context, spec: PhaseSpec, settings: LiquidSettings) -> None:
    try:
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, settings.max_minimize_iterations)
    except openmm.OpenMMException as exc:
        raise NonFiniteError(f"{spec.label}: energy minimization failed: "
                             f"{str(exc).splitlines()[0]}") from None
    _check_state(context, spec.label, "minimization")
    context.setVelocitiesToTemperature(spec.temperature_k * unit.kelvin, settings.seed)


def _step(integrator: openmm.Integrator, context: openmm.Context, n_steps: int,
          label: str) -> None:
    try:
        integrator.step(n_steps)
    except openmm.OpenMMException as exc:
        raise NonFiniteError(f"{label}: OpenMM stopped the simulation: "
                             f"{str(exc).splitlines()[0]}") from None


def _check_state(context: openmm.Context, label: str, stage: str) -> openmm.State:
    state = context.getState(getEnergy=True, getPositions=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    if not np.isfinite(energy) or not np.all(np.isfinite(
            state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))):
        raise NonFiniteError(f"{label}: the {stage} produced a NaN/infinite energy or "
                             "coordinate; stopped, nothing stored")
    return state


def _produce_chunk(advance: Callable[[], None], current: Callable[[], openmm.Context],
                   n_frames: int, save_steps: int, first_step: int, spec: PhaseSpec,
                   timestep_fs: float) -> dict[str, np.ndarray]:
    """``n_frames`` production frames: ``advance()`` runs ``save_steps`` steps, then the
    frame is read from ``current()`` (the one context, or the replica at T_0)."""
    n_atoms = spec.system.getNumParticles()
    energies = np.zeros(n_frames)
    positions = np.zeros((n_frames, n_atoms, 3), dtype=np.float32)
    boxes = np.zeros((n_frames, 3)) if spec.box_length_a is not None else np.zeros((0, 3))
    steps = np.zeros(n_frames, dtype=np.int64)
    for k in range(n_frames):
        advance()
        state = current().getState(getEnergy=True, getPositions=True,
                                   enforcePeriodicBox=False)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        xyz = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if not np.isfinite(energy) or not np.all(np.isfinite(xyz)):
            ps = (first_step + (k + 1) * save_steps) * timestep_fs / 1000.0
            raise NonFiniteError(f"{spec.label}: NaN/infinite energy or coordinate at "
                                 f"{ps:.1f} ps of production; stopped, nothing stored")
        energies[k] = energy * KCAL_PER_KJ
        positions[k] = xyz * ANGSTROM_PER_NM
        if spec.box_length_a is not None:
            a, b, c = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            boxes[k] = np.array([a[0], b[1], c[2]]) * ANGSTROM_PER_NM
        steps[k] = first_step + (k + 1) * save_steps
    return {"energies": energies, "positions": positions, "box_lengths": boxes,
            "steps": steps}


def _checkpoint(directory: Path, context, state: dict, settings: LiquidSettings,
                state_file: str = STATE_FILE, state_text: str | None = None) -> str:
    """Write the OpenMM state (``state_text``, else ``context``'s) to ``state_file`` and
    count the checkpoint in the progress file, as one step for a killed process (see the
    module docstring); returns the state text."""
    text = _serialize_state(context) if state_text is None else state_text
    pending = directory / (state_file + NEXT_SUFFIX)
    write_text_atomic(pending, text)
    state["checkpoints"] += 1
    state["timestep_fs"] = settings.timestep_fs
    state["state_sha256"] = _sha256(text.encode())
    write_text_atomic(directory / PROGRESS_FILE, json.dumps(state, indent=1))
    write_text_atomic(directory / state_file, text)
    pending.unlink()
    return text


def _finish(directory: Path, state: dict) -> None:
    """Mark the run in ``directory`` done in its progress file."""
    state["stage"] = "done"
    write_text_atomic(directory / PROGRESS_FILE, json.dumps(state, indent=1))


def _record_failure(directory: Path, exc: NonFiniteError) -> None:
    """Write why the run stopped (``failed.json``; removed when the run is resumed)."""
    write_text_atomic(directory / FAILED_FILE, json.dumps({"error": str(exc)}))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serialize_state(context: openmm.Context) -> str:
    return openmm.XmlSerializer.serialize(
        context.getState(getPositions=True, getVelocities=True, enforcePeriodicBox=False))


def _write_chunk(path: Path, frames: dict[str, np.ndarray]) -> None:
    with atomic_output(path) as tmp:
        np.savez(tmp, **frames)
