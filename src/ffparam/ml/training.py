"""Training of the PyTorch networks on energies and forces, with resumable checkpoints.

Loss per batch (s = the model's output scale in eV, so both terms are of order one):

    L = w_E * mean_frames((E_pred - E_ref)^2 / n_atoms^2) / s^2
      + w_F * mean_components((F_pred - F_ref)^2) / s^2

Adam with a plateau learning-rate schedule on the validation loss, early stopping when the
validation loss has not improved for ``early_stopping_patience`` epochs (the best weights are
kept), and an optional budget of process CPU seconds. At the end the per-element energy
shifts are refitted in closed form on the training set (:func:`shift_correction`), which
removes the constant energy offset a force-dominated loss leaves behind.

After every ``checkpoint_every`` epochs the full state (model, best model, optimizer,
scheduler, shuffling generator, history, CPU time used) is written to ``checkpoint.pt``
(tensors and plain containers only, read with ``weights_only=True``); rerunning the same
training in the same directory resumes from it, and because the shuffling generator is
restored the resumed run reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError, NonFiniteError
from ffparam.io.atomic import write_json_atomic
from ffparam.ml.batch import iterate_batches
from ffparam.ml.checkpoint import atomic_torch_save
from ffparam.ml.data import (
    MLDataset,
    check_elements,
    element_counts,
    reference_energy_per_frame,
)
from ffparam.ml.models.ani import ANIModel
from ffparam.ml.models.base import AtomisticModel, energy_and_forces
from ffparam.ml.potential import DTYPES, NetworkPotential, build_network, dtype_name
from ffparam.ml.registry import TrainingJob
from ffparam.settings import Settings, require_at_least, require_choice, require_positive

CHECKPOINT = "checkpoint.pt"
RUN_JSON = "training.json"


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """Hyperparameters of one training run (eV, Angstrom, seconds).

    The field names are those of the ``training`` section of ``training.json`` (runs
    written with the former ``TrainingConfig`` resume unchanged).

    Attributes:
        energy_weight, forces_weight: w_E and w_F of the loss.
        batch_size: frames per optimizer step.
        learning_rate, weight_decay: Adam's.
        lr_factor, lr_patience, min_lr: the plateau schedule on the validation loss.
        early_stopping_patience: epochs without validation improvement before stopping.
        max_epochs: epoch limit.
        time_budget_s: process CPU seconds for the epochs (None: no limit).
        checkpoint_every: epochs between checkpoints.
        seed: initial weights and batch order.
        dtype: "float32" or "float64" training precision.
    """

    what = "training settings"

    energy_weight: float = 1.0
    forces_weight: float = 10.0
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-6
    early_stopping_patience: int = 50
    max_epochs: int = 1000
    time_budget_s: float | None = None
    checkpoint_every: int = 1
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        require_at_least(self, 0, "energy_weight", "forces_weight", "learning_rate",
                         "weight_decay", "min_lr", "lr_patience", "seed")
        require_at_least(self, 1, "batch_size", "early_stopping_patience", "max_epochs",
                         "checkpoint_every")
        require_positive(self, "lr_factor", "time_budget_s")
        require_choice(self, "dtype", DTYPES)


@dataclass
class _State:
    epoch: int = 0
    best_loss: float = float("inf")
    best_epoch: int = 0
    since_best: int = 0
    cpu_time_s: float = 0.0
    wall_time_s: float = 0.0
    finished: bool = False
    stop_reason: str = ""


def normalization(
    model: AtomisticModel, train: MLDataset, refs: dict[int, float]
) -> tuple[torch.Tensor, float]:
    """Per-element energy shifts (reference + mean residual per atom) and the force RMS."""
    residual = train.energies - reference_energy_per_frame(train, refs)
    per_atom = float(np.mean(residual / train.n_atoms))
    shift = torch.tensor([refs[z] + per_atom for z in model.element_list])
    scale = float(np.sqrt(np.mean(train.forces**2))) if train.forces is not None else 1.0
    return shift, max(scale, 1e-3)


def _descriptor_statistics(model: ANIModel, train: MLDataset) -> None:
    total, total_sq, count = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in iterate_batches(train, 256, dtype=model.aev_mean.dtype):
            species = model.species_index(batch.numbers)
            g = model.descriptors(species, batch.positions, batch.n_atoms)
            total = total + g.sum(0)
            total_sq = total_sq + (g**2).sum(0)
            count += g.shape[0]
    mean = total / count
    std = torch.sqrt(torch.clamp(total_sq / count - mean**2, min=0.0))
    model.set_descriptor_statistics(mean, std)


def _loss(model: AtomisticModel, batch, cfg: TrainingSettings, create_graph: bool):
    energy, forces, _ = energy_and_forces(model, batch, create_graph=create_graph)
    scale2 = model.energy_scale**2
    e_term = (((energy - batch.energies) / batch.n_atoms) ** 2).mean() / scale2
    f_term = ((forces - batch.forces) ** 2).mean() / scale2
    return cfg.energy_weight * e_term + cfg.forces_weight * f_term, energy, forces


def evaluate_loss(model: AtomisticModel, data: MLDataset, cfg: TrainingSettings) -> dict:
    """Loss and MAEs (energy meV, forces meV/Angstrom) of ``model`` on ``data``."""
    total, n, e_err, f_err, n_comp = 0.0, 0, 0.0, 0.0, 0
    dtype = model.energy_shift.dtype
    for batch in iterate_batches(data, 128, dtype=dtype):
        loss, energy, forces = _loss(model, batch, cfg, create_graph=False)
        total += float(loss.detach()) * batch.n_frames
        n += batch.n_frames
        e_err += float((energy.detach() - batch.energies).abs().sum())
        f_err += float((forces.detach() - batch.forces).abs().sum())
        n_comp += forces.numel()
    return {
        "loss": total / n,
        "energy_mae_mev": 1000 * e_err / n,
        "forces_mae_mev_a": 1000 * f_err / n_comp,
    }


def _check_training_data(train: MLDataset, valid: MLDataset) -> None:
    for data in (train, valid):
        data.require_energies()
        data.require_forces()
    check_elements(valid.numbers, train.elements, what="the training set")


def train_network(
    model_type: str,
    train: MLDataset,
    valid: MLDataset,
    out_dir: str | Path,
    reference_energies: dict[int, float],
    model_config: dict | None = None,
    config: TrainingSettings | None = None,
    resume: bool = True,
    progress: bool = False,
) -> NetworkPotential:
    """Train an ``ani`` or ``schnet`` network; resumable; returns the best-validation model.

    Args:
        model_type: "ani" or "schnet".
        train, valid: datasets with energies (eV) and forces (eV/Angstrom).
        out_dir: run directory: ``checkpoint.pt`` while training, the final model
            (``model.json`` + ``weights.pt``) at the end.
        reference_energies: per-element energies (eV) subtracted before learning.
        model_config: keyword arguments of the network besides ``elements``.
        config: training hyperparameters.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists.
    """
    cfg = config or TrainingSettings()
    out = Path(out_dir)
    _check_training_data(train, valid)
    check_elements(train.numbers, reference_energies, what="the reference energies")
    torch.manual_seed(cfg.seed)  # the network's initial weights (built before any output)
    model = build_network(model_type, {"elements": list(train.elements), **(model_config or {})},
                          cfg.dtype)
    out.mkdir(parents=True, exist_ok=True)
    run_info = {
        "model_type": model_type,
        "model_config": model_config or {},
        "training": asdict(cfg),
        "elements": list(train.elements),
        "data": {"train": dataset_fingerprint(train), "valid": dataset_fingerprint(valid)},
    }
    _check_resumable(out, run_info, resume)
    write_json_atomic(out / RUN_JSON, run_info, indent=2)

    shift, scale = normalization(model, train, reference_energies)
    model.set_normalization(shift, scale)
    if isinstance(model, ANIModel):
        _descriptor_statistics(model, train)
    run = _Run(model, cfg, out / CHECKPOINT)
    if resume and run.checkpoint.is_file():
        run.restore()
    bar = _progress(progress, cfg.max_epochs, run.state.epoch, model_type)
    while not run.state.finished:
        metrics = run.epoch(train, valid)
        if bar is not None:
            bar[0].update(bar[1], advance=1, description=(
                f"{model_type} F-MAE {metrics['forces_mae_mev_a']:.1f} meV/A"))
    if bar is not None:
        bar[0].stop()
    potential = run.best_potential(train, valid, reference_energies)
    potential.save(out)
    return potential


def train_network_job(job: TrainingJob) -> NetworkPotential:
    """The registry trainer of the native networks: ``job.options`` split into network
    options (the rest, over the type's ``default_options``) and :class:`TrainingSettings`
    fields, the job's seed, CPU budget and epoch limit applied."""
    from ffparam.ml.registry import lookup_model

    training_keys = {f.name for f in fields(TrainingSettings)}
    model_options = {k: v for k, v in job.options.items() if k not in training_keys}
    training = {"seed": job.seed,
                **{k: v for k, v in job.options.items() if k in training_keys}}
    if job.time_budget_s is not None:
        training["time_budget_s"] = job.time_budget_s
    if job.max_epochs is not None:
        training["max_epochs"] = job.max_epochs
    model_config = {**lookup_model(job.model_type).default_options, **model_options}
    return train_network(job.model_type, job.train, job.valid, job.out,
                         job.reference_energies, model_config,
                         TrainingSettings.from_dict(training), resume=job.resume,
                         progress=job.progress)


class _Run:
    """The state of one training run (model, best weights, optimizer, scheduler, shuffling
    generator, history) and its checkpoint file."""

    def __init__(self, model: AtomisticModel, cfg: TrainingSettings, checkpoint: Path) -> None:
        self.model, self.cfg, self.checkpoint = model, cfg, checkpoint
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
        )
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.state, self.history = _State(), []
        self.best_state = copy.deepcopy(model.state_dict())

    def restore(self) -> None:
        """Continue from the checkpoint (finished at once if its stop reason still holds)."""
        saved = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"])
        self.best_state = saved["best_model"]
        self.state = _State(**saved["state"])
        self.history = saved["history"]
        cfg = self.cfg
        out_of_time = cfg.time_budget_s is not None and self.state.cpu_time_s >= cfg.time_budget_s
        self.state.stop_reason = _stop_reason(self.state, cfg, out_of_time)
        self.state.finished = bool(self.state.stop_reason)

    def save(self) -> None:
        atomic_torch_save(
            self.checkpoint,
            {
                "model": self.model.state_dict(),
                "best_model": self.best_state,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(),
                "state": asdict(self.state),
                "history": self.history,
            },
        )

    def _train_batches(self, train: MLDataset, cpu0: float) -> bool:
        """One pass over shuffled batches; True if the CPU budget ran out during it."""
        cfg, model, state = self.cfg, self.model, self.state
        for batch in iterate_batches(train, cfg.batch_size, shuffle=True,
                                     generator=self.generator, dtype=model.energy_shift.dtype):
            self.optimizer.zero_grad(set_to_none=True)
            loss, _, _ = _loss(model, batch, cfg, create_graph=True)
            if not torch.isfinite(loss):
                raise NonFiniteError(
                    f"training loss became {float(loss)} at epoch "
                    f"{state.epoch + 1}; lower the learning rate"
                )
            loss.backward()
            self.optimizer.step()
            if cfg.time_budget_s is not None and (
                state.cpu_time_s + time.process_time() - cpu0 >= cfg.time_budget_s
            ):
                return True
        return False

    def epoch(self, train: MLDataset, valid: MLDataset) -> dict:
        """Train one epoch, validate, keep the best weights, checkpoint; the metrics."""
        cfg, state = self.cfg, self.state
        cpu0, wall0 = time.process_time(), time.perf_counter()
        self.model.train()
        out_of_time = self._train_batches(train, cpu0)
        self.model.eval()
        metrics = evaluate_loss(self.model, valid, cfg)
        self.scheduler.step(metrics["loss"])
        state.epoch += 1
        state.cpu_time_s += time.process_time() - cpu0
        state.wall_time_s += time.perf_counter() - wall0
        self.history.append({"epoch": state.epoch, "lr": self.optimizer.param_groups[0]["lr"],
                             "cpu_time_s": state.cpu_time_s, **metrics})
        if metrics["loss"] < state.best_loss:
            state.best_loss, state.best_epoch, state.since_best = metrics["loss"], state.epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            state.since_best += 1
        state.stop_reason = _stop_reason(state, cfg, out_of_time)
        state.finished = bool(state.stop_reason)
        if state.finished or state.epoch % cfg.checkpoint_every == 0:
            self.save()
        return metrics

    def best_potential(self, train: MLDataset, valid: MLDataset,
                       reference_energies: dict[int, float]) -> NetworkPotential:
        """The best-validation weights, energy shifts refitted on ``train``, as a potential."""
        model = self.model
        model.load_state_dict(self.best_state)
        model.eval()
        shift_correction = refit_energy_shift(model, train)
        metadata = {
            "reference_energies": {str(z): e for z, e in reference_energies.items()},
            "training": asdict(self.cfg),
            "history": self.history,
            "summary": asdict(self.state),
            "n_train": len(train),
            "n_valid": len(valid),
            "train_source": train.source,
            "valid_source": valid.source,
            "dtype": dtype_name(model.energy_shift.dtype),
            "energy_shift_correction": shift_correction,
        }
        return NetworkPotential(model, metadata)


