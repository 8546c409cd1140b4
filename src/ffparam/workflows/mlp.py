"""The ML-potential workflow behind ``ffparam mlp``: train, evaluate and run any model
type from files.

Every function here is a thin composition of the library pieces of :mod:`ffparam.ml`
(datasets, the model registry and its trainers, potentials, metrics, MD) so that the CLI
only parses arguments.
"""

from __future__ import annotations

from pathlib import Path

from ffparam.errors import InputError
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
from ffparam.ml.registry import TrainingJob, train_job


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
    baseline: str | None = None,
    baseline_workers: int = 0,
) -> Potential:
    """Train a model of ``model_type`` (a row of :data:`ffparam.ml.registry.MODELS`) and
    save it in ``out_dir``.

    Args:
        committee: number of members; > 1 trains a committee (seeds seed .. seed+N-1).
        time_budget_s: CPU seconds per member (networks, MACE; the GP has no budget).
        max_epochs: epoch limit (networks, MACE).
        options: model or training options by name (e.g. ``hidden``, ``learning_rate``
            for networks; ``GPSettings`` fields for the GP; ``MaceSettings`` fields for MACE).
        resume: continue an interrupted run in ``out_dir``; a finished model is reused.
        baseline: Δ-learning: the model learns E - E_baseline and predicts baseline +
            model (:mod:`ffparam.ml.delta`): a reference method (``gfn2-xtb``), an OpenMM
            System XML or a SMIRNOFF ``.offxml``/OpenFF name; checked against the molecule
            before anything is trained. ``refs`` are then refitted on the differences.
        baseline_workers: local processes computing a reference baseline's labels (0: in
            this process); they are cached in ``out_dir/baseline.db``.
    """
    _check_limits(committee, time_budget_s, max_epochs, seed)
    job = TrainingJob(model_type, train, valid, Path(out_dir), refs, seed, time_budget_s,
                      max_epochs, dict(options or {}), resume, progress, committee)
    if baseline is None:
        return train_job(job)
    from ffparam.ml.delta import resolve_baseline, train_delta
    from ffparam.runtime import make_executor

    resolved = resolve_baseline(baseline, train)
    with make_executor(baseline_workers) as executor:
        return train_delta(job, resolved, executor).potential


def _check_limits(committee: int, time_budget_s: float | None, max_epochs: int | None,
                  seed: int) -> None:
    """InputError naming the CLI option of a value out of range."""
    if committee < 1:
        raise InputError("--committee must be at least 1")
    if time_budget_s is not None and not time_budget_s > 0:
        raise InputError(f"--time-budget must be positive, got {time_budget_s}")
    if max_epochs is not None and max_epochs < 1:
        raise InputError(f"--max-epochs must be at least 1, got {max_epochs}")
    if seed < 0:
        raise InputError(f"--seed must not be negative, got {seed}")


def evaluate(
    model_dir: str | Path,
    test_path: str | Path,
    plot: str | Path | None = None,
    uncertainty: bool = True,
    report: str | Path | None = None,
    compare: str | None = None,
) -> dict:
    """Metrics (MAE/RMSE of E and F, calibration if the model has sigmas) and a parity PNG.

    Args:
        report: write the HTML report here (:mod:`ffparam.workflows.mlp_report`: per-atom
            energies, uncertainties and errors on the 2-D structure, calibration plot,
            error distribution).
        compare: a force field (System XML, ``.offxml`` or OpenFF name) scored with the
            model and the reference on the test frames; its scores go in
            ``metrics["comparison"]`` (kcal/mol) and the report.
    """
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
    comparison = None
    if compare is not None:
        from ffparam.workflows.mlp_report import compare_on_frames

        comparison = compare_on_frames(potential, test, compare)
        metrics["comparison"] = comparison.to_json(parity=False)
    if report is not None:
        from ffparam.workflows.mlp_report import write_eval_report

        metrics["report"] = str(write_eval_report(report, metrics, pred, test,
                                                  metrics.get("parity_plot"), comparison))
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


__all__ = ["evaluate", "load_training_sets", "md_from_files", "reference_energies",
           "train_model"]
