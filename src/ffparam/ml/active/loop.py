"""The active-learning loop: label, train, propose candidates, select, label, ...

Round 0 labels ``initial`` frames; every later round asks the labeller for candidate frames
(MD with the current model, or the unused frames of a labelled pool), labels a batch of
them chosen by ``ActiveSettings.criterion`` (:data:`CRITERIA`: by default the batch that
most reduces the posterior variance summed over all candidates, :mod:`.integrated`; or a
diverse batch of the most uncertain, :mod:`.selection`) and retrains on everything
labelled so far. It stops when the label
budget is spent (failed labels count: they cost a calculation), when the largest candidate
uncertainty is below ``threshold_ev_a``, or when no candidate is left.

Every round is kept in ``DIR/rounds/NNN``: ``data.xyz`` (all frames labelled so far, in
labelling order), ``model/`` and ``round.json`` (written last: a round without it is
redone, which costs nothing already labelled, as labels live in the reference Store or the
pool, and ``mlp train`` resumes a finished model). Each 10th labelled frame
(``valid_every``) is a validation frame, the others training frames, so the split never
changes as the set grows. A failed label is recorded in ``round.json`` and never trained on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ffparam.errors import InputError
from ffparam.io.atomic import write_json_atomic
from ffparam.ml.active.integrated import select_integrated
from ffparam.ml.active.selection import frame_descriptors, frame_uncertainty, select_diverse
from ffparam.ml.calibration import calibration_report, frame_rms
from ffparam.ml.data import MLDataset, read_extxyz
from ffparam.ml.potential import Potential, frame_sigma
from ffparam.settings import Settings, require_at_least, require_choice, require_positive

SCHEMA_VERSION = 1
"""Of ``round.json`` and ``active.json``."""

CRITERIA = ("integrated", "weighted", "variance")
"""Batch criteria: ``integrated``, the largest reduction of a GP surrogate's posterior
variance summed over all candidates (:func:`.integrated.select_integrated`); ``weighted``,
the same sum with each candidate's variance weighted by the model's predicted force
variance there; ``variance``, the most uncertain candidates kept diverse
(:func:`.selection.select_diverse`)."""


@dataclass(frozen=True)
class ActiveSettings(Settings):
    """Sizes and stopping rule of an active-learning run (labels = reference calculations
    or pool frames; uncertainties in eV/Angstrom)."""

    what = "active learning settings"

    budget: int = 100
    """Labels in all (the initial ones included); failed labels count."""
    initial: int = 20
    """Labels of round 0 (normal-mode samples or random pool frames)."""
    per_round: int = 10
    """Labels added per round."""
    threshold_ev_a: float | None = None
    """Stop when no candidate's RMS force sigma reaches this (eV/Angstrom); None: never."""
    exclusion: float = 0.5
    """Exclusion radius of the diverse selection, in median nearest-neighbour distances."""
    valid_every: int = 10
    """Every ``valid_every``-th labelled frame is a validation frame."""
    seed: int = 0
    """Seeds the initial choice and the candidate MD."""
    criterion: str = "integrated"
    """How a batch is chosen (:data:`CRITERIA`)."""
    coverage_length: float = 0.5
    """Length of the integrated criterion's surrogate kernel, in median pairwise
    descriptor distances (:mod:`.integrated`)."""
    coverage_noise: float = 1e-3
    """Observation noise of that surrogate, relative to its prior variance."""

    def __post_init__(self) -> None:
        require_choice(self, "criterion", CRITERIA)
        require_positive(self, "coverage_length", "coverage_noise")
        require_at_least(self, 1, "budget", "per_round")
        require_at_least(self, 2, "valid_every")
        require_at_least(self, 0, "seed")
        require_positive(self, "threshold_ev_a", "exclusion")
        require_at_least(self, 3, "initial")
        if self.initial > self.budget:
            raise InputError(f"{self.what}: initial ({self.initial}) exceeds the budget "
                             f"({self.budget})")


@dataclass
class LabelBatch:
    """Labelled frames (eV, eV/Angstrom), their ids, and the ids that failed with why."""

    data: MLDataset | None
    ids: list[str]
    failures: list[dict] = field(default_factory=list)


class Labeller(Protocol):
    """Where frames and labels come from (a pool, or MD plus reference calculations)."""

    def initial(self, n: int, seed: int) -> LabelBatch:
        """The first ``n`` labelled frames."""

    def candidates(self, potential: Potential, labelled: MLDataset, ids: list[str],
                   round_index: int) -> tuple[MLDataset | None, list[str]]:
        """Unlabelled candidate frames of this round and their ids (``ids``: those of the
        frames labelled so far)."""

    def label(self, frames: MLDataset, ids: list[str]) -> LabelBatch:
        """Labels for the chosen candidates."""


