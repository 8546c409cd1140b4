"""The sensitivity table of a fit (``Sensitivity.to_json()`` of :mod:`ffparam.fit.sensitivity`)
as a :class:`~ffparam.report.ml_report.ReportTable`, shown in the bespoke and ``ffparam fit``
report.html. The workflows write it to ``sensitivity.json`` next to ``report.html``, where
the report reads it (a run without one renders without the section)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ffparam.report.ml_report import ReportTable

CAPTION = (
    "Each cell: how far the target's computed values move (RMS, target unit) when the "
    "parameter moves by one step, and in brackets the signed change of the target's RMSE "
    "(< 0: the step would improve that target). Derivatives from the Jacobian at the "
    "optimum; the step is the parameter's posterior sigma where the fit determines it, "
    "else its prior width, else one internal unit (kcal/mol, Angstrom, radian)."
)


def _cell(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def sensitivity_table(data: Mapping[str, Any] | None) -> ReportTable | None:
    """The table of ``data`` (None for no data): one row per fitted parameter, one column
    per target."""
    if not data or not data.get("parameters"):
        return None
    targets = [f"{t} ({u})" if u else t for t, u in zip(data["targets"], data["units"])]
    rows = []
    for k, label in enumerate(data["parameters"]):
        cells = [f"{_cell(data['shift'][t][k])} ({_cell(data['rmse_change'][t][k], 2)})"
                 for t in range(len(targets))]
        rows.append([label, _cell(data["step"][k], 4), data["step_kind"][k], *cells])
    rmse = ["target RMSE at the optimum", "", "", *(_cell(v) for v in data["rmse"])]
    return ReportTable("Sensitivity: which parameter moves which target",
                       ["parameter", "step", "step is", *targets], [*rows, rmse], CAPTION)


SENSITIVITY_JSON = "sensitivity.json"
"""The file a fit's sensitivities are written to, next to its report.html."""


def read_sensitivity(folder: Path) -> dict[str, Any] | None:
    """``folder/sensitivity.json`` as plain data, None when absent or unreadable (the
    report then has no sensitivity section)."""
    path = Path(folder) / SENSITIVITY_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_sensitivity(folder: Path, data: Mapping[str, Any] | None) -> Path | None:
    """``folder/sensitivity.json`` (``Sensitivity.to_json()``), read by report.html; with no
    data a stale file from an earlier run is removed."""
    from ffparam.io.atomic import write_json_atomic

    path = Path(folder) / SENSITIVITY_JSON
    if data is None:
        path.unlink(missing_ok=True)
        return None
    return write_json_atomic(path, dict(data), indent=2)
