"""One-page HTML reports: ``ffparam mlp eval`` (metrics, parity, calibration and error
distribution plots, per-atom quantities drawn on the 2-D structure) and ``ffparam fit``
(its tables, e.g. the sensitivity table of :mod:`ffparam.report.sensitivity`, and plots).

Inputs are plain numbers and arrays (this box imports nothing of ``ml``): per-atom values
(:class:`AtomMap`) are drawn on an RDKit 2-D depiction of the molecule (bonds perceived from
the 3-D geometry), atoms coloured on a shared scale with a colour bar. Plots are embedded as
data URIs and structures as inline SVG, so the single HTML file opens offline.
"""

from __future__ import annotations

import base64
import datetime
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from ffparam.io.atomic import savefig_atomic, write_text_atomic

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "ml_report.html.j2"


@dataclass
class AtomMap:
    """One value per atom, drawn on the structure.

    Attributes:
        title: heading of the drawing.
        values: (n_atoms,) in ``unit``.
        unit: unit label of the colour bar.
        caption: what the values are.
        diverging: centre the colour scale on zero (signed values) instead of 0..max.
    """

    title: str
    values: np.ndarray
    unit: str
    caption: str = ""
    diverging: bool = False


@dataclass
class ReportTable:
    """A table: ``header`` and ``rows`` of already formatted cells."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""


@dataclass
class PageReport:
    """Everything a one-page report (``mlp eval``, ``ffparam fit``) shows.

    Attributes:
        title: page title.
        numbers, positions: atomic numbers (n_atoms,) and one geometry (n_atoms, 3)
            Angstrom of the molecule the atom maps belong to (None: no atom maps).
        tables: metric tables, in order.
        images: caption -> PNG path, in order.
        atom_maps: per-atom drawings.
        notes: one-line remarks.
    """

    title: str
    numbers: np.ndarray | None = None
    positions: np.ndarray | None = None
    tables: list[ReportTable] = field(default_factory=list)
    images: dict[str, Path] = field(default_factory=dict)
    atom_maps: list[AtomMap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _molecule_2d(numbers: np.ndarray, positions: np.ndarray):
    """An RDKit molecule with bonds perceived from the geometry and 2-D coordinates
    (atom order kept; a geometry RDKit cannot bond is drawn without bonds)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdDepictor, rdDetermineBonds

    lines = [str(len(numbers)), ""]
    lines += [f"{Chem.GetPeriodicTable().GetElementSymbol(int(z))} {x:.6f} {y:.6f} {w:.6f}"
              for z, (x, y, w) in zip(numbers, positions)]
    mol = Chem.MolFromXYZBlock("\n".join(lines) + "\n")
    RDLogger.DisableLog("rdApp.*")
    try:
        rdDetermineBonds.DetermineConnectivity(mol)
    except Exception:  # an odd geometry is still drawn, without bonds
        mol = Chem.MolFromXYZBlock("\n".join(lines) + "\n")
    finally:
        RDLogger.EnableLog("rdApp.*")
    mol.UpdatePropertyCache(strict=False)
    rdDepictor.Compute2DCoords(mol)
    return mol


def _norm(atom_map: AtomMap):
    from matplotlib.colors import Normalize, TwoSlopeNorm

    values = np.asarray(atom_map.values, dtype=float)
    if atom_map.diverging:
        span = max(float(np.abs(values).max()), 1e-12)
        return TwoSlopeNorm(0.0, -span, span), "coolwarm"
    return Normalize(0.0, max(float(values.max()), 1e-12)), "viridis"


def structure_svg(mol, atom_map: AtomMap, size: tuple[int, int] = (360, 280)) -> str:
    """SVG of ``mol`` (from :func:`_molecule_2d`) with each atom coloured by its value and
    labelled with its index."""
    from matplotlib import colormaps
    from rdkit.Chem.Draw import rdMolDraw2D

    norm, cmap_name = _norm(atom_map)
    cmap = colormaps[cmap_name]
    colours = {i: tuple(float(c) for c in cmap(norm(v))[:3])
               for i, v in enumerate(np.asarray(atom_map.values, dtype=float))}
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    options = drawer.drawOptions()
    options.addAtomIndices = True
    options.clearBackground = False
    drawer.DrawMolecule(mol, highlightAtoms=list(colours), highlightAtomColors=colours,
                        highlightBonds=[], highlightAtomRadii=dict.fromkeys(colours, 0.45))
    drawer.FinishDrawing()
    text = drawer.GetDrawingText()
    return text[text.index("<svg"):]  # inline: without the XML declaration