Trainer = Callable[[MLDataset, MLDataset, Path], Potential]
"""(training frames, validation frames, model directory) -> trained potential."""


def concat(parts: list[MLDataset | None]) -> MLDataset | None:
    """Frames of several datasets in order (None and empty parts skipped)."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]

    def cat(name: str):
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else np.concatenate(values)

    return MLDataset(numbers=cat("numbers"), positions=cat("positions"),
                     n_atoms=cat("n_atoms"), energies=cat("energies"), forces=cat("forces"),
                     source="active learning labels")


def split_labelled(data: MLDataset, valid_every: int) -> tuple[MLDataset, MLDataset]:
    """(training, validation) frames: every ``valid_every``-th labelled frame validates."""
    index = np.arange(len(data))
    is_valid = index % valid_every == valid_every - 1
    return data.subset(index[~is_valid]), data.subset(index[is_valid])


@dataclass
class _State:
    """What a round starts from: the labelled frames, their ids, labels spent, the model."""

    labelled: MLDataset | None = None
    ids: list[str] = field(default_factory=list)
    spent: int = 0
    potential: Potential | None = None
    rounds: list[dict] = field(default_factory=list)
    stop: str = ""


def run_active(labeller: Labeller, train: Trainer, settings: ActiveSettings,
               out_dir: str | Path, test: MLDataset | None = None,
               load: Callable[[Path], Potential] | None = None) -> dict:
    """Run (or resume) the loop in ``out_dir``; returns the summary also written to
    ``out_dir/active.json`` (the final model is saved in ``out_dir`` itself).

    Args:
        test: frames the model is scored on after every round (force MAE, calibration).
        load: loads a round's saved model on resume (default
            :func:`ffparam.ml.potential.load_potential`).
    """
    from ffparam.ml.potential import load_potential

    out = Path(out_dir)
    state = _State()
    load = load or load_potential
    index = 0
    while not state.stop:
        round_dir = out / "rounds" / f"{index:03d}"
        if (round_dir / "round.json").exists():
            _resume_round(state, round_dir, load)
        else:
            _run_round(state, index, round_dir, labeller, train, settings, test)
        state.stop = state.stop or _stop_reason(state, settings)
        index += 1
    return _finish(state, out, settings)


def _resume_round(state: _State, round_dir: Path, load) -> None:
    """Take a finished round's record, labelled frames and model."""
    record = json.loads((round_dir / "round.json").read_text())
    state.rounds.append(record)
    state.ids = list(record["ids"])
    state.spent = int(record["labels_spent"])
    state.labelled = read_extxyz(round_dir / "data.xyz") if state.ids else None
    if (round_dir / "model").exists():
        state.potential = load(round_dir / "model")
    state.stop = record.get("stop", "")


def _run_round(state: _State, index: int, round_dir: Path, labeller: Labeller,
               train: Trainer, settings: ActiveSettings, test: MLDataset | None) -> None:
    """Label (initial frames or a selected batch), retrain, score and record the round."""
    t0 = time.perf_counter()
    record: dict = {"schema_version": SCHEMA_VERSION, "round": index}
    if index == 0:
        batch = labeller.initial(settings.initial, settings.seed)
        state.spent += settings.initial
    else:
        batch = _select_and_label(state, index, labeller, settings, record)
        if batch is None:
            _write_round(round_dir, record, state)
            return
    state.labelled = concat([state.labelled, batch.data])
    state.ids = state.ids + batch.ids
    record["failures"] = batch.failures
    record["new_ids"] = batch.ids
    if state.labelled is None or len(state.labelled) < 2:
        raise InputError("active learning: fewer than 2 frames could be labelled to start "
                         f"from ({len(batch.failures)} failed)")
    train_set, valid_set = split_labelled(state.labelled, settings.valid_every)
    state.potential = train(train_set, valid_set, round_dir / "model")
    record.update(_scores(state.potential, valid_set, "valid"))
    if test is not None:
        record.update(_scores(state.potential, test, "test"))
    record["wall_s"] = time.perf_counter() - t0
    _write_round(round_dir, record, state)


