"""report.html of ``ffparam fit``: the targets before and after, the sensitivity table
(:mod:`ffparam.fit.sensitivity`, steps of one Laplace posterior sigma where the fit
determines them) and the fit's plots, in one offline HTML file."""

from __future__ import annotations

from pathlib import Path

from ffparam.errors import InputError
from ffparam.fit.sensitivity import fit_sensitivity
from ffparam.fit.uncertainty import laplace_uncertainty


def _target_table(outcome):
    from ffparam.report.ml_report import ReportTable

    result = outcome.result
    rows = []
    for target in outcome.objective.targets:
        before, after = result.metrics_before[target.name], result.metrics_after[target.name]
        for key in after:
            if key != "objective":
                rows.append([f"{target.name}: {key}", f"{before.get(key, float('nan')):.4g}",
                             f"{after[key]:.4g}"])
    rows.append(["objective", f"{result.objective_before:.4g}", f"{result.objective_after:.4g}"])
    return ReportTable(f"Targets ({result.optimizer})", ["quantity", "start", "fitted"], rows)


def write_fit_report(outdir: Path, outcome, files: dict[str, Path]) -> dict[str, Path]:
    """``sensitivity.json`` and ``report.html`` of a finished spec fit in ``outdir``
    (``outcome``: a :class:`~ffparam.workflows.fit.FitOutcome`; ``files``: its written
    files, the ``plot_*`` PNGs are embedded)."""
    from ffparam.report.ml_report import PageReport, write_page_report
    from ffparam.report.sensitivity import sensitivity_table, write_sensitivity

    objective, x = outcome.objective, outcome.result.x
    try:
        posterior = laplace_uncertainty(objective, x)
    except InputError:  # undetermined: steps fall back to prior widths
        posterior = None
    data = fit_sensitivity(objective, x, posterior).to_json()
    out = {"sensitivity": write_sensitivity(outdir, data)}
    report = PageReport("ffparam fit report", tables=[_target_table(outcome)])
    table = sensitivity_table(data)
    if table is not None:
        report.tables.append(table)
    report.images = {name.removeprefix("plot_"): Path(path) for name, path in files.items()
                     if name.startswith("plot_")}
    out["report"] = write_page_report(outdir / "report.html", report)
    return out