def colorbar_uri(atom_map: AtomMap) -> str:
    """A horizontal colour bar of ``atom_map``'s scale as a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    norm, cmap_name = _norm(atom_map)
    fig, ax = plt.subplots(figsize=(3.6, 0.55), dpi=110)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps[cmap_name]), cax=ax,
                 orientation="horizontal", label=atom_map.unit)
    fig.subplots_adjust(left=0.05, right=0.95, bottom=0.55, top=0.95)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def calibration_plot(path: str | Path, expected: np.ndarray, observed: np.ndarray,
                     abs_errors: np.ndarray, sigmas: np.ndarray, unit: str,
                     n_bins: int = 10) -> Path:
    """Two panels: observed vs expected fraction of errors inside the central Gaussian
    intervals (the calibration curve), and the mean |error| against the predicted sigma in
    ``n_bins`` quantile bins of sigma (the diagonal sqrt(2/pi) sigma is perfect
    calibration for Gaussian errors). ``abs_errors`` and ``sigmas`` in ``unit``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    abs_errors, sigmas = np.ravel(abs_errors), np.ravel(sigmas)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.8), dpi=110)
    left.plot(expected, observed, color="tab:blue", label="model")
    left.plot([0, 1], [0, 1], "k--", lw=0.8, label="calibrated")
    left.fill_between(expected, expected, observed, color="tab:blue", alpha=0.2)
    left.set_xlabel("expected fraction inside interval")
    left.set_ylabel("observed fraction")
    left.legend(fontsize=8)
    order = np.argsort(sigmas)
    bins = [b for b in np.array_split(order, min(n_bins, len(order))) if len(b)]
    mean_sigma = np.array([sigmas[b].mean() for b in bins])
    mean_error = np.array([abs_errors[b].mean() for b in bins])
    right.scatter(sigmas, abs_errors, s=2, alpha=0.15, color="grey")
    right.plot(mean_sigma, mean_error, "o-", color="tab:red", label="binned mean |error|")
    top = max(mean_sigma.max(), 1e-12)
    right.plot([0, top], [0, np.sqrt(2 / np.pi) * top], "k--", lw=0.8,
               label=r"$\sqrt{2/\pi}\,\sigma$ (calibrated)")
    right.set_xlabel(f"predicted sigma ({unit})")
    right.set_ylabel(f"|error| ({unit})")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = savefig_atomic(fig, path)
    plt.close(fig)
    return Path(path)


def error_histogram(path: str | Path, errors: Mapping[str, np.ndarray], unit: str,
                    bins: int = 60) -> Path:
    """Histograms of signed errors (one series per name) in ``unit``, log counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=110)
    span = max(float(np.abs(np.ravel(e)).max()) for e in errors.values()) or 1.0
    edges = np.linspace(-span, span, bins + 1)
    for name, values in errors.items():
        ax.hist(np.ravel(values), bins=edges, histtype="step", lw=1.4, label=name)
    ax.set_yscale("log")
    ax.set_xlabel(f"error ({unit})")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = savefig_atomic(fig, path)
    plt.close(fig)
    return Path(path)


def _image_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def render_page_report(report: PageReport) -> str:
    """The report's HTML text."""
    drawings = []
    if report.atom_maps and report.numbers is not None:
        mol = _molecule_2d(np.asarray(report.numbers), np.asarray(report.positions))
        drawings = [{"title": m.title, "caption": m.caption, "svg": structure_svg(mol, m),
                     "colorbar": colorbar_uri(m)} for m in report.atom_maps]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=True)
    return env.get_template(TEMPLATE).render(
        title=report.title, tables=report.tables, notes=report.notes, drawings=drawings,
        images=[(caption, _image_uri(p)) for caption, p in report.images.items()],
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_page_report(path: str | Path, report: PageReport) -> Path:
    """Write the report to ``path`` (atomically) and return it."""
    return write_text_atomic(path, render_page_report(report))