def shift_correction(predicted: np.ndarray, data: MLDataset, elements) -> np.ndarray:
    """Per-element energy corrections (eV) that best fix E_ref - E_pred in least squares.

    The energy loss term is small next to the force term (energies enter per atom), so a
    trained network can carry a constant energy offset that forces never see. A per-element
    shift is linear in the energy, so its optimal value is closed form: minimum-norm least
    squares of the residuals on the element counts. Forces are unchanged.
    """
    counts = element_counts(data, elements)
    delta, *_ = np.linalg.lstsq(counts, data.energies - predicted, rcond=None)
    return delta


def refit_energy_shift(model: AtomisticModel, train: MLDataset) -> dict[str, float]:
    """Apply :func:`shift_correction` on ``train`` to ``model.energy_shift`` (in place)."""
    predicted = []
    inference = copy.deepcopy(model).double().eval()
    for batch in iterate_batches(train, 256):
        predicted.append(energy_and_forces(inference, batch, forces=False)[0].numpy())
    delta = shift_correction(np.concatenate(predicted), train, model.element_list)
    with torch.no_grad():
        model.energy_shift += torch.as_tensor(delta, dtype=model.energy_shift.dtype)
    return {str(z): float(d) for z, d in zip(model.element_list, delta)}


def _stop_reason(state: _State, cfg: TrainingSettings, out_of_time: bool) -> str:
    if out_of_time:
        return f"CPU-time budget of {cfg.time_budget_s:g} s used"
    if state.since_best >= cfg.early_stopping_patience:
        return f"no validation improvement for {cfg.early_stopping_patience} epochs"
    if state.epoch >= cfg.max_epochs:
        return f"reached {cfg.max_epochs} epochs"
    return ""


