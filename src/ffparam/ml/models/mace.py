"""MACE through ``mace-torch``: trained by MACE's own training program, used through ours.

:func:`train_mace` writes our datasets as extended XYZ (``REF_energy`` / ``REF_forces``),
runs ``mace.cli.run_train`` in a subprocess (MACE's own loss, optimizer, EMA, checkpoints
and ``--restart_latest`` resumption), then converts the trained model into an ffparam model
directory: ``model.json`` holds the MACE constructor arguments made JSON-safe (irreps as
strings, classes and the gate by name) and ``weights.pt`` its ``state_dict``, so loading
rebuilds ``ScaleShiftMACE`` and reads the weights with ``weights_only=True``. (The pickled
``.model`` file MACE writes is read once, right after our own subprocess produced it.)

A CPU-time budget for the training epochs is honoured in two phases: a two-epoch run
measures the CPU cost of an epoch (log timestamps scaled by the measured CPU/wall ratio),
then MACE restarts from its latest checkpoint with as many epochs as fit in the budget.
Start-up and final evaluation are not charged to the budget but are included in the
reported ``train_cpu_time_s``.

The per-element reference energies given to MACE as ``E0s`` are the same shifts the native
networks use (reference energy + mean per-atom residual of the training set).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import DependencyError, ExternalProgramError, InputError
from ffparam.ml.batch import Batch
from ffparam.ml.checkpoint import load_weights, read_model_json, write_model_dir
from ffparam.ml.data import MLDataset, check_elements, reference_energy_per_frame
from ffparam.ml.potential import Potential, Prediction, load_state
from ffparam.ml.registry import TrainingJob
from ffparam.settings import Settings, require_at_least, require_choice, require_positive


@dataclass(frozen=True)
class MaceSettings(Settings):
    """Small CPU-friendly MACE settings (names follow ``mace_run_train`` options: ``r_max``
    in Angstrom, ``lr`` the learning rate; ``time_budget_s`` CPU seconds for the epochs)."""

    what = "MACE settings"

    r_max: float = 5.0
    num_channels: int = 32
    max_L: int = 1
    max_ell: int = 3
    correlation: int = 3
    num_interactions: int = 2
    num_radial_basis: int = 8
    batch_size: int = 5
    valid_batch_size: int = 25
    lr: float = 0.01
    energy_weight: float = 10.0  # E:F = 1:10, the ratio the native trainer uses
    forces_weight: float = 100.0
    max_num_epochs: int = 200
    patience: int = 50
    scheduler_patience: int = 5
    ema: bool = True
    ema_decay: float = 0.99
    default_dtype: str = "float32"
    seed: int = 0
    time_budget_s: float | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        require_positive(self, "r_max", "num_channels", "correlation", "num_interactions",
                         "num_radial_basis", "batch_size", "valid_batch_size", "lr",
                         "max_num_epochs", "time_budget_s")
        require_at_least(self, 0, "max_L", "max_ell", "energy_weight", "forces_weight",
                         "patience", "scheduler_patience", "ema_decay", "seed")
        require_at_least(self, 1, "threads")
        require_choice(self, "default_dtype", ("float32", "float64"))


def _require_mace() -> None:
    """Import mace-torch (and e3nn), undoing its side effect on the process environment.

    ``import mace`` sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which makes every later
    ``torch.load`` without an explicit ``weights_only`` unpickle arbitrary objects. The
    modules are imported while it is set (e3nn reads a constants file at import), then the
    previous value is restored so the rest of ffparam keeps torch's safe default.
    """
    key = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    previous = os.environ.get(key)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mace first (it sets the variable), then what we use: e3nn reads its
            # constants file at import time and needs the variable in force
            for name in (
                "mace",
                "e3nn.o3",
                "mace.data",
                "mace.modules",
                "mace.tools.scripts_utils",
                "mace.tools.torch_geometric",
            ):
                importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - mace-torch is a dependency
        raise DependencyError("mace-torch is not installed (pip install mace-torch)") from exc
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def _run_args(
    settings: MaceSettings, e0s: dict[int, float], epochs: int, restart: bool
) -> list[str]:
    args = [
        "--name",
        "mace",
        "--train_file",
        "train.xyz",
        "--valid_file",
        "valid.xyz",
        "--energy_key",
        "REF_energy",
        "--forces_key",
        "REF_forces",
        "--E0s",
        json.dumps({str(z): e for z, e in e0s.items()}).replace('"', ""),
        "--model",
        "MACE",
        "--r_max",
        str(settings.r_max),
        "--num_channels",
        str(settings.num_channels),
        "--max_L",
        str(settings.max_L),
        "--max_ell",
        str(settings.max_ell),
        "--correlation",
        str(settings.correlation),
        "--num_interactions",
        str(settings.num_interactions),
        "--num_radial_basis",
        str(settings.num_radial_basis),
        "--batch_size",
        str(settings.batch_size),
        "--valid_batch_size",
        str(settings.valid_batch_size),
        "--lr",
        str(settings.lr),
        "--energy_weight",
        str(settings.energy_weight),
        "--forces_weight",
        str(settings.forces_weight),
        "--max_num_epochs",
        str(epochs),
        "--patience",
        str(settings.patience),
        "--scheduler_patience",
        str(settings.scheduler_patience),
        "--default_dtype",
        settings.default_dtype,
        "--seed",
        str(settings.seed),
        "--device",
        "cpu",
        "--eval_interval",
        "1",
        "--error_table",
        "PerAtomRMSE",
    ]
    if settings.ema:
        args += ["--ema", "--ema_decay", str(settings.ema_decay)]
    if restart:
        args.append("--restart_latest")
    return args


def _run_mace(work: Path, args: list[str], threads: int) -> float:
    """Run MACE's trainer; returns the CPU seconds it used."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONWARNINGS": "ignore",
    }
    from ffparam.assign.programs import run_guarded

    before = os.times()
    with open(work / "mace.log", "a") as log:
        proc = run_guarded(
            [sys.executable, "-m", "mace.cli.run_train", *args],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode != 0:
        lines = [ln for ln in (work / "mace.log").read_text().splitlines() if ln.strip()]
        raise ExternalProgramError(f"mace_run_train failed: {lines[-1] if lines else 'no log'}")
    return cpu


def _epoch_seconds(log_text: str) -> float | None:
    """Wall seconds per epoch from MACE's log timestamps (None if fewer than two epochs)."""
    stamps = re.findall(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) INFO: Epoch \d+", log_text, flags=re.M
    )
    if len(stamps) < 2:
        return None
    t = [
        time.mktime(time.strptime(s[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + s[19:])
        for s in stamps
    ]
    return (t[-1] - t[0]) / (len(t) - 1)


def train_mace(
    train: MLDataset,
    valid: MLDataset,
    out_dir: str | Path,
    reference_energies: dict[int, float],
    settings: MaceSettings | None = None,
) -> MacePotential:
    """Train MACE with ``mace_run_train`` on our data and save it as an ffparam model."""
    _require_mace()
    cfg = settings or MaceSettings()
    for data in (train, valid):
        data.require_energies()
        data.require_forces()
    check_elements(valid.numbers, train.elements, what="the training set")
    out = Path(out_dir)
    work = out / "mace_work"
    work.mkdir(parents=True, exist_ok=True)
    train.write_extxyz(work / "train.xyz", "REF_energy", "REF_forces")
    valid.write_extxyz(work / "valid.xyz", "REF_energy", "REF_forces")
    residual = train.energies - reference_energy_per_frame(train, reference_energies)
    per_atom = float(np.mean(residual / train.n_atoms))
    e0s = {z: reference_energies[z] + per_atom for z in train.elements}
    restart = any((work / "checkpoints").glob("*.pt")) if (work / "checkpoints").exists() else False

    wall0 = time.perf_counter()
    if cfg.time_budget_s is None:
        cpu = _run_mace(work, _run_args(cfg, e0s, cfg.max_num_epochs, restart), cfg.threads)
        epochs = cfg.max_num_epochs
    else:
        first = 2
        cpu = _run_mace(work, _run_args(cfg, e0s, first, restart), cfg.threads)
        wall = time.perf_counter() - wall0
        per_epoch_wall = _epoch_seconds((work / "mace.log").read_text()) or wall / first
        per_epoch_cpu = per_epoch_wall * cpu / max(wall, 1e-9)
        # the budget is for training epochs (like the native trainer's budget); MACE's
        # start-up and final evaluation are reported in train_cpu_time_s but not charged
        extra = int(max(cfg.time_budget_s - first * per_epoch_cpu, 0.0) / max(per_epoch_cpu, 1e-9))
        epochs = min(first + extra, cfg.max_num_epochs)
        if epochs > first:
            cpu += _run_mace(work, _run_args(cfg, e0s, epochs, True), cfg.threads)
    metadata = {
        "settings": asdict(cfg),
        "epochs": epochs,
        "train_cpu_time_s": cpu,
        "train_wall_time_s": time.perf_counter() - wall0,
        "n_train": len(train),
        "n_valid": len(valid),
        "train_source": train.source,
        "e0s": {str(z): e for z, e in e0s.items()},
        "reference_energies": {str(z): e for z, e in reference_energies.items()},
    }
    potential = MacePotential.from_mace_model(work / "mace.model", metadata)
    potential.metadata["energy_shift_correction"] = potential.refit_energy_shift(train)
    potential.save(out)
    return potential


def train_mace_job(job: TrainingJob) -> MacePotential:
    """The registry trainer of MACE: :class:`MaceSettings` from ``job.options`` with the
    job's seed, CPU budget (``time_budget_s``) and epoch limit (``max_num_epochs``)."""
    settings = {"seed": job.seed, **job.options}
    if job.time_budget_s is not None:
        settings["time_budget_s"] = job.time_budget_s
    if job.max_epochs is not None:
        settings["max_num_epochs"] = job.max_epochs
    return train_mace(job.train, job.valid, job.out, job.reference_energies,
                      MaceSettings.from_dict(settings))


# --- conversion between MACE models and JSON-safe configs --------------------------------


def _config_to_json(config: dict) -> dict:
    from e3nn import o3

    out = {}
    for key, value in config.items():
        if isinstance(value, o3.Irreps):
            out[key] = {"irreps": str(value)}
        elif isinstance(value, type):
            out[key] = {"class": value.__name__}
        elif callable(value):
            out[key] = {"function": value.__name__}
        elif isinstance(value, torch.Tensor | np.ndarray):
            out[key] = {"array": np.asarray(value).tolist()}
        else:
            out[key] = value
    return out


def _config_from_json(config: dict) -> dict:
    from e3nn import o3
    from mace import modules

    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and "irreps" in value:
            out[key] = o3.Irreps(value["irreps"])
        elif isinstance(value, dict) and "class" in value:
            out[key] = getattr(modules, value["class"])
        elif isinstance(value, dict) and "function" in value:
            out[key] = getattr(torch.nn.functional, value["function"])
        elif isinstance(value, dict) and "array" in value:
            out[key] = np.asarray(value["array"])
        else:
            out[key] = value
    out["atomic_numbers"] = [int(z) for z in np.ravel(out["atomic_numbers"])]
    return out


class MacePotential(Potential):
    """A MACE model behind the :class:`Potential` interface (eV, Angstrom)."""

    model_type = "mace"

    def __init__(
        self, model: torch.nn.Module, config_json: dict, metadata: dict | None = None
    ) -> None:
        self.model = model.eval()
        self.config_json = config_json
        self.metadata = metadata or {}
        self.dtype = next(model.parameters()).dtype
        self._elements = tuple(int(z) for z in np.ravel(config_json["atomic_numbers"]["array"]))
        self.r_max = float(config_json["r_max"])

    @property
    def elements(self) -> tuple[int, ...]:
        return self._elements

    @classmethod
    def from_mace_model(cls, path: Path, metadata: dict | None = None) -> MacePotential:
        """Convert the ``.model`` file MACE wrote in our own work directory."""
        import warnings

        from mace.tools.scripts_utils import extract_config_mace_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=False)
        config = extract_config_mace_model(model)
        if "error" in config:
            raise InputError(f"{path}: {config['error']}")
        return cls(model, _config_to_json(config), metadata)

    def refit_energy_shift(self, train: MLDataset) -> dict[str, float]:
        """Add the closed-form per-element energy correction (as for the native networks,
        :func:`ffparam.ml.training.shift_correction`) to MACE's E0s; forces are unchanged."""
        from ffparam.ml.training import shift_correction

        predicted = self.predict(train, forces=False).energy
        delta = shift_correction(predicted, train, self.elements)
        buffer = self.model.atomic_energies_fn.atomic_energies
        with torch.no_grad():
            buffer += torch.as_tensor(delta, dtype=buffer.dtype)
        self.config_json["atomic_energies"] = {"array": buffer.detach().cpu().numpy().tolist()}
        return {str(z): float(d) for z, d in zip(self.elements, delta)}

    def save(self, directory: str | Path) -> Path:
        dtype = "float64" if self.dtype == torch.float64 else "float32"
        return write_model_dir(
            directory,
            self.model_type,
            {"mace": self.config_json, "dtype": dtype},
            self.model.state_dict(),
            self.metadata,
        )

    @classmethod
    def load(cls, directory: str | Path, expected_type: str | None = None) -> MacePotential:
        import warnings

        _require_mace()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mace.modules import ScaleShiftMACE

        info = read_model_json(directory, expected_type or cls.model_type)
        config = info["config"]
        kwargs = _config_from_json(config["mace"])
        dtype = torch.float64 if config.get("dtype") == "float64" else torch.float32
        with _default_dtype(dtype), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript annotation notices from e3nn
            model = ScaleShiftMACE(**kwargs)
        load_state(model, load_weights(directory), directory)
        return cls(model.to(dtype), config["mace"], info.get("metadata"))

    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False,
        atom_energies: bool = True,
    ) -> Prediction:
        _require_mace()
        from mace import data as mace_data
        from mace.tools import torch_geometric
        from mace.tools.utils import AtomicNumberTable

        check_elements(batch.numbers.numpy(), self.elements, what="the MACE model")
        table = AtomicNumberTable(list(self.elements))
        offsets = np.concatenate([[0], np.cumsum(batch.n_atoms.numpy())])
        graphs = []
        with _default_dtype(self.dtype):
            for k in range(batch.n_frames):
                sl = slice(offsets[k], offsets[k + 1])
                config = mace_data.Configuration(
                    atomic_numbers=batch.numbers[sl].numpy(),
                    positions=batch.positions[sl].detach().double().numpy(),
                    properties={},
                    property_weights={},
                    pbc=(False, False, False),
                    cell=np.zeros((3, 3)),
                )
                graphs.append(
                    mace_data.AtomicData.from_config(config, z_table=table, cutoff=self.r_max)
                )
        data = torch_geometric.Batch.from_data_list(graphs)
        out = self.model(data.to_dict(), compute_force=forces, training=False)
        force = out.get("forces") if forces else None
        return Prediction(
            energy=out["energy"].detach().double().numpy(),
            forces=None if force is None else force.detach().double().numpy(),
            atom_energies=out["node_energy"].detach().double().numpy(),
        )


class _default_dtype:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc) -> None:
        torch.set_default_dtype(self.previous)
