"""Train, evaluate and run any model type from files: the API behind ``ffparam mlp``.

Every function here is a thin composition of the library pieces (datasets, trainers,
potentials, metrics, MD) so that the CLI only parses arguments.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from ffparam.errors import InputError
from ffparam.ml.checkpoint import MODEL_JSON, read_model_json
from ffparam.ml.data import (
    MLDataset,
    check_elements,
    fit_reference_energies,
    read_extxyz,
    read_frames,
    read_isolated_atoms,
    split_indices,
)
from ffparam.ml.potential import Potential, load_potential

MODEL_TYPES = ("ani", "schnet", "gpr", "mace")

DEFAULT_MODEL_CONFIG = {
    "ani": {"hidden": [128, 96, 64]},
    "schnet": {"cutoff": 5.0, "n_features": 64, "n_rbf": 32, "n_interactions": 3},
}
"""Network architecture defaults (besides the elements, which come from the data)."""

DEFAULT_TRAINING = {
    "ani": {"learning_rate": 1e-3, "batch_size": 16},
    "schnet": {"learning_rate": 1e-3, "batch_size": 16},
}


def load_training_sets(
    train_path: str | Path,
    valid_path: str | Path | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[MLDataset, MLDataset]:
    """Training and validation sets (extended XYZ or a reference Store ``.db``); without a
    validation file, a seeded fraction of the training frames."""
    train = read_frames(train_path)
    if valid_path is not None:
        return train, read_frames(valid_path)
    n_valid = max(1, round(valid_fraction * len(train)))
    if len(train) - n_valid < 1:
        raise InputError(f"{train_path} has too few frames to hold out a validation set")
    split = split_indices(len(train), len(train) - n_valid, n_valid, 0, seed=seed)
    return train.subset(split.train), train.subset(split.valid)


def reference_energies(train: MLDataset, isolated_atoms: str | Path | None = None) -> dict:
    """Per-element energies (eV): from an isolated-atom file, else by linear regression."""
    if isolated_atoms is not None:
        refs = read_isolated_atoms(isolated_atoms)
        check_elements(train.numbers, refs, what=f"the isolated atoms in {isolated_atoms}")
        return {z: refs[z] for z in train.elements}
    return fit_reference_energies(train)


def _split_options(model_type: str, options: dict) -> tuple[dict, dict]:
    """Split free-form options into model-config and training-config keys."""
    if model_type in ("ani", "schnet"):
        from ffparam.ml.training import TrainingConfig

        training_keys = {f.name for f in fields(TrainingConfig)}
        model = {k: v for k, v in options.items() if k not in training_keys}
        training = {k: v for k, v in options.items() if k in training_keys}
        return model, training
    return {}, dict(options)


def train_model(
    model_type: str,
    train: MLDataset,
    valid: MLDataset,
    out_dir: str | Path,
    refs: dict[int, float],
    committee: int = 1,
    time_budget_s: float | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    options: dict | None = None,
    resume: bool = True,
    progress: bool = False,
) -> Potential:
    """Train a model of ``model_type`` and save it in ``out_dir``.

    Args:
        committee: number of members; > 1 trains a committee (seeds seed .. seed+N-1).
        time_budget_s: CPU seconds per member (networks, MACE; the GP has no budget).
        max_epochs: epoch limit (networks, MACE).
        options: model or training options by name (e.g. ``hidden``, ``learning_rate``
            for networks; ``GPConfig`` fields for the GP; ``MaceSettings`` fields for MACE).
        resume: continue an interrupted run in ``out_dir``; a finished model is reused.
    """
    if model_type not in MODEL_TYPES:
        raise InputError(f"unknown model {model_type!r} (choose {', '.join(MODEL_TYPES)})")
    if committee < 1:
        raise InputError("--committee must be at least 1")
    if time_budget_s is not None and not time_budget_s > 0:
        raise InputError(f"--time-budget must be positive, got {time_budget_s}")
    if max_epochs is not None and max_epochs < 1:
        raise InputError(f"--max-epochs must be at least 1, got {max_epochs}")
    if seed < 0:
        raise InputError(f"--seed must not be negative, got {seed}")
    from ffparam.io.files import check_output_dir

    out = check_output_dir(out_dir)
    expected = "committee" if committee > 1 else model_type
    if (out / MODEL_JSON).is_file():
        info = read_model_json(out)
        if info["model_type"] != expected:
            raise InputError(
                f"{out} holds a {info['model_type']} model, not {expected}; "
                "use another --out directory"
            )
        if resume and model_type in ("gpr", "mace"):
            return load_potential(out)
    options = dict(options or {})
    if committee > 1:
        return _train_committee(
            model_type,
            train,
            valid,
            out,
            refs,
            committee,
            time_budget_s,
            max_epochs,
            seed,
            options,
            resume,
            progress,
        )
    if model_type in ("ani", "schnet"):
        return _train_network(
            model_type,
            train,
            valid,
            out,
            refs,
            time_budget_s,
            max_epochs,
            seed,
            options,
            resume,
            progress,
        )
    if model_type == "gpr":
        from ffparam.ml.models.gpr import GPConfig, fit_gp

        known = {f.name for f in fields(GPConfig)}
        bad = set(options) - known
        if bad:
            raise InputError(f"unknown GP option(s): {', '.join(sorted(bad))}")
        gp = fit_gp(
            train, refs, valid, GPConfig.from_dict({"seed": seed, **options}), progress=progress
        )
        gp.save(out)
        return gp
    from ffparam.ml.models.mace import MaceSettings, train_mace

    known = {f.name for f in fields(MaceSettings)}
    bad = set(options) - known
    if bad:
        raise InputError(f"unknown MACE option(s): {', '.join(sorted(bad))}")
    settings = {"seed": seed, **options}
    if time_budget_s is not None:
        settings["time_budget_s"] = time_budget_s
    if max_epochs is not None:
        settings["max_num_epochs"] = max_epochs
    return train_mace(train, valid, out, refs, MaceSettings.from_dict(settings))


def _train_network(
    model_type, train, valid, out, refs, time_budget_s, max_epochs, seed, options, resume, progress
):
    from ffparam.ml.training import TrainingConfig, train_network

    model_opts, training_opts = _split_options(model_type, options)
    model_config = {**DEFAULT_MODEL_CONFIG[model_type], **model_opts}
    training = {**DEFAULT_TRAINING[model_type], "seed": seed, **training_opts}
    if time_budget_s is not None:
        training["time_budget_s"] = time_budget_s
    if max_epochs is not None:
        training["max_epochs"] = max_epochs
    return train_network(
        model_type,
        train,
        valid,
        out,
        refs,
        model_config,
        TrainingConfig.from_dict(training),
        resume=resume,
        progress=progress,
    )


def _train_committee(
    model_type,
    train,
    valid,
    out,
    refs,
    n,
    time_budget_s,
    max_epochs,
    seed,
    options,
    resume,
    progress,
):
    from ffparam.ml.checkpoint import write_model_dir
    from ffparam.ml.committee import Committee

    if model_type == "gpr":
        raise InputError("a GP has its own variance; train it without --committee")
    members = [
        train_model(
            model_type,
            train,
            valid,
            out / f"member_{k}",
            refs,
            1,
            time_budget_s,
            max_epochs,
            seed + k,
            options,
            resume,
            progress,
        )
        for k in range(n)
    ]
    committee = Committee(members, {"n_members": n, "member_type": model_type})
    write_model_dir(
        out,
        committee.model_type,
        {"members": [f"member_{k}" for k in range(n)]},
        None,
        committee.metadata,
    )
    return committee


def evaluate(
    model_dir: str | Path,
    test_path: str | Path,
    plot: str | Path | None = None,
    uncertainty: bool = True,
) -> dict:
    """Metrics (MAE/RMSE of E and F, calibration if the model has sigmas) and a parity PNG."""
    from ffparam.ml.metrics import error_metrics, parity_plot

    potential = load_potential(model_dir)
    test = read_extxyz(test_path)
    test.require_energies()
    pred = potential.predict(test, uncertainty=uncertainty and potential.has_uncertainty)
    pred.check_finite()
    metrics = {
        "model_type": potential.model_type,
        "test": str(test_path),
        **error_metrics(pred, test),
    }
    if plot is not None:
        metrics["parity_plot"] = str(parity_plot(pred, test, plot, title=f"{potential.model_type}"))
    return metrics


def md_from_files(
    model_dir: str | Path,
    start: str | Path,
    steps: int,
    temperature_k: float,
    trajectory: str | Path,
    frame: int = 0,
    **kwargs,
):
    """Run MD with the model in ``model_dir`` from frame ``frame`` of ``start``."""
    from ffparam.ml.md import run_md

    potential = load_potential(model_dir)
    data = read_extxyz(start)
    if not 0 <= frame < len(data):
        raise InputError(f"{start} has {len(data)} frames; no frame {frame}")
    check_elements(data.numbers, potential.elements, what=f"the model in {model_dir}")
    atoms = data.subset([frame]).to_atoms()[0]
    atoms.calc = None
    return run_md(
        potential, atoms, steps, temperature_k=temperature_k, trajectory=trajectory, **kwargs
    )
