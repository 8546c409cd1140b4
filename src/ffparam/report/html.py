"""The static HTML report of a bespoke run (one file, opens offline).

:func:`write_report` renders ``templates/report.html.j2`` from the run's
:class:`~ffparam.report.bespoke_metrics.BespokeMetrics` (or its dict form, the contents of
``metrics.json``, migrated and checked by ``BespokeMetrics.from_dict``). PNG plots are
embedded as base64 data URIs, so the single file travels. Every section is optional: a
run without rotors, with failed scans or without validation still renders, and the report
says what is missing.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from ffparam.io.atomic import write_text_atomic
from ffparam.report.bespoke_metrics import BespokeMetrics, RotorResult
from ffparam.report.sensitivity import read_sensitivity, sensitivity_table
from ffparam.report.validation_plots import conformer_parity_plots, torsion_parity_plot

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"


def write_report(path: str | Path, metrics: BespokeMetrics | Mapping[str, Any],
                 plots_dir: str | Path | None = None) -> Path:
    """Write the HTML report of ``metrics`` to ``path`` and return ``path``.

    Args:
        path: the HTML file to write (its folder is created).
        metrics: the run's metrics, typed or as plain data.
        plots_dir: folder holding the run's PNG plots (rotor profiles, fit history); plot
            paths in ``metrics`` are looked up relative to the report's folder, then to
            ``plots_dir``. Parity plots drawn from ``metrics`` are written here too
            (a temporary folder when None). Every PNG of the folder appears in the report.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(plots_dir) if plots_dir is not None else Path(scratch)
        html = render_report(metrics, folder, path.parent)
    return write_text_atomic(path, html)


def render_report(metrics: BespokeMetrics | Mapping[str, Any], plots_dir: Path,
                  base_dir: Path) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    if not isinstance(metrics, BespokeMetrics):
        metrics = BespokeMetrics.from_dict(dict(metrics or {}))
    view = ReportView(metrics, Path(plots_dir), Path(base_dir))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=True, undefined=jinja2.ChainableUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["angles"] = format_angles
    return env.get_template(TEMPLATE).render(**view.context())


# ---------------------------------------------------------------------------- formatting
def format_number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits; ``n/a`` for None, NaN and non-numbers."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "n/a"
    if number == 0:
        return "0"
    if abs(number) >= 1e5 or abs(number) < 1e-3:
        return f"{number:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(number))))
    return f"{number:.{decimals}f}"


def format_angles(points: Any) -> str:
    """Grid points ``[[a], [b, c]]`` (degrees) as ``a°, (b°, c°)``."""
    out = []
    for point in points or []:
        values = point if isinstance(point, (list, tuple)) else [point]
        text = ", ".join(f"{_angle(v)}°" for v in values)
        out.append(text if len(values) == 1 else f"({text})")
    return ", ".join(out)


