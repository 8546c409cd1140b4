"""The static HTML report of a bespoke run (one file, opens offline).

:func:`write_report` renders ``templates/report.html.j2`` from the run's ``metrics`` dict
(the same numbers as ``metrics.json``). PNG plots are embedded as base64 data URIs, so the
single file travels. Every section is optional: a run without rotors, with failed scans or
without validation still renders, and the report says what is missing.

Metrics schema (all keys optional)::

    molecule: {name, smiles, formula, n_atoms}
    settings: {forcefield, method, charges, spacing, ...}
    summary: {median_rmse_start, median_rmse_fitted, reference, ...}
    rotors: [{bond, dihedral, smirks, n_points, missing, rmse_start, rmse_fitted, mode,
              plot, fragment: {n_atoms, smiles} | None, error, profile: {reference, start,
              fitted}}]
    fit: {objective_before, objective_after, optimizer, wall_time_s, n_iterations}
    changed_parameters: [{section, id, field, start, fitted, unit}]
    validation: {conformers: ConformerValidation.to_json(), geometry: ..., md: ...}
    exports: {formats: {fmt: {path, max_abs_dE}}, skipped: {fmt: reason}}
             or ExportReport.to_dict() ({files, verification, skipped, tolerance_kcal_mol})
    provenance: {ffparam_version, packages, method, timings, reference_note}
    warnings: [str]
"""

from __future__ import annotations

import base64
import datetime
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from ffparam.io.atomic import write_text_atomic
from ffparam.report.validation_plots import conformer_parity_plots, torsion_parity_plot

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"


def write_report(path: str | Path, metrics: Mapping[str, Any],
                 plots_dir: str | Path | None = None) -> Path:
    """Write the HTML report of ``metrics`` to ``path`` and return ``path``.

    Args:
        path: the HTML file to write (its folder is created).
        metrics: the run's metrics (schema in the module docstring).
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


def render_report(metrics: Mapping[str, Any], plots_dir: Path, base_dir: Path) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    view = ReportView(metrics or {}, Path(plots_dir), Path(base_dir))
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
    """Turns the metrics dict into what the template shows (missing data -> notes)."""

    def __init__(self, metrics: Mapping[str, Any], plots_dir: Path, base_dir: Path) -> None:
        self.metrics = metrics
        self.plots_dir = plots_dir
        self.base_dir = base_dir
        self.used_plots: set[Path] = set()
        self.notes: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        value = self.metrics.get(key)
        return default if value is None else value

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
        rotors = self.rotors()
        context = {
            "title": self.title(),
            "generated": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"),
            "molecule": self.get("molecule", {}),
            "settings": self.settings(),
            "summary": self.summary(rotors),
            "rotors": rotors,
            "parity": self.parity_plots(),
            "fit": self.fit(),
            "changed": self.changed_parameters(),
            "conformers": self.conformers(),
            "geometry": self.geometry(),
            "md": self.get("validation", {}).get("md"),
            "exports": self.exports(),
            "provenance": self.provenance(),
        }
        context["other_plots"] = self.other_plots()
        warnings = [str(w) for w in self.get("warnings", [])]
        context["warnings"] = warnings + [n for n in self.notes if n not in warnings]
        return context

    def title(self) -> str:
        molecule = self.get("molecule", {})
        return f"ffparam bespoke report: {molecule.get('name') or molecule.get('smiles') or ''}"

    def settings(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self.get("settings", {}).items()
                if v not in (None, [], {}, "")]

    def method(self) -> str | None:
        return (self.get("settings", {}).get("method") or self.get("provenance", {}).get("method")
                or self.get("summary", {}).get("reference"))

    def summary(self, rotors: list[dict]) -> dict[str, Any]:
        given = self.get("summary", {})
        start = [r["rmse_start"] for r in rotors if r.get("rmse_start") is not None]
        fitted = [r["rmse_fitted"] for r in rotors if r.get("rmse_fitted") is not None]
        median_start = _finite(given.get("median_rmse_start"))
        median_fitted = _finite(given.get("median_rmse_fitted"))
        if median_start is None and start:
            median_start = float(np.median(start))
        if median_fitted is None and fitted:
            median_fitted = float(np.median(fitted))
        method = self.method()
        note = self.get("provenance", {}).get("reference_note")
        md = self.get("validation", {}).get("md") or {}
        return {
            "median_rmse_start": median_start, "median_rmse_fitted": median_fitted,
            "n_rotors": len(rotors), "n_fitted": len(fitted),
            "reference": f"RMSE vs {method}" if method else "reference method not recorded",
            "reference_note": note,
            "forcefield": self.get("settings", {}).get("forcefield")
            or self.get("provenance", {}).get("forcefield"),
            "method": method,
            "md_stable": md.get("stable") if md else None,
            "n_warnings": len(self.get("warnings", [])),
            "incomplete": bool(given.get("incomplete"))
            or any(r.get("missing") or r.get("error") for r in rotors),
        }

    def rotors(self) -> list[dict[str, Any]]:
        out = []
        for n, rotor in enumerate(self.get("rotors", []), start=1):
            if not isinstance(rotor, Mapping):
                continue
            row = dict(rotor)
            row["number"] = n
            bond = rotor.get("bond") or []
            row["label"] = "bond " + "-".join(str(i) for i in bond) if bond else f"rotor {n}"
            row["rmse_start"] = _finite(rotor.get("rmse_start"))
            row["rmse_fitted"] = _finite(rotor.get("rmse_fitted"))
            row["missing"] = list(rotor.get("missing") or [])
            row["smirks"] = list(rotor.get("smirks") or [])
            row["image"] = self.embed(rotor.get("plot"), f"rotor {n}")
            if row["image"] is None and not rotor.get("plot"):
                row["no_plot"] = ("no profile: " + str(rotor["error"])) if rotor.get("error") \
                    else "no profile plot"
            out.append(row)
        return out

    def parity_plots(self) -> list[dict[str, str]]:
        plots: list[dict[str, str]] = []
        torsion = torsion_parity_plot(self.plots_dir / "torsion_parity.png",
                                      self.get("rotors", []))
        if torsion is not None:
            plots.append({"title": "torsion scans, all rotors (kcal/mol)",
                          "image": self.embed(torsion, "torsion parity")})
        conformers = self.get("validation", {}).get("conformers")
        if conformers:
            made = conformer_parity_plots(conformers, self.plots_dir)
            titles = {"energy": "held-out conformers: relative energies (kcal/mol)",
                      "force": "held-out conformers: force components (kcal/mol/A)"}
            for key, file in made.items():
                plots.append({"title": titles[key], "image": self.embed(file, key)})
        return plots

    def fit(self) -> dict[str, Any] | None:
        fit = self.get("fit")
        if not fit:
            return None
        out = dict(fit)
        out["image"] = self.embed(fit.get("plot"), "fit history") if fit.get("plot") else None
        return out

    def changed_parameters(self) -> list[dict[str, Any]]:
        rows = []
        for row in self.get("changed_parameters", []):
            row = dict(row)
            start, fitted = _finite(row.get("start")), _finite(row.get("fitted"))
            row["change"] = None if start is None or fitted is None else fitted - start
            rows.append(row)
        return rows

    def conformers(self) -> dict[str, Any] | None:
        data = self.get("validation", {}).get("conformers")
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
        data = self.get("validation", {}).get("geometry")
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
        data = self.get("exports")
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
        data = self.get("provenance", {})
        timings = data.get("timings") or {}
        return {**data, "packages": sorted((data.get("packages") or {}).items()),
                "timings": [(k.removesuffix("_s"), v) for k, v in timings.items()]}

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