def _select_and_label(state: _State, index: int, labeller: Labeller,
                      settings: ActiveSettings, record: dict) -> LabelBatch | None:
    """Rank the candidates by uncertainty, label a diverse batch; None when the loop ends
    here (no candidate, or every candidate below the threshold)."""
    frames, ids = labeller.candidates(state.potential, state.labelled, state.ids, index)
    if frames is None or not len(frames):
        record["stop"] = state.stop = "no candidate frames left"
        return None
    sigma = frame_uncertainty(state.potential, frames)
    record["candidates"] = {"n": len(frames), "sigma_mean_ev_a": float(sigma.mean()),
                            "sigma_max_ev_a": float(sigma.max())}
    if settings.threshold_ev_a is not None and sigma.max() < settings.threshold_ev_a:
        record["stop"] = state.stop = (f"largest candidate uncertainty {sigma.max():.3g} eV/A "
                                       f"is below {settings.threshold_ev_a:g}")
        return None
    k = min(settings.per_round, settings.budget - state.spent)
    chosen, gains = _choose_batch(state, frames, sigma, k, settings)
    batch = labeller.label(frames.subset(chosen), [ids[i] for i in chosen])
    state.spent += len(chosen)
    record["selected"] = {"ids": [ids[i] for i in chosen],
                          "sigma_ev_a": sigma[chosen].tolist()}
    if gains is not None:
        record["selected"]["variance_reduction"] = gains.tolist()
    if batch.data is not None and len(batch.data):
        record["fresh"] = _fresh_errors(state.potential, batch.data)
    return batch


def _choose_batch(state: _State, frames: MLDataset, sigma: np.ndarray, k: int,
                  settings: ActiveSettings) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices of the batch among ``frames`` by ``settings.criterion`` and, for the
    integrated criteria, each pick's relative reduction of the summed surrogate variance."""
    if settings.criterion == "variance":
        return select_diverse(sigma, frame_descriptors(frames), k, settings.exclusion), None
    weights = sigma**2 if settings.criterion == "weighted" else None
    train_set = split_labelled(state.labelled, settings.valid_every)[0]
    return select_integrated(state.potential, train_set, frames, k, settings.coverage_length,
                             settings.coverage_noise, weights)


def _fresh_errors(potential: Potential, data: MLDataset) -> dict:
    """Errors of the model on the frames it chose, before training on them."""
    pred = potential.predict(data, uncertainty=True)
    err = pred.forces - data.forces
    frames = data.atom_frame_index()
    return {"force_mae_mev_a": 1000 * float(np.abs(err).mean()),
            "frame_rms_error_ev_a": frame_rms(err, frames).tolist(),
            "frame_sigma_ev_a": frame_sigma(pred, frames).tolist()}


def _scores(potential: Potential, data: MLDataset, name: str) -> dict:
    """Force MAE (meV/A) and, with sigmas, calibration on ``data``, keys prefixed."""
    if data is None or not len(data) or data.forces is None:
        return {}
    pred = potential.predict(data, uncertainty=potential.has_uncertainty)
    err = pred.forces - data.forces
    out = {f"{name}_force_mae_mev_a": 1000 * float(np.abs(err).mean()),
           f"{name}_frames": len(data)}
    if data.energies is not None:
        out[f"{name}_energy_mae_mev"] = 1000 * float(np.abs(pred.energy - data.energies).mean())
    if pred.forces_sigma is not None:
        report = calibration_report(err, pred.forces_sigma, data.atom_frame_index(),
                                    pred.frame_sigma)
        out[f"{name}_calibration"] = report
        out[f"{name}_sigma_mean_ev_a"] = float(frame_sigma(pred,
                                                           data.atom_frame_index()).mean())
    return out


def _write_round(round_dir: Path, record: dict, state: _State) -> None:
    """data.xyz, then round.json (the mark of a finished round)."""
    round_dir.mkdir(parents=True, exist_ok=True)
    record["ids"] = state.ids
    record["labels_spent"] = state.spent
    record["n_labels"] = len(state.ids)
    if state.labelled is not None:
        state.labelled.write_extxyz(round_dir / "data.xyz")
        # later rounds start from the frames as stored (8 decimals), exactly as a resumed
        # run does, so that a redone round repeats its MD and selection
        state.labelled = read_extxyz(round_dir / "data.xyz")
    write_json_atomic(round_dir / "round.json", record)
    state.rounds.append(record)


def _stop_reason(state: _State, settings: ActiveSettings) -> str:
    if state.spent >= settings.budget:
        return f"label budget {settings.budget} spent"
    return ""


def _finish(state: _State, out: Path, settings: ActiveSettings) -> dict:
    """Save the final model in ``out``, write active.json and the learning plot."""
    from ffparam.ml.active.plot import plot_rounds

    if state.potential is None:
        raise InputError("active learning ended before a model was trained")
    state.potential.save(out)
    summary = {"schema_version": SCHEMA_VERSION, "settings": settings.to_dict(),
               "stop": state.stop, "n_labels": len(state.ids), "labels_spent": state.spent,
               "rounds": [{k: v for k, v in r.items() if k not in ("ids", "new_ids")}
                          for r in state.rounds]}
    summary["plot"] = str(plot_rounds(state.rounds, out / "active.png"))
    write_json_atomic(out / "active.json", summary)
    return summary
