"""``ffparam mlp active``: active learning of an ML potential, on the fly with reference
calculations or from an already labelled pool.

On the fly: round 0 labels normal-mode samples of the molecule (optimization and Hessian
with the reference method, then gradients), later rounds run Langevin MD with the current
model at each temperature and label the most uncertain, diverse MD frames; every reference
calculation goes through the Store (a rerun recomputes nothing) and the runtime executor.
The loop itself (rounds, resume, stopping, records, plot) is
:func:`ffparam.ml.active.run_active`; this module builds its labeller and trainer and checks
the input before anything is labelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ffparam.errors import InputError
from ffparam.ml.active import ActiveSettings, LabelBatch, PoolLabeller, run_active
from ffparam.ml.active.loop import concat
from ffparam.ml.data import MLDataset, check_elements, dataset_from_atoms, read_frames
from ffparam.ml.potential import Potential
from ffparam.settings import Settings, require_at_least, require_positive

DEFAULT_COMMITTEE = 5
"""Members of a network committee (the networks' uncertainty is the committee spread)."""


@dataclass(frozen=True)
class MlpActiveSettings(Settings):
    """The model and the candidate MD of ``ffparam mlp active`` (K, fs steps)."""

    what = "mlp active settings"

    model: str = "gpr"
    """Model type (a selectable row of :data:`ffparam.ml.registry.MODELS`)."""
    method: str = "gfn2-xtb"
    """Reference method of the labels (on the fly)."""
    temperatures_k: tuple[float, ...] = (300.0,)
    """Temperatures of the normal-mode samples (the first) and of the candidate MD."""
    md_steps: int = 400
    """MD steps per temperature and round (0.5 fs each)."""
    md_interval: int = 4
    """Every ``md_interval``-th MD step is a candidate frame."""
    committee: int | None = None
    """Committee members (None: 1 for the GP, 5 for networks and MACE)."""
    time_budget_s: float | None = None
    """Training CPU seconds per model (networks, MACE)."""
    max_epochs: int | None = None
    """Epoch limit per model (networks, MACE)."""
    md_restarts: int = 3
    """Candidate MD that breaks (forces explode, a bond stretches beyond ``max_stretch``)
    restarts from its last sound frame this many times per temperature and round."""
    max_stretch: float = 1.5
    """A candidate frame with a bond longer than this times its length in the molecule's
    structure is broken: it and the frames after it are dropped."""
    min_distance_a: float = 0.7
    """A candidate frame with two non-bonded atoms closer than this (Angstrom) is broken."""

    def __post_init__(self) -> None:
        from ffparam.ml.registry import selectable_models

        if self.model not in selectable_models():
            raise InputError(f"{self.what}: unknown model {self.model!r} (choose "
                             f"{', '.join(selectable_models())})")
        object.__setattr__(self, "temperatures_k", tuple(float(t) for t in self.temperatures_k))
        if not self.temperatures_k or any(not t > 0 for t in self.temperatures_k):
            raise InputError(f"{self.what}: temperatures_k must be positive, got "
                             f"{self.temperatures_k}")
        require_at_least(self, 1, "md_steps", "md_interval", "committee", "max_epochs")
        require_positive(self, "time_budget_s", "min_distance_a")
        require_at_least(self, 0, "md_restarts")
        require_at_least(self, 1.0, "max_stretch")
        if self.model != "gpr" and self.members < 2:
            raise InputError(f"{self.what}: a single {self.model} model has no uncertainty; "
                             "use committee >= 2")

    @property
    def members(self) -> int:
        if self.committee is not None:
            return self.committee
        return 1 if self.model == "gpr" else DEFAULT_COMMITTEE


def make_trainer(settings: MlpActiveSettings, refs: dict[int, float], seed: int = 0,
                 options: dict | None = None):
    """A trainer for :func:`run_active`: ``mlp train`` of the model (resumable) on the
    labelled frames (a GP calibrates its sigmas by the miscalibration area unless
    ``options`` say otherwise)."""
    from ffparam.workflows.mlp import train_model

    if settings.model == "gpr":
        options = {"calibration": "area", **(options or {})}

    def train(train_set: MLDataset, valid_set: MLDataset, out: Path) -> Potential:
        return train_model(settings.model, train_set, valid_set, out, refs,
                           committee=settings.members, time_budget_s=settings.time_budget_s,
                           max_epochs=settings.max_epochs, seed=seed, options=options)

    return train


def _check_model_input(settings: MlpActiveSettings, data: MLDataset, what: str) -> None:
    """One-line InputError for frames the chosen model cannot learn."""
    if settings.model == "gpr":
        from ffparam.ml.models.gp.data import check_single_molecule

        check_single_molecule(data, data.frame_numbers(0), what)


def _reference_energies(refs: dict[int, float] | str | Path | None,
                        data: MLDataset) -> dict[int, float]:
    """Per-element energies (eV): given, read from an isolated-atom file, or by regression
    on ``data`` (kept for the whole run)."""
    from ffparam.workflows.mlp import reference_energies

    if isinstance(refs, dict):
        check_elements(data.numbers, refs, what="the reference energies")
        return refs
    return reference_energies(data, refs)


def active_from_pool(pool_path: str | Path, out_dir: str | Path, settings: MlpActiveSettings,
                     loop: ActiveSettings, test_path: str | Path | None = None,
                     isolated_atoms: str | Path | None = None,
                     max_candidates: int | None = None, options: dict | None = None,
                     random: bool = False) -> dict:
    """Active learning choosing from the labelled frames of ``pool_path`` (extended XYZ or
    a Store); ``test_path`` frames score every round. ``random``: the random-selection
    baseline (same loop, candidates drawn at random)."""
    from ffparam.ml.active.pool import RandomPoolLabeller

    pool = read_frames(pool_path)
    labeller = (RandomPoolLabeller(pool, loop.per_round, loop.seed) if random
                else PoolLabeller(pool, max_candidates, loop.seed))
    _check_model_input(settings, pool, str(pool_path))
    if loop.initial > len(pool):
        raise InputError(f"{pool_path} has {len(pool)} frames, fewer than the "
                         f"{loop.initial} initial labels")
    test = None
    if test_path is not None:
        test = read_frames(test_path)
        check_elements(test.numbers, pool.elements,
                       what=f"the pool {pool_path} (the model never sees these elements)")
        test.require_forces()
    refs = _reference_energies(isolated_atoms, pool)
    return run_active(labeller, make_trainer(settings, refs, loop.seed, options), loop,
                      out_dir, test)


def _records_dataset(records, what: str) -> tuple[MLDataset | None, list[str], list[dict]]:
    """(frames of the complete records with gradients, their Store keys, failures)."""
    from ffparam.reference.export import records_to_atoms

    usable = [r.ok and r.energy is not None and r.gradient is not None for r in records]
    good = [r for r, ok in zip(records, usable) if ok]
    failures = [{"id": r.key, "error": r.error or "no energy or gradient"}
                for r, ok in zip(records, usable) if not ok]
    data = dataset_from_atoms(records_to_atoms(good), source=what) if good else None
    return data, [r.key for r in good], failures


class ReferenceLabeller:
    """Labels by reference calculations through a Store and an executor; candidates from
    Langevin MD with the current model (0.5 fs steps) at each of ``temperatures_k``.

    Args:
        molecule: the molecule (atom order of every frame).
        store, executor: where calculations are recorded and run.
        settings: method, temperatures and MD length.
        trajectories: directory of the candidate MD trajectories.
        seed: seeds the normal modes and the MD.
    """

    def __init__(self, molecule, store, executor, settings: MlpActiveSettings,
                 trajectories: Path, seed: int = 0) -> None:
        from ffparam.reference import Species, get_calculator, parse_method

        self.molecule = molecule
        self.species = Species.from_molecule(molecule)
        self.spec = parse_method(settings.method)
        get_calculator(self.spec, self.species)  # unknown element or method: now, not later
        self.store, self.executor = store, executor
        self.settings = settings
        self.trajectories = Path(trajectories)
        self.seed = seed

    def initial(self, n: int, seed: int) -> LabelBatch:
        from ffparam.reference.sampling import sample_normal_modes

        result = sample_normal_modes(self.molecule, n, self.settings.temperatures_k[0],
                                     self.spec, self.store, self.executor, seed=seed)
        return LabelBatch(*_records_dataset(result.records, "normal-mode samples"))

    def candidates(self, potential: Potential, labelled: MLDataset, ids: list[str],
                   round_index: int) -> tuple[MLDataset | None, list[str]]:
        rng = np.random.default_rng([self.seed, round_index])
        parts, names = [], []
        for t, temperature in enumerate(self.settings.temperatures_k):
            start = labelled.subset([int(rng.integers(len(labelled)))]).to_atoms()[0]
            start.calc = None
            fallback = labelled.subset([0]).to_atoms()[0]
            fallback.calc = None
            path = self.trajectories / f"round_{round_index:03d}_{temperature:g}K.xyz"
            frames = self._candidate_md(potential, start, temperature, path,
                                        self.seed + 1000 * round_index + t, fallback)
            if frames is None:
                continue
            parts.append(frames)
            names += [f"md:{round_index}:{temperature:g}K:{k}" for k in range(len(frames))]
        return concat(parts), names

    def _candidate_md(self, potential: Potential, start, temperature: float,
                      path: Path, seed: int, fallback=None) -> MLDataset | None:
        """Frames of ``md_steps`` steps of MD at ``temperature`` (K) from ``start``, every
        ``md_interval``-th kept, written to ``path``. A run whose forces explode or that
        reaches a broken geometry (:func:`sound_frames`) is cut at its last sound frame and
        restarted from there (fresh velocities, next seed) for the steps left, at most
        ``md_restarts`` times; a run with no sound frame at all (the start itself) restarts
        once from ``fallback`` (the first labelled frame). What happened is kept in
        ``path`` with suffix ``.json``; None if no frame is sound."""
        from ffparam.io.atomic import write_json_atomic
        from ffparam.ml.data import read_extxyz
        from ffparam.ml.md import run_md

        s = self.settings
        path.parent.mkdir(parents=True, exist_ok=True)
        left, parts, events = s.md_steps, [], []
        for attempt in range(s.md_restarts + 1):
            part = path.with_suffix(f".part{attempt}.xyz")
            result = run_md(potential, start, left, temperature, trajectory=part,
                            interval=s.md_interval, max_force_sigma=None,
                            seed=seed + 7919 * attempt)
            frames = read_extxyz(part) if part.exists() else None
            part.unlink(missing_ok=True)
            n_sound = self._count_sound(frames)
            if result.stopped:  # not the frame whose forces stopped the run
                n_sound = min(n_sound, -(-result.steps_done // s.md_interval))
            if n_sound > (attempt > 0):  # a restart's first frame is its start: dropped
                parts.append(frames.subset(np.arange(int(attempt > 0), n_sound)))
            if not result.stopped and n_sound == len(frames):
                break
            event = {"attempt": attempt, "steps_done": result.steps_done,
                     "reason": result.reason if result.stopped else "broken geometry"}
            events.append(event)
            if n_sound:
                event["restart_after_step"] = done = (n_sound - 1) * s.md_interval
                left -= max(done, 1)
                start = frames.subset([n_sound - 1]).to_atoms()[0]
            elif fallback is not None:
                event["restart_from"] = "the first labelled frame"
                start, fallback = fallback, None
            else:
                break
            start.calc = None
            if left < 1:
                break
        frames = concat(parts)
        if frames is not None:
            frames.write_extxyz(path)
        if events:
            write_json_atomic(path.with_suffix(".json"), {"events": events})
        return frames

    def _count_sound(self, frames: MLDataset | None) -> int:
        """Number of leading frames of ``frames`` with a sound geometry."""
        if frames is None or not len(frames):
            return 0
        n = self.species.n_atoms
        ok = sound_frames(frames.positions.reshape(-1, n, 3), self.molecule.bonds,
                          self.molecule.conformers[0], self.settings.max_stretch,
                          self.settings.min_distance_a)
        return int(np.argmin(ok)) if not ok.all() else len(ok)

    def label(self, frames: MLDataset, ids: list[str]) -> LabelBatch:
        from ffparam.reference import make_jobs, run_jobs

        n = self.species.n_atoms
        jobs = make_jobs(self.species, frames.positions.reshape(-1, n, 3), self.spec,
                         "gradient")
        records, _ = run_jobs(jobs, self.store, self.executor, description="labels")
        return LabelBatch(*_records_dataset(records, "reference labels"))


class RandomReferenceLabeller(ReferenceLabeller):
    """The on-the-fly baseline: the same MD candidates, but each round's frames drawn
    uniformly among them (the candidates are a seeded random subset of exactly
    ``per_round`` frames, so the diverse selection takes them all)."""

    def __init__(self, *args, per_round: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.per_round = per_round

    def candidates(self, potential: Potential, labelled: MLDataset, ids: list[str],
                   round_index: int) -> tuple[MLDataset | None, list[str]]:
        frames, names = super().candidates(potential, labelled, ids, round_index)
        if frames is None or len(frames) <= self.per_round:
            return frames, names
        rng = np.random.default_rng([self.seed, round_index, 1])
        pick = np.sort(rng.choice(len(frames), self.per_round, replace=False))
        return frames.subset(pick), [names[i] for i in pick]


def _stretch_and_contact(positions: np.ndarray, bonds: np.ndarray,
                         reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the largest bond length over its length in ``reference`` and the
    shortest distance between non-bonded atoms (Angstrom; inf with no such pair)."""
    positions = np.asarray(positions, dtype=float)
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    i, j = bonds[:, 0], bonds[:, 1]
    d = np.linalg.norm(positions[:, :, None] - positions[:, None, :], axis=-1)
    ref = np.linalg.norm(np.asarray(reference)[i] - np.asarray(reference)[j], axis=-1)
    stretch = (d[:, i, j] / ref).max(axis=1) if len(bonds) else np.zeros(len(d))
    nonbonded = ~np.eye(positions.shape[1], dtype=bool)
    nonbonded[i, j] = nonbonded[j, i] = False
    contact = d[:, nonbonded].min(axis=1) if nonbonded.any() else np.full(len(d), np.inf)
    return stretch, contact


def sound_frames(positions: np.ndarray, bonds: np.ndarray, reference: np.ndarray,
                 max_stretch: float = 1.5, min_distance_a: float = 0.7) -> np.ndarray:
    """(n_frames,) True where a frame's geometry is sound: every bond (``bonds``, pairs
    of atom indices) at most ``max_stretch`` times its length in ``reference``
    (n_atoms, 3) and no two non-bonded atoms closer than ``min_distance_a``. Positions
    (n_frames, n_atoms, 3), Angstrom."""
    stretch, contact = _stretch_and_contact(positions, bonds, reference)
    return (stretch <= max_stretch) & (contact >= min_distance_a)


def geometry_check(positions: np.ndarray, bonds: np.ndarray, reference: np.ndarray,
                   max_stretch: float = 1.5, min_distance_a: float = 0.7) -> dict:
    """:func:`sound_frames` of a trajectory summed up: ``ok``, the first broken frame,
    the largest bond length ratio to ``reference`` and the shortest non-bonded distance
    (Angstrom) seen."""
    stretch, contact = _stretch_and_contact(positions, bonds, reference)
    ok = (stretch <= max_stretch) & (contact >= min_distance_a)
    return {"ok": bool(ok.all()), "frames": len(ok),
            "first_broken_frame": None if ok.all() else int(np.argmin(ok)),
            "max_bond_ratio": float(stretch.max()),
            "min_nonbonded_distance_a": float(contact.min())}


def active_on_the_fly(molecule_text: str, out_dir: str | Path, settings: MlpActiveSettings,
                      loop: ActiveSettings, workers: int = 0, dask: str | None = None,
                      store_path: str | Path | None = None, charge: int | None = None,
                      options: dict | None = None, test: MLDataset | str | Path | None = None,
                      random: bool = False) -> dict:
    """Active learning of ``molecule_text`` (SMILES or a molecule file) with reference
    labels of ``settings.method``, recorded in ``store_path`` (default
    ``out_dir/reference.db``) and run on ``workers`` local processes or Dask.
    ``test``: labelled frames of the molecule (its atom order) that score every round;
    ``random``: the random-selection baseline (the same MD candidates, drawn uniformly)."""
    from ffparam.chem import Molecule
    from ffparam.reference import Species, Store, get_calculator, parse_method
    from ffparam.runtime import make_executor

    molecule = Molecule.from_input(molecule_text, charge=charge)
    if molecule.n_atoms < 2:
        raise InputError(f"{molecule_text}: active learning needs a molecule of 2 or more atoms")
    get_calculator(parse_method(settings.method), Species.from_molecule(molecule))
    if molecule.n_conformers == 0:
        molecule = molecule.generate_conformers(1, seed=loop.seed)
    if test is not None:
        test = _molecule_test_frames(test, molecule)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Store(store_path or out / "reference.db") as store, \
            make_executor(workers, dask) as executor:
        labeller = (RandomReferenceLabeller(molecule, store, executor, settings, out / "md",
                                            loop.seed, per_round=loop.per_round) if random
                    else ReferenceLabeller(molecule, store, executor, settings, out / "md",
                                           loop.seed))
        state = {}

        def train(train_set, valid_set, path):
            if "train" not in state:  # per-element energies from the first labels, kept
                refs = _reference_energies(None, concat([train_set, valid_set]))
                state["train"] = make_trainer(settings, refs, loop.seed, options)
            return state["train"](train_set, valid_set, path)

        return run_active(labeller, train, loop, out, test)


def _molecule_test_frames(test: MLDataset | str | Path, molecule) -> MLDataset:
    """Test frames (read if a path) checked to be labelled frames of ``molecule``, atoms
    in its order: one InputError otherwise."""
    data = test if isinstance(test, MLDataset) else read_frames(test)
    what = data.source or "the test frames"
    data.require_forces()
    numbers = np.asarray(molecule.atomic_numbers)
    if np.any(data.n_atoms != len(numbers)) or np.any(
            data.numbers.reshape(len(data), -1) != numbers):
        raise InputError(f"{what}: test frames must be frames of {molecule.formula} with its "
                         "atoms in the molecule's order")
    return data