def _angle(value: Any) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:g}"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# ---------------------------------------------------------------------------- view model
class ReportView:
    """Turns :class:`BespokeMetrics` into what the template shows (missing data -> notes)."""

    def __init__(self, metrics: BespokeMetrics, plots_dir: Path, base_dir: Path) -> None:
        self.metrics = metrics
        self.plots_dir = plots_dir
        self.base_dir = base_dir
        self.used_plots: set[Path] = set()
        self.notes: list[str] = []

    def find_plot(self, name: Any) -> Path | None:
        """The file of a plot path from the metrics (absolute, relative to the report's
        folder, to ``plots_dir``, or by file name in ``plots_dir``)."""
        if not name:
            return None
        name = Path(str(name))
        candidates = [name] if name.is_absolute() else [
            self.base_dir / name, self.plots_dir / name, self.plots_dir / name.name]
        return next((c for c in candidates if c.is_file()), None)

    def embed(self, name: Any, what: str) -> str | None:
        """A data URI of the plot, or None with a note saying it is missing."""
        found = self.find_plot(name)
        if found is None:
            if name:
                self.notes.append(f"plot for {what} not found: {name}")
            return None
        self.used_plots.add(found.resolve())
        return _image(found)

    # ------------------------------------------------------------------ sections
    def context(self) -> dict[str, Any]:
        m = self.metrics
        rotors = self.rotors()
        context = {
            "title": f"ffparam bespoke report: {m.molecule.name or m.molecule.smiles}",
            "generated": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "molecule": m.molecule,
            "settings": [(k, v) for k, v in m.settings.items() if v not in (None, [], {}, "")],
            "summary": self.summary(),
            "rotors": rotors,
            "parity": self.parity_plots(),
            "fit": self.fit(),
            "changed": self.changed_parameters(),
            "conformers": self.conformers(),
            "geometry": self.geometry(),
            "md": m.validation.get("md"),
            "populations": m.validation.get("populations"),
            "exports": self.exports(),
            "provenance": self.provenance(),
            "sensitivity": sensitivity_table(read_sensitivity(self.base_dir)),
        }
        context["other_plots"] = self.other_plots()
        context["warnings"] = m.warnings + [n for n in self.notes if n not in m.warnings]
        return context

    def method(self) -> str | None:
        m = self.metrics
        return m.settings.get("method") or m.provenance.method or m.summary.reference

    def summary(self) -> dict[str, Any]:
        m = self.metrics
        start = [r.rmse_start for r in m.rotors if _finite(r.rmse_start) is not None]
        fitted = [r.rmse_fitted for r in m.rotors if _finite(r.rmse_fitted) is not None]
        median_start = _finite(m.summary.median_rmse_start)
        median_fitted = _finite(m.summary.median_rmse_fitted)
        if median_start is None and start:
            median_start = float(np.median(start))
        if median_fitted is None and fitted:
            median_fitted = float(np.median(fitted))
        method = self.method()
        md = m.validation.get("md") or {}
        return {
            "median_rmse_start": median_start, "median_rmse_fitted": median_fitted,
            "n_rotors": len(m.rotors), "n_fitted": len(fitted),
            "reference": f"RMSE vs {method}" if method else "reference method not recorded",
            "reference_note": m.provenance.reference_note,
            "forcefield": m.settings.get("forcefield") or m.provenance.forcefield,
            "method": method,
            "md_stable": md.get("stable") if md else None,
            "n_warnings": len(m.warnings),
            "incomplete": m.summary.incomplete or any(r.missing or r.error for r in m.rotors),
        }

    def rotors(self) -> list[dict[str, Any]]:
        return [self.rotor_row(n, rotor) for n, rotor in enumerate(self.metrics.rotors, 1)]

    def rotor_row(self, n: int, rotor: RotorResult) -> dict[str, Any]:
        row = dataclasses.asdict(rotor)
        row["number"] = n
        row["label"] = ("bond " + "-".join(str(i) for i in rotor.bond) if rotor.bond
                        else f"rotor {n}")
        row["rmse_start"] = _finite(rotor.rmse_start)
        row["rmse_fitted"] = _finite(rotor.rmse_fitted)
        row["rmse_cv"] = _finite(rotor.rmse_cv)
        row["image"] = self.embed(rotor.plot, f"rotor {n}")
        if rotor.delta is not None and rotor.delta.plot:
            row["delta_image"] = self.embed(rotor.delta.plot, f"rotor {n} correction")
        if row["image"] is None and not rotor.plot:
            row["no_plot"] = f"no profile: {rotor.error}" if rotor.error else "no profile plot"
        return row

    def parity_plots(self) -> list[dict[str, str]]:
        plots: list[dict[str, str]] = []
        rotors = [dataclasses.asdict(r) for r in self.metrics.rotors]
        torsion = torsion_parity_plot(self.plots_dir / "torsion_parity.png", rotors)
        if torsion is not None:
            plots.append({"title": "torsion scans, all rotors (kcal/mol)",
                          "image": self.embed(torsion, "torsion parity")})
        conformers = self.metrics.validation.get("conformers")
        if conformers:
            made = conformer_parity_plots(conformers, self.plots_dir)
            titles = {"energy": "held-out conformers: relative energies (kcal/mol)",
                      "force": "held-out conformers: force components (kcal/mol/A)"}
            for key, file in made.items():
                plots.append({"title": titles[key], "image": self.embed(file, key)})
        return plots

    def fit(self) -> dict[str, Any] | None:
        fit = self.metrics.fit
        if fit is None:
            return None
        image = self.embed(fit.plot, "fit history") if fit.plot else None
        return {**dataclasses.asdict(fit), "image": image}

    def changed_parameters(self) -> list[dict[str, Any]]:
        rows = []
        for parameter in self.metrics.changed_parameters:
            row = dataclasses.asdict(parameter)
            start, fitted = _finite(parameter.start), _finite(parameter.fitted)
            row["change"] = None if start is None or fitted is None else fitted - start
            rows.append(row)
        return rows

    def conformers(self) -> dict[str, Any] | None:
        data = self.metrics.validation.get("conformers")
        if not data:
            return None
        systems = data.get("systems") or {}
        names = list(systems)
        delta = None
        if len(names) == 2:
            a, b = (systems[n] for n in names)
            delta = {key: (None if _finite(a.get(key)) is None or _finite(b.get(key)) is None
                           else float(b[key]) - float(a[key]))
                     for key in ("energy_rmse_kcal_mol", "energy_mae_kcal_mol",
                                 "force_rmse_kcal_mol_a", "force_mae_kcal_mol_a")}
        return {**data, "names": names, "delta": delta,
                "delta_label": f"{names[1]} - {names[0]}" if delta else None}

    def geometry(self) -> dict[str, Any] | None:
        data = self.metrics.validation.get("geometry")
        if not data:
            return None
        rows = []
        for name, scores in (data.get("systems") or {}).items():
            relax = [v for v in scores.get("relaxation_energy_kcal_mol") or [] if v is not None]
            all_atom = [v for v in scores.get("all_atom_rmsd_a") or [] if v is not None]
            rows.append({"name": name, **scores,
                         "mean_all_atom_rmsd_a": float(np.mean(all_atom)) if all_atom else None,
                         "mean_relaxation_energy_kcal_mol": float(np.mean(relax))
                         if relax else None})
        return {**data, "rows": rows}

    def exports(self) -> dict[str, Any] | None:
        data = self.metrics.exports
        if not data:
            return None
        rows = []
        for fmt, info in (data.get("formats") or {}).items():
            info = info or {}
            paths = info.get("path") or info.get("paths") or info.get("files") or []
            rows.append({"format": fmt, "files": [paths] if isinstance(paths, str) else
                         list(paths), "max_abs_de": info.get("max_abs_dE",
                                                             info.get("max_abs_de_kcal_mol")),
                         "max_abs_df": info.get("max_abs_df_kcal_mol_A"),
                         "reader": info.get("reader")})
        known = {r["format"] for r in rows}
        files = data.get("files") or {}
        verification = data.get("verification") or {}
        for fmt in list(files) + [f for f in verification if f not in files]:
            if fmt in known:
                continue
            check = verification.get(fmt) or {}
            names = files.get(fmt) or []
            rows.append({"format": fmt, "files": [names] if isinstance(names, str) else
                         list(names), "max_abs_de": check.get("max_abs_de_kcal_mol"),
                         "max_abs_df": check.get("max_abs_df_kcal_mol_A"),
                         "reader": check.get("reader")})
        skipped = data.get("skipped") or {}
        return {"rows": rows, "skipped": skipped, "tolerance": data.get("tolerance_kcal_mol")}

    def provenance(self) -> dict[str, Any]:
        data = self.metrics.provenance
        return {**dataclasses.asdict(data), "packages": sorted(data.packages.items()),
                "timings": [(k.removesuffix("_s"), v) for k, v in data.timings.items()]}

    def other_plots(self) -> list[dict[str, str]]:
        """Every PNG in ``plots_dir`` not shown elsewhere."""
        if not self.plots_dir.is_dir():
            return []
        out = []
        for file in sorted(self.plots_dir.glob("*.png")):
            if file.resolve() in self.used_plots:
                continue
            out.append({"title": file.stem.replace("_", " "), "image": _image(file)})
        return out

