"""Metropolis Monte Carlo for molecules: many chains as one batch of the MM engine.

Each step every chain proposes one move (a torsion move with probability
``torsion_fraction``, else a Cartesian move; see :mod:`ffparam.sample.moves`), all chains'
trial energies come from one batched :meth:`MMEngine.compute
<ffparam.mm.engine.MMEngine.compute>` call (float64, kcal/mol), and each is accepted with
probability min(1, exp(-dE / (k_B T))). A mixture of symmetric moves with fixed
probabilities is symmetric, so the chains sample exp(-E(x) / k_B T) in Cartesian space: the
same configurational distribution as Langevin MD with the same force field.

Step sizes adapt towards ``target_acceptance`` during equilibration only (per temperature
and move type); they are frozen before production, because adapting on the fly would break
detailed balance. With ``replica_temperatures_k`` the walkers also run at higher
temperatures and swap configurations with neighbouring temperatures every
``exchange_every`` steps (:mod:`ffparam.sample.exchange`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from ffparam.errors import InputError
from ffparam.mm.engine import MMEngine
from ffparam.params.system import ParameterizedSystem
from ffparam.runtime import progress_task
from ffparam.sample.exchange import exchange_replicas
from ffparam.sample.moves import TorsionMoves, cartesian_move
from ffparam.settings import Settings, require_at_least, require_positive
from ffparam.units import BOLTZMANN_KCAL_MOL_K

EnergyFunction = Callable[[Tensor], Tensor]
"""positions (n, n_atoms, 3) Angstrom -> energies (n,) kcal/mol (float64)."""

MOVES = ("torsion", "cartesian")
MAX_CARTESIAN_STEP_A = 0.5


@dataclass(frozen=True)
class MCSettings(Settings):
    """Metropolis Monte Carlo settings.

    Attributes:
        temperature_k: K, the temperature whose frames are kept.
        n_chains: independent walkers (per temperature), run as one batch.
        n_steps: production steps per chain. equilibration_steps: steps before them
            (step sizes adapt there, frames are not kept).
        stride: keep every ``stride``-th production step (frames per chain =
            n_steps // stride).
        torsion_fraction: probability of a torsion move (0 with no rotatable bond).
        torsion_step_deg: initial half-width of the uniform part of a torsion move,
            degrees (at most 180; the rotamer jumps of :mod:`ffparam.sample.moves` come
            on top).
        cartesian_step_a: initial Gaussian displacement per coordinate, Angstrom.
        target_acceptance: acceptance the equilibration adapts the steps towards.
        adapt_every: steps between two step-size updates in equilibration.
        replica_temperatures_k: further temperatures (K, above ``temperature_k``) for
            replica exchange; empty = none.
        exchange_every: steps between two exchange attempts.
        include_terminal_rotors: torsion moves also turn methyl/hydroxyl/amino groups.
        seed: random seed.
    """

    temperature_k: float = 300.0
    n_chains: int = 64
    n_steps: int = 2000
    equilibration_steps: int = 500
    stride: int = 10
    torsion_fraction: float = 0.5
    torsion_step_deg: float = 120.0
    cartesian_step_a: float = 0.02
    target_acceptance: float = 0.4
    adapt_every: int = 25
    replica_temperatures_k: tuple[float, ...] = ()
    exchange_every: int = 10
    include_terminal_rotors: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "temperature_k", "torsion_step_deg", "cartesian_step_a")
        require_at_least(self, 1, "n_chains", "n_steps", "stride", "adapt_every",
                         "exchange_every")
        require_at_least(self, 0, "equilibration_steps", "seed")
        for name in ("torsion_fraction", "target_acceptance"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.torsion_step_deg > 180.0:
            raise InputError(f"torsion_step_deg must be at most 180, got {self.torsion_step_deg}")
        if self.cartesian_step_a > MAX_CARTESIAN_STEP_A:
            raise InputError(f"cartesian_step_a must be at most {MAX_CARTESIAN_STEP_A}, "
                             f"got {self.cartesian_step_a}")
        extra = tuple(float(t) for t in self.replica_temperatures_k)
        object.__setattr__(self, "replica_temperatures_k", extra)
        ladder = (self.temperature_k, *extra)
        if any(b <= a for a, b in itertools.pairwise(ladder)):
            raise InputError("replica_temperatures_k must rise above temperature_k, got "
                             f"{list(ladder)}")

    @property
    def temperatures_k(self) -> tuple[float, ...]:
        """All temperatures, K: ``temperature_k`` first."""
        return (self.temperature_k, *self.replica_temperatures_k)


@dataclass
class MCResult:
    """Frames and statistics of a Monte Carlo run.

    Attributes:
        positions: (n_temperatures, n_frames, n_chains, n_atoms, 3) Angstrom.
        energies: (n_temperatures, n_frames, n_chains) kcal/mol.
        temperatures_k: (n_temperatures,) K, the first the target temperature.
        acceptance: move -> (n_temperatures,) production acceptance rate (NaN if never
            attempted).
        step_sizes: move -> (n_temperatures,) frozen production step (torsion: degrees,
            cartesian: Angstrom).
        exchange_acceptance: (n_temperatures - 1,) swap acceptance of neighbouring pairs.
        settings: the settings of the run.
    """

    positions: np.ndarray
    energies: np.ndarray
    temperatures_k: np.ndarray
    acceptance: dict[str, np.ndarray]
    step_sizes: dict[str, np.ndarray]
    exchange_acceptance: np.ndarray
    settings: MCSettings

    @property
    def frames(self) -> np.ndarray:
        """(n_frames, n_chains, n_atoms, 3) Angstrom at the target temperature."""
        return self.positions[0]

    def flat_frames(self) -> np.ndarray:
        """Target-temperature frames as one (n_frames * n_chains, n_atoms, 3) array."""
        return self.frames.reshape(-1, *self.frames.shape[2:])

    def summary(self) -> str:
        """One line per temperature: acceptance of each move (and of exchanges)."""
        lines = []
        for t, temp in enumerate(self.temperatures_k):
            parts = [f"{m} {self.acceptance[m][t]:.1%}" for m in MOVES
                     if np.isfinite(self.acceptance[m][t])]
            if t < len(self.exchange_acceptance):
                parts.append(f"exchange with next {self.exchange_acceptance[t]:.1%}")
            lines.append(f"{temp:g} K: acceptance " + ", ".join(parts))
        return "\n".join(lines)


def engine_energy(engine: MMEngine) -> EnergyFunction:
    """Energies (kcal/mol) from the engine's closed-form path; non-finite ones (atoms on
    top of each other) come back as +inf so that such a move is always rejected."""

    def energy(positions: Tensor) -> Tensor:
        result = engine.compute(positions, forces=True, terms=False, check_finite=False)
        e = result.energy.detach()
        return torch.where(torch.isfinite(e), e, torch.full_like(e, math.inf))

    return energy


def run_mc(model: ParameterizedSystem | MMEngine | EnergyFunction, positions: np.ndarray,
           settings: MCSettings | None = None, moves: TorsionMoves | None = None,
           progress: Progress | bool = False) -> MCResult:
    """Run Metropolis Monte Carlo chains.

    Args:
        model: a ParameterizedSystem or MMEngine (energies in one batched call), or an
            :data:`EnergyFunction`.
        positions: start geometries (n_atoms, 3) or (n_start, n_atoms, 3) Angstrom,
            assigned to the chains in turn.
        settings: :class:`MCSettings` (default ones if None).
        moves: torsion moves; default those of the system's topology (none for a bare
            energy function: Cartesian moves only).
    """
    settings = settings or MCSettings()
    if isinstance(model, ParameterizedSystem):
        model = MMEngine(model)
    if isinstance(model, MMEngine):
        n_atoms = np.shape(positions)[-2] if np.ndim(positions) >= 2 else 0
        if n_atoms != model.n_atoms:
            raise InputError(f"start positions have {n_atoms} atoms, the system "
                             f"{model.n_atoms}")
        if moves is None:
            moves = TorsionMoves.from_topology(model.system.topology,
                                               settings.include_terminal_rotors)
        model = engine_energy(model)
    chain = _Chains(model, _start(positions, settings), settings, moves)
    return chain.run(progress)


def _start(positions: np.ndarray, settings: MCSettings) -> Tensor:
    """(n_temperatures * n_chains, n_atoms, 3) start batch, temperature-major."""
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise InputError(f"start positions must be (n_atoms, 3) or (n, n_atoms, 3), "
                         f"got {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("start positions are not finite")
    rows = np.arange(settings.n_chains) % x.shape[0]
    batch = np.tile(x[rows], (len(settings.temperatures_k), 1, 1))
    return torch.as_tensor(batch, dtype=torch.float64)


class _Chains:
    """The batched state: positions, energies, step sizes, counters."""

    def __init__(self, energy: EnergyFunction, positions: Tensor, settings: MCSettings,
                 moves: TorsionMoves | None) -> None:
        self.energy_fn = energy
        self.settings = settings
        self.moves = moves if moves is not None and moves.n_bonds else None
        if self.moves is not None and self.moves.moving.shape[1] != positions.shape[1]:
            raise InputError(f"torsion moves are for {self.moves.moving.shape[1]} atoms, "
                             f"positions have {positions.shape[1]}")
        self.generator = torch.Generator().manual_seed(settings.seed)
        temps = torch.as_tensor(settings.temperatures_k, dtype=torch.float64)
        self.betas = 1.0 / (BOLTZMANN_KCAL_MOL_K * temps)
        self.n_temps = len(settings.temperatures_k)
        self.row_temp = torch.arange(self.n_temps).repeat_interleave(settings.n_chains)
        self.p_torsion = settings.torsion_fraction if self.moves is not None else 0.0
        self.steps = {"torsion": torch.full((self.n_temps,), math.radians(
            settings.torsion_step_deg), dtype=torch.float64),
            "cartesian": torch.full((self.n_temps,), settings.cartesian_step_a,
                                    dtype=torch.float64)}
        self.positions = positions
        self.energies = energy(positions)
        if not torch.isfinite(self.energies).all():
            raise InputError("the start geometry has a non-finite energy")
        self._reset_counts()

    def _reset_counts(self) -> None:
        zeros = lambda: torch.zeros(self.n_temps, dtype=torch.long)  # noqa: E731
        self.tried = {m: zeros() for m in MOVES}
        self.taken = {m: zeros() for m in MOVES}
        self.swaps_tried = torch.zeros(max(self.n_temps - 1, 0), dtype=torch.long)
        self.swaps_taken = torch.zeros_like(self.swaps_tried)

    def step(self) -> None:
        """One Metropolis step of every chain."""
        n = self.positions.shape[0]
        use_torsion = torch.rand(n, generator=self.generator, dtype=torch.float64
                                 ) < self.p_torsion
        trial = cartesian_move(self.positions, self.steps["cartesian"][self.row_temp],
                               self.generator)
        if self.moves is not None:
            rotated = self.moves.propose(self.positions, self.steps["torsion"][self.row_temp],
                                         self.generator)
            trial = torch.where(use_torsion[:, None, None], rotated, trial)
        trial_energy = self.energy_fn(trial)
        u = torch.rand(n, generator=self.generator, dtype=torch.float64)
        log_accept = -self.betas[self.row_temp] * (trial_energy - self.energies)
        accept = torch.isfinite(trial_energy) & (torch.log(u) < log_accept)
        self.positions = torch.where(accept[:, None, None], trial, self.positions)
        self.energies = torch.where(accept, trial_energy, self.energies)
        for name, chosen in (("torsion", use_torsion), ("cartesian", ~use_torsion)):
            self.tried[name] += torch.bincount(self.row_temp[chosen], minlength=self.n_temps)
            self.taken[name] += torch.bincount(self.row_temp[chosen & accept],
                                               minlength=self.n_temps)

    def exchange(self, parity: int) -> None:
        self.positions, self.energies, tried, taken = exchange_replicas(
            self.positions, self.energies, self.betas, parity, self.generator)
        self.swaps_tried += tried
        self.swaps_taken += taken

    def adapt(self) -> None:
        """Scale each step by exp(acceptance - target) (equilibration only)."""
        target = self.settings.target_acceptance
        for name in MOVES:
            tried = self.tried[name]
            rate = self.taken[name].double() / tried.clamp(min=1).double()
            factor = torch.where(tried > 0, torch.exp(2.0 * (rate - target)),
                                 torch.ones_like(rate))
            self.steps[name] = self.steps[name] * factor
        self.steps["torsion"] = self.steps["torsion"].clamp(math.radians(1.0), math.pi)
        self.steps["cartesian"] = self.steps["cartesian"].clamp(1e-4, MAX_CARTESIAN_STEP_A)
        self._reset_counts()

    def run(self, progress: Progress | bool) -> MCResult:
        s = self.settings
        n_frames = s.n_steps // s.stride
        total = s.equilibration_steps + s.n_steps
        frames = np.empty((n_frames, *self.positions.shape))
        energies = np.empty((n_frames, self.positions.shape[0]))
        with progress_task(progress, "Monte Carlo", total) as (bar, task):
            for i in range(total):
                self._advance(i)
                if i == s.equilibration_steps - 1:
                    self._reset_counts()  # production statistics only
                production = i - s.equilibration_steps
                if production >= 0 and (production + 1) % s.stride == 0:
                    frames[production // s.stride] = self.positions.numpy()
                    energies[production // s.stride] = self.energies.numpy()
                bar.advance(task)
        return self._result(frames, energies)

    def _advance(self, i: int) -> None:
        s = self.settings
        self.step()
        if self.n_temps > 1 and (i + 1) % s.exchange_every == 0:
            self.exchange(((i + 1) // s.exchange_every) % 2)
        if i < s.equilibration_steps and (i + 1) % s.adapt_every == 0:
            self.adapt()

    def _result(self, frames: np.ndarray, energies: np.ndarray) -> MCResult:
        s = self.settings
        shape = (frames.shape[0], self.n_temps, s.n_chains)
        positions = frames.reshape(*shape, *frames.shape[2:]).swapaxes(0, 1)
        rate = lambda taken, tried: np.where(  # noqa: E731
            tried.numpy() > 0, taken.numpy() / np.maximum(tried.numpy(), 1), np.nan)
        return MCResult(
            positions=np.ascontiguousarray(positions),
            energies=np.ascontiguousarray(energies.reshape(shape).swapaxes(0, 1)),
            temperatures_k=np.array(s.temperatures_k),
            acceptance={m: rate(self.taken[m], self.tried[m]) for m in MOVES},
            step_sizes={"torsion": np.degrees(self.steps["torsion"].numpy()),
                        "cartesian": self.steps["cartesian"].numpy().copy()},
            exchange_acceptance=rate(self.swaps_taken, self.swaps_tried),
            settings=s,
        )
