"""The one interface every ML potential offers, and loading any saved model by its type.

A :class:`Potential` maps a :class:`~ffparam.ml.batch.Batch` of frames to a
:class:`Prediction`: energies (eV), forces (eV/Angstrom), per-atom energies (eV) and, where
the model has one, an uncertainty. The ASE calculator, the MD driver, evaluation and the CLI
use only this interface, so the PyTorch networks, the Gaussian process, committees and MACE
are interchangeable.
"""

from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ffparam.errors import InputError, NonFiniteError
from ffparam.ml.batch import Batch, iterate_batches
from ffparam.ml.calibration import frame_rms
from ffparam.ml.checkpoint import load_weights, read_model_json, write_model_dir
from ffparam.ml.data import MLDataset
from ffparam.ml.models.base import AtomisticModel, energy_and_forces


@dataclass
class Prediction:
    """Model output for a batch.

    Attributes:
        energy: (B,) eV.
        forces: (A, 3) eV/Angstrom, or None if not asked for.
        atom_energies: (A,) eV, summing to ``energy`` per frame.
        energy_sigma: (B,) eV predicted standard deviation, or None.
        forces_sigma: (A, 3) eV/Angstrom predicted standard deviation, or None.
        frame_sigma: (B,) eV/Angstrom predicted RMS force error of each frame, where the
            model ranks frames by something better than the RMS of ``forces_sigma`` (the
            GP: its latent energy sigma, scaled on validation frames), or None; read it
            through :func:`frame_sigma`.
    """

    energy: np.ndarray
    forces: np.ndarray | None = None
    atom_energies: np.ndarray | None = None
    energy_sigma: np.ndarray | None = None
    forces_sigma: np.ndarray | None = None
    frame_sigma: np.ndarray | None = None

    @staticmethod
    def concatenate(parts: list[Prediction]) -> Prediction:
        def cat(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if any(v is None for v in values) else np.concatenate(values)

        return Prediction(
            cat("energy"),
            cat("forces"),
            cat("atom_energies"),
            cat("energy_sigma"),
            cat("forces_sigma"),
            cat("frame_sigma"),
        )

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteError` if any energy or force is NaN or infinite."""
        if not np.all(np.isfinite(self.energy)) or (
            self.forces is not None and not np.all(np.isfinite(self.forces))
        ):
            raise NonFiniteError("the model produced a non-finite energy or force")


def frame_sigma(pred: Prediction, frame_index: np.ndarray) -> np.ndarray:
    """(B,) eV/Angstrom: how uncertain the model is of each frame, the uncertainty that
    active learning selects by and that the frame Spearman ranks: ``pred.frame_sigma``
    where the model gives one, else the RMS of the frame's predicted force sigmas
    (``frame_index`` (A,): the frame of each atom row)."""
    if pred.frame_sigma is not None:
        return np.asarray(pred.frame_sigma)
    if pred.forces_sigma is None:
        raise ValueError("the prediction carries no uncertainty")
    return frame_rms(pred.forces_sigma, frame_index)


class Potential(ABC):
    """A trained ML potential (eV, Angstrom)."""

    model_type: str = ""

    @property
    @abstractmethod
    def elements(self) -> tuple[int, ...]:
        """Atomic numbers the potential was trained on."""

    @property
    def has_uncertainty(self) -> bool:
        return False

    @abstractmethod
    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False,
        atom_energies: bool = True,
    ) -> Prediction:
        """Predict energies, forces and per-atom energies of one batch; with
        ``atom_energies=False`` a model whose per-atom energies cost extra (the GP's
        integrated-gradient attribution, several times its energy and forces) may leave
        them out (MD does not need them)."""

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the potential to ``directory`` (``model.json`` + weights)."""

    def predict(
        self, data: MLDataset, batch_size: int = 64, forces: bool = True, uncertainty: bool = False
    ) -> Prediction:
        """Predictions for all frames of ``data``, in order."""
        parts = [
            self.predict_batch(b, forces=forces, uncertainty=uncertainty)
            for b in iterate_batches(data, batch_size)
        ]
        return Prediction.concatenate(parts)


DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""Training precisions of the native networks by name."""


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]


def build_network(model_type: str, config: dict, dtype: str = "float64") -> AtomisticModel:
    """A fresh native network of type ``model_type`` (a registry row with a network class,
    :data:`ffparam.ml.registry.MODELS`) from its config."""
    from ffparam.ml.registry import MODELS

    networks = [name for name, kind in MODELS.items() if kind.network is not None]
    if model_type not in networks:
        raise InputError(f"unknown network type {model_type!r} (known: {', '.join(networks)})")
    network = MODELS[model_type].network_class()
    known = [name for name in inspect.signature(network).parameters if name != "elements"]
    unknown = sorted(set(config) - set(known) - {"elements"})
    if unknown:
        raise InputError(f"unknown {model_type} option(s) {', '.join(unknown)} (network: "
                         f"{', '.join(known)}; training: see TrainingSettings)")
    return network(**config).to(DTYPES[dtype])


class NetworkPotential(Potential):
    """A native PyTorch network (ANI or SchNet) behind the :class:`Potential` interface.

    Predictions run in float64 whatever the training precision (a float32 network's weights
    are exact in float64), so total energies of large molecules keep sub-meV resolution and
    MD energy-conservation checks are not limited by float32 rounding.
    """

    def __init__(self, model: AtomisticModel, metadata: dict | None = None) -> None:
        self.model = model.eval()
        self.model_type = model.model_type
        self.metadata = metadata or {}
        self._inference = (
            model if model.energy_shift.dtype == torch.float64 else copy.deepcopy(model).double()
        ).eval()

    @property
    def elements(self) -> tuple[int, ...]:
        return self.model.element_list

    def predict_batch(
        self, batch: Batch, forces: bool = True, uncertainty: bool = False,
        atom_energies: bool = True,
    ) -> Prediction:
        energy, force, atom_e = energy_and_forces(self._inference, batch, forces=forces)
        return Prediction(
            energy=energy.detach().double().numpy(),
            forces=None if force is None else force.detach().double().numpy(),
            atom_energies=atom_e.detach().double().numpy(),
        )

    def save(self, directory: str | Path) -> Path:
        dtype = dtype_name(self.model.energy_shift.dtype)
        return write_model_dir(
            directory,
            self.model_type,
            {"model": self.model.config(), "dtype": dtype},
            self.model.state_dict(),
            self.metadata,
        )

    @classmethod
    def load(cls, directory: str | Path, expected_type: str | None = None) -> NetworkPotential:
        info = read_model_json(directory, expected_type)
        model = build_network(
            info["model_type"], info["config"]["model"], info["config"].get("dtype", "float64")
        )
        load_state(model, load_weights(directory), directory)
        return cls(model, info.get("metadata"))


def load_state(module: torch.nn.Module, state: dict, directory) -> None:
    """``load_state_dict`` with a one-line error when the weights do not fit the config."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"weights in {directory} do not match its model config: {first}") from exc


def load_potential(directory: str | Path, expected_type: str | None = None) -> Potential:
    """Load any saved potential; ``expected_type`` makes a different type an error."""
    from ffparam.ml.registry import MODELS

    info = read_model_json(directory, expected_type)
    model_type = info.get("model_type")
    if model_type not in MODELS:
        raise InputError(f"{directory}: unknown model type {model_type!r}")
    cls = MODELS[model_type].potential_class()
    try:
        return cls.load(directory)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        if isinstance(exc, InputError):
            raise
        # a model.json that names a known type but whose config does not fit it
        raise InputError(f"{directory}: malformed {model_type} model configuration "
                         f"({type(exc).__name__}: {exc})") from None
