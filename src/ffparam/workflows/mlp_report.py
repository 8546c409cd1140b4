"""The HTML report and the force-field comparison of ``ffparam mlp eval``.

:func:`compare_on_frames` scores a force field (a System XML, an ``.offxml`` or an OpenFF
name, applied to the test molecule as in :mod:`ffparam.ml.delta`), the ML potential and
the reference on the same held-out frames with :func:`ffparam.validate.score_models`
(relative energies, forces; kcal/mol). :func:`write_eval_report` draws the per-atom view
(:mod:`ffparam.ml.interpret`) on the 2-D structure and adds the calibration plot, the error
distribution and the comparison (:mod:`ffparam.report.ml_report`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ffparam.ml.data import MLDataset
from ffparam.ml.interpret import AtomView, atom_view, calibration_curve
from ffparam.ml.potential import Potential, Prediction
from ffparam.units import EV_KCAL_MOL


def compare_on_frames(potential: Potential, test: MLDataset, force_field: str,
                      label: str | None = None):
    """A :class:`~ffparam.validate.models.ModelComparison` of ``force_field`` and
    ``potential`` on the frames of ``test``'s first molecule against its reference
    energies and forces (eV in the file, kcal/mol in the result).

    Raises:
        InputError: a force field that cannot treat the molecule; frames without forces.
    """
    from ffparam.ml.delta import resolve_baseline
    from ffparam.ml.energy_model import PotentialEnergyModel
    from ffparam.validate import score_models

    test.require_energies()
    test.require_forces()
    view_frames = _molecule_frames(test)
    frames = test.subset(view_frames)
    numbers = frames.frame_numbers(0)
    field = resolve_baseline(force_field, frames)
    models = {Path(force_field).name: field.model(numbers),
              label or potential.model_type: PotentialEnergyModel(potential, numbers,
                                                                  uncertainty=False)}
    n_atoms = len(numbers)
    return score_models(models, frames.positions.reshape(-1, n_atoms, 3),
                        frames.energies * EV_KCAL_MOL,
                        frames.forces.reshape(-1, n_atoms, 3) * EV_KCAL_MOL)


def _molecule_frames(data: MLDataset) -> np.ndarray:
    first = data.frame_numbers(0)
    return np.array([i for i in range(len(data))
                     if np.array_equal(data.frame_numbers(i), first)])


def comparison_rows(comparison) -> list[list[str]]:
    """Rows (model, E RMSE, E MAE, F RMSE, F MAE in kcal/mol[/A], or its error) of a
    ModelComparison."""
    def cell(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = [["reference", "0", "0", "0", "0"]]
    for name, s in comparison.models.items():
        if s.error is not None:
            rows.append([name, s.error, "", "", ""])
            continue
        rows.append([name, cell(s.energy_rmse_kcal_mol), cell(s.energy_mae_kcal_mol),
                     cell(s.force_rmse_kcal_mol_a), cell(s.force_mae_kcal_mol_a)])
    return rows


def _metric_table(metrics: dict):
    from ffparam.report.ml_report import ReportTable

    rows = []
    if "energy_mae_mev" in metrics:
        rows.append(["energy (meV)", f"{metrics['energy_mae_mev']:.2f}",
                     f"{metrics['energy_rmse_mev']:.2f}"])
    if "forces_mae_mev_a" in metrics:
        rows.append(["forces (meV/A)", f"{metrics['forces_mae_mev_a']:.2f}",
                     f"{metrics['forces_rmse_mev_a']:.2f}"])
    for key in ("energy_calibration", "forces_calibration"):
        if key in metrics:
            c = metrics[key]
            rows.append([f"{key.split('_')[0]} uncertainty: Spearman(|err|, sigma) / "
                         "miscalibration area", f"{c['spearman']:.2f}",
                         f"{c['miscalibration_area']:.3f}"])
    return ReportTable(f"{metrics['model_type']} on {metrics['test']} "
                       f"({metrics['n_frames']} frames)", ["quantity", "MAE", "RMSE"], rows)


def _atom_maps(view: AtomView) -> list:
    from ffparam.report.ml_report import AtomMap

    maps = []
    if view.energy_mev is not None:
        maps.append(AtomMap("atomic energy", view.energy_mev, "meV", (
            "E_i minus the mean atomic energy of its element in this molecule, averaged over "
            f"the {len(view.frames)} test frames"), diverging=True))
    if view.sigma_mev_a is not None:
        maps.append(AtomMap("per-atom uncertainty", view.sigma_mev_a, "meV/A",
                            "norm of the predicted force sigma, mean over the frames"))
    if view.error_mev_a is not None:
        maps.append(AtomMap("per-atom force error", view.error_mev_a, "meV/A",
                            "|F_pred - F_ref|, mean over the frames"))
    return maps


def _plots(folder: Path, pred: Prediction, test: MLDataset, comparison) -> dict[str, Path]:
    from ffparam.report.ml_report import calibration_plot, error_histogram
    from ffparam.report.validation_plots import conformer_parity_plots

    images: dict[str, Path] = {}
    errors = {"ML": 1000 * (pred.forces - test.forces)} if pred.forces is not None \
        and test.forces is not None else {}
    if errors and pred.forces_sigma is not None:
        expected, observed = calibration_curve(errors["ML"], 1000 * pred.forces_sigma)
        images["force uncertainty calibration: observed vs expected coverage of the "
               "Gaussian intervals, and |error| against predicted sigma"] = calibration_plot(
            folder / "calibration.png", expected, observed, np.abs(errors["ML"]),
            1000 * pred.forces_sigma, "meV/A")
    if comparison is not None:  # every model of the comparison, the ML one included
        reference = comparison.reference_forces_kcal_mol_a
        errors = {name: (forces - reference) * 1000 / EV_KCAL_MOL
                  for name, forces in comparison.forces_kcal_mol_a.items()}
        for kind, path in conformer_parity_plots(comparison, folder).items():
            images[f"force field vs ML vs reference: {kind} parity (kcal/mol)"] = path
    if errors:
        images["distribution of force-component errors"] = error_histogram(
            folder / "errors.png", errors, "meV/A")
    return images


def write_eval_report(path: str | Path, metrics: dict, pred: Prediction, test: MLDataset,
                      parity_plot: str | Path | None = None, comparison=None) -> Path:
    """The HTML report of one evaluation (see the module doc) at ``path``."""
    from ffparam.report.ml_report import PageReport, ReportTable, write_page_report

    view = atom_view(pred, test)
    report = PageReport(f"ffparam mlp eval: {metrics['model_type']}", view.numbers,
                      view.positions, tables=[_metric_table(metrics)],
                      atom_maps=_atom_maps(view))
    if comparison is not None:
        report.tables.append(ReportTable(
            f"force field vs ML vs reference ({comparison.n_conformers} frames)",
            ["model", "E RMSE kcal/mol", "E MAE kcal/mol", "F RMSE kcal/mol/A",
             "F MAE kcal/mol/A"], comparison_rows(comparison),
            "relative energies (mean over the frames removed); all force components"))
    if pred.forces_sigma is None:
        report.notes.append(f"{metrics['model_type']} has no uncertainty: no calibration "
                            "plot or per-atom uncertainty")
    with tempfile.TemporaryDirectory() as scratch:
        if parity_plot is not None:
            report.images["parity: energies and force components"] = Path(parity_plot)
        report.images.update(_plots(Path(scratch), pred, test, comparison))
        return write_page_report(path, report)
