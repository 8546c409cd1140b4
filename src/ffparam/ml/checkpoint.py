"""Model directories on disk: ``model.json`` (type, config, metadata) + ``weights.pt``.

Weights are a plain ``state_dict`` (tensors only) read back with
``torch.load(..., weights_only=True)``, so loading a model never executes pickled code.
Files are written through :mod:`ffparam.io.atomic`, so a killed process never leaves a
half-written model behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ffparam.errors import InputError, MissingFileError
from ffparam.io.atomic import atomic_output, write_json_atomic
from ffparam.io.files import read_text

FORMAT = "ffparam-mlp"
VERSION = 1
MODEL_JSON = "model.json"
WEIGHTS = "weights.pt"


def atomic_torch_save(path: Path, obj) -> None:
    """``torch.save`` to ``path`` atomically (:func:`ffparam.io.atomic.atomic_output`)."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def write_model_dir(
    directory: str | Path,
    model_type: str,
    config: dict,
    state: dict[str, torch.Tensor] | None,
    metadata: dict | None = None,
) -> Path:
    """Save a model: ``config`` rebuilds it, ``state`` holds its tensors."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if state is not None:
        atomic_torch_save(directory / WEIGHTS, state)
    write_json_atomic(
        directory / MODEL_JSON,
        {
            "format": FORMAT,
            "version": VERSION,
            "model_type": model_type,
            "config": config,
            "metadata": metadata or {},
        },
        indent=2,
    )
    return directory


def read_model_json(directory: str | Path, expected_type: str | None = None) -> dict:
    """The parsed ``model.json`` of ``directory``; errors name what is wrong."""
    directory = Path(directory)
    path = directory / MODEL_JSON
    if not directory.is_dir():
        raise MissingFileError(f"{directory} is not an ffparam model directory (not a "
                               "directory)")
    if not path.is_file():
        raise MissingFileError(f"{directory} is not an ffparam model directory (no {MODEL_JSON})")
    try:
        info = json.loads(read_text(path, "model file (JSON)"))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT \
            or not isinstance(info.get("model_type"), str):
        raise InputError(f"{path} is not an ffparam ML model file")
    if expected_type is not None and info.get("model_type") != expected_type:
        raise InputError(f"{directory} holds a {info.get('model_type')} model, not {expected_type}")
    return info


def load_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of ``directory`` (``weights_only=True``)."""
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise MissingFileError(f"{path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refuses anything but tensors and containers
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        if "Weights only load failed" in reason:
            reason = "it holds pickled Python objects, not only tensors"
        raise InputError(f"{path} cannot be read as a weights-only state_dict (tensors only; "
                         f"pickled code is never run): {reason}") from None