def dataset_fingerprint(dataset: MLDataset | None) -> str | None:
    """SHA-256 of a dataset's frames (atoms, positions, energies, forces): a checkpoint is
    only resumed on the same training and validation frames (None for no dataset)."""
    if dataset is None:
        return None
    import hashlib

    digest = hashlib.sha256()
    for array in (dataset.n_atoms, dataset.numbers, dataset.positions, dataset.energies,
                  dataset.forces):
        digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_resumable(out: Path, run_info: dict, resume: bool) -> None:
    import json

    path = out / RUN_JSON
    if not path.is_file() or not (out / CHECKPOINT).is_file():
        return
    if not resume:
        (out / CHECKPOINT).unlink()
        return
    previous = json.loads(path.read_text())
    if previous.get("model_type") != run_info["model_type"]:
        raise InputError(
            f"{out} holds a checkpoint of a {previous.get('model_type')} model, not "
            f"{run_info['model_type']}; use another --out directory"
        )
    extendable = {"max_epochs", "time_budget_s", "checkpoint_every"}
    keys = ("model_config", "elements", "training", "data")
    for key in keys if "data" in previous else keys[:-1]:  # runs before the data check
        old, new = previous.get(key), run_info[key]
        if key == "training":
            old = {k: v for k, v in old.items() if k not in extendable}
            new = {k: v for k, v in new.items() if k not in extendable}
        if old != new:
            raise InputError(
                f"{out} holds a checkpoint with a different {key}; "
                "use another --out directory or do not resume"
            )


def _progress(enabled: bool, total: int, done: int, label: str):
    if not enabled:
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    task = bar.add_task(label, total=total, completed=done)
    return bar, task
