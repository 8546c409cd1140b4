"""Replica exchange over temperatures (parallel tempering) for the one-molecule gas phase.

Why: <E_pot,gas> in Hvap is an average over the molecule's conformers, and a torsion with
a barrier of ~5 kcal/mol crosses only every few ns at 298 K. In plain Langevin dynamics
1,2-dichloroethane (Sage) switched between trans and gauche 11-21 times in 25 ns and its
gauche fraction over 2.5-ns blocks ranged from 0.00 to 0.93; three 25-ns runs gave
<E_gas> 5.44, 5.07 and 5.08 kcal/mol, a spread three times the stated error. Tempering
makes such a run ergodic at a cost of K times the plain run, which for one molecule
without cutoff is small next to the liquid box.

K replicas of the same System run Langevin dynamics at a geometric ladder
T_k = T_0 (T_max / T_0)^(k / (K - 1)). After every saved interval, neighbouring pairs
(even pairs and odd pairs on alternate attempts) exchange temperatures with probability

    min(1, exp[(beta_i - beta_j) (U_i - U_j)]),

which keeps the product of the K canonical ensembles invariant (detailed balance); the
replica that takes a new temperature has its velocities scaled by sqrt(T_new / T_old)
(Sugita & Okamoto, Chem. Phys. Lett. 1999). Only configurations at T_0 are saved, in the
chunk format of :mod:`ffparam.liquid.simulate`, so everything downstream (frame sums,
equilibration detection, errors, reweighting) reads them unchanged. Consecutive saved
frames can come from different replicas; the statistical inefficiency of the T_0 series
accounts for that.

Resume: ``replicas.xml`` holds every replica's positions and velocities, ``progress.json``
the stage, frame counts, the replica-to-temperature assignment and the exchange
statistics; a killed run continues from its last checkpoint, and an uninterrupted run
restarts its contexts from each checkpoint the same way (random streams seeded by the
checkpoint number), so a resumed run reproduces the uninterrupted one, as
:func:`~ffparam.liquid.simulate.run_phase` does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import openmm
from openmm import unit

from ffparam.errors import InputError, NonFiniteError
from ffparam.io.atomic import write_text_atomic
from ffparam.liquid.settings import LiquidSettings
from ffparam.liquid.simulate import (
    PROGRESS_FILE,
    PhaseSpec,
    PhaseTrajectory,
    _check_state,
    _finish,
    _make_context,
    _minimize,
    _produce_chunk,
    _read_progress,
    _record_failure,
    _step,
    _write_chunk,
    fingerprint,
    load_trajectory,
)
from ffparam.liquid.simulate import _checkpoint as _simulate_checkpoint
from ffparam.units import GAS_CONSTANT_KCAL_MOL_K, KCAL_PER_KJ

REPLICAS_FILE = "replicas.xml"


def temperature_ladder(t_min_k: float, t_max_k: float, n_replicas: int) -> np.ndarray:
    """Geometric ladder of ``n_replicas`` temperatures from ``t_min_k`` to ``t_max_k`` (K)."""
    if n_replicas < 1:
        raise InputError(f"tempering needs at least one replica, got {n_replicas}")
    if n_replicas == 1:
        return np.array([float(t_min_k)])
    if not t_max_k > t_min_k:
        raise InputError(f"the highest tempering temperature {t_max_k} K must exceed the "
                         f"simulation temperature {t_min_k} K")
    return t_min_k * (t_max_k / t_min_k) ** (np.arange(n_replicas) / (n_replicas - 1))


def exchange_probability(temperature_i_k: float, temperature_j_k: float,
                         energy_i_kcal: float, energy_j_kcal: float) -> float:
    """Metropolis probability of swapping the temperatures of two replicas with potential
    energies U_i (now at T_i) and U_j (now at T_j), kcal/mol:
    min(1, exp[(beta_i - beta_j)(U_i - U_j)])."""
    beta_i = 1.0 / (GAS_CONSTANT_KCAL_MOL_K * temperature_i_k)
    beta_j = 1.0 / (GAS_CONSTANT_KCAL_MOL_K * temperature_j_k)
    exponent = (beta_i - beta_j) * (energy_i_kcal - energy_j_kcal)
    return 1.0 if exponent >= 0 else math.exp(exponent)


def _key(spec: PhaseSpec, settings: LiquidSettings, temperatures_k: np.ndarray) -> str:
    digest = hashlib.sha256(fingerprint(spec, settings).encode())
    digest.update(json.dumps([round(float(t), 6) for t in temperatures_k]).encode())
    return digest.hexdigest()


def run_tempering(directory: str | Path, spec: PhaseSpec, settings: LiquidSettings,
                  temperatures_k: Sequence[float],
                  progress: Callable[[str, float, float], None] | None = None
                  ) -> PhaseTrajectory:
    """Replica-exchange run of the gas-phase ``spec`` (no box, no barostat) at the ladder
    ``temperatures_k`` (K; the first is ``spec.temperature_k``), resuming from its last
    checkpoint; returns the frames at ``spec.temperature_k``.

    Equilibration and production lengths are per replica (ps of dynamics at each
    temperature). ``progress(stage, done_ps, total_ps)`` is called after each checkpoint.
    """
    temps = np.asarray(temperatures_k, dtype=float)
    _check_ladder(spec, temps)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = _read_state(directory, _key(spec, settings, temps), spec.label, temps)
    n_frames_total = round(spec.production_ps / spec.save_interval_ps)
    if state["stage"] == "done" and state["frames"] >= n_frames_total:
        return load_trajectory(directory, spec.save_interval_ps, n_frames_total)
    run = _Ladder(directory, spec, settings, temps, state)
    try:
        run.start()
        run.equilibrate(progress)
        run.produce(n_frames_total, progress)
        _finish(directory, state)
    except NonFiniteError as exc:
        _record_failure(directory, exc)
        raise
    finally:
        run.replicas.clear()
    return load_trajectory(directory, spec.save_interval_ps, n_frames_total)


def _check_ladder(spec: PhaseSpec, temps: np.ndarray) -> None:
    if spec.box_length_a is not None or spec.pressure_atm is not None:
        raise InputError("tempering is implemented for the gas phase (no box, no barostat)")
    if not math.isclose(temps[0], spec.temperature_k):
        raise InputError(f"the ladder starts at {temps[0]} K, the phase at "
                         f"{spec.temperature_k} K")
    if np.any(np.diff(temps) <= 0):
        raise InputError("tempering temperatures must increase")


class _Ladder:
    """The replicas of one tempering run between checkpoints (contexts, the replica to
    temperature assignment ``order`` and the exchange generator), restarted from every
    checkpoint as a resumed run would be."""

    def __init__(self, directory: Path, spec: PhaseSpec, settings: LiquidSettings,
                 temps: np.ndarray, state: dict) -> None:
        self.directory, self.spec, self.settings = directory, spec, settings
        self.temps, self.state = temps, state
        # order[r]: ladder index replica r runs at now
        self.order = list(state["temperature_of"])
        self.save_steps = settings.steps(spec.save_interval_ps)
        self.chunk_frames = max(1, round(settings.checkpoint_interval_ps
                                         / spec.save_interval_ps))
        saved = directory / REPLICAS_FILE
        self.replicas, self.rng = _restart(spec, settings, temps, state,
                                           saved.read_text() if saved.exists() else None)

    def start(self) -> None:
        """Minimize and thermalize new replicas (a resumed run has saved ones)."""
        saved = self.directory / REPLICAS_FILE
        if saved.exists():
            return
        for context, _ in self.replicas:
            _minimize(context, self.spec, self.settings)
        for r, (context, _) in enumerate(self.replicas):
            context.setVelocitiesToTemperature(self.temps[r] * unit.kelvin,
                                               self.settings.seed + r)
        write_text_atomic(saved, _serialize_all(self.replicas))

    def sweep(self, n_steps: int) -> None:
        """``n_steps`` of every replica, then one exchange attempt."""
        for context, integrator in self.replicas:
            _step(integrator, context, n_steps, self.spec.label)
        _exchange(self.replicas, self.order, self.temps, self.state, self.rng, self.spec.label)

    def checkpoint(self) -> None:
        text = _checkpoint(self.directory, self.replicas, self.order, self.state, self.settings)
        self.replicas, self.rng = _restart(self.spec, self.settings, self.temps, self.state,
                                           text)

    def equilibrate(self, progress: Callable[[str, float, float], None] | None) -> None:
        state, spec = self.state, self.spec
        eq_steps = self.settings.steps(spec.equilibration_ps)
        while state["equilibration_steps"] < eq_steps:
            todo = min(eq_steps - state["equilibration_steps"],
                       self.chunk_frames * self.save_steps)
            done = 0
            while done < todo:
                n = min(self.save_steps, todo - done)
                self.sweep(n)
                done += n
            state["equilibration_steps"] += todo
            self.checkpoint()
            if progress:
                progress("equilibration", state["equilibration_steps"]
                         * self.settings.timestep_fs / 1000.0, spec.equilibration_ps)
        state["stage"] = "production"

    def produce(self, n_frames_total: int,
                progress: Callable[[str, float, float], None] | None) -> None:
        state, spec = self.state, self.spec
        while state["frames"] < n_frames_total:
            n_chunk = min(self.chunk_frames, n_frames_total - state["frames"])
            start = time.perf_counter()
            frames = _produce_chunk(lambda: self.sweep(self.save_steps),
                                    lambda: self.replicas[self.order.index(0)][0], n_chunk,
                                    self.save_steps, state["frames"] * self.save_steps, spec,
                                    self.settings.timestep_fs)
            state["production_wall_s"] += time.perf_counter() - start
            _write_chunk(self.directory / f"frames_{state['chunks']:05d}.npz", frames)
            state["chunks"] += 1
            state["frames"] += n_chunk
            self.checkpoint()
            if progress:
                progress("production", state["frames"] * spec.save_interval_ps,
                         spec.production_ps)


def exchange_statistics(directory: str | Path) -> dict[str, list[float]]:
    """Per neighbouring pair of the ladder: attempts, acceptances and acceptance rate."""
    state = json.loads((Path(directory) / PROGRESS_FILE).read_text())
    attempts = np.array(state["exchange_attempts"], dtype=float)
    accepted = np.array(state["exchange_accepted"], dtype=float)
    rate = np.divide(accepted, attempts, out=np.zeros_like(accepted), where=attempts > 0)
    return {"temperatures_k": state["temperatures_k"], "attempts": attempts.tolist(),
            "accepted": accepted.tolist(), "acceptance": rate.tolist()}


# ---------------------------------------------------------------------- internals
def _exchange(replicas, order: list[int], temps: np.ndarray, state: dict,
              rng: np.random.Generator, label: str) -> None:
    """One exchange attempt on even or odd neighbouring pairs of the ladder."""
    if len(temps) < 2:
        return
    energies = []
    for context, _ in replicas:
        e = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole) * KCAL_PER_KJ
        if not np.isfinite(e):
            raise NonFiniteError(f"{label}: NaN/infinite energy in a tempering replica; "
                                 "stopped, nothing stored")
        energies.append(e)
    parity = state["exchange_sweeps"] % 2
    state["exchange_sweeps"] += 1
    replica_at = {t: r for r, t in enumerate(order)}
    for low in range(parity, len(temps) - 1, 2):
        a, b = replica_at[low], replica_at[low + 1]
        state["exchange_attempts"][low] += 1
        p = exchange_probability(temps[low], temps[low + 1], energies[a], energies[b])
        if rng.random() < p:
            state["exchange_accepted"][low] += 1
            order[a], order[b] = low + 1, low
            for r, t_old, t_new in ((a, temps[low], temps[low + 1]),
                                    (b, temps[low + 1], temps[low])):
                context, integrator = replicas[r]
                integrator.setTemperature(t_new * unit.kelvin)
                v = context.getState(getVelocities=True).getVelocities(asNumpy=True)
                context.setVelocities(v * math.sqrt(t_new / t_old))
    state["temperature_of"] = list(order)


def _read_state(directory: Path, key: str, label: str, temps: np.ndarray) -> dict:
    n_pairs = max(len(temps) - 1, 0)
    return _read_progress(directory, key, label, REPLICAS_FILE, fresh={
        "temperatures_k": [float(t) for t in temps], "temperature_of": list(range(len(temps))),
        "exchange_sweeps": 0, "exchange_attempts": [0] * n_pairs,
        "exchange_accepted": [0] * n_pairs})


def _checkpoint(directory: Path, replicas, order: list[int], state: dict,
                settings: LiquidSettings) -> str:
    for context, _ in replicas:
        _check_state(context, "tempering replica", "run")
    state["temperature_of"] = list(order)
    return _simulate_checkpoint(directory, None, state, settings, REPLICAS_FILE,
                                _serialize_all(replicas))


def _restart(spec: PhaseSpec, settings: LiquidSettings, temps: np.ndarray, state: dict,
             replicas_text: str | None) -> tuple[list, np.random.Generator]:
    """Replica contexts and exchange generator as a run resumed at the checkpoint
    ``state`` counts starts them (random streams seeded by the checkpoint number, the
    saved states at their current temperatures; new contexts if ``replicas_text`` is
    None). An uninterrupted run restarts this way after every checkpoint as well, so a
    killed and resumed run reproduces it."""
    n_rep = len(temps)
    replicas = [_make_context(dataclasses.replace(spec, temperature_k=float(t)), settings,
                              state["checkpoints"] * n_rep + r)
                for r, t in enumerate(temps)]
    if replicas_text is not None:
        for r, ((context, integrator), saved) in enumerate(
                zip(replicas, _deserialize_all(replicas_text))):
            context.setState(saved)
            integrator.setTemperature(temps[state["temperature_of"][r]] * unit.kelvin)
    rng = np.random.default_rng(settings.seed + 104729 * (state["checkpoints"] + 1))
    return replicas, rng


def _serialize_all(replicas) -> str:
    return json.dumps([openmm.XmlSerializer.serialize(
        context.getState(getPositions=True, getVelocities=True)) for context, _ in replicas])


def _deserialize_all(text: str) -> list:
    return [openmm.XmlSerializer.deserialize(s) for s in json.loads(text)]
