"""Plots for fits and reports (matplotlib, Agg backend, PNG files).

Every function writes one PNG and returns its path; inputs are plain arrays with units
stated in the labels (kcal/mol, degrees).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ffparam.io.atomic import savefig_atomic

STYLES = {
    "reference": {"color": "black", "marker": "o", "linestyle": "-", "linewidth": 1.5},
    "start": {"color": "tab:blue", "marker": "s", "linestyle": "--", "linewidth": 1.2},
    "fitted": {"color": "tab:red", "marker": "^", "linestyle": "-", "linewidth": 1.5},
    "bespoke": {"color": "tab:red", "marker": "^", "linestyle": "-", "linewidth": 1.5},
}


def torsion_profile_plot(path: str | Path, angles: np.ndarray,
                         curves: Mapping[str, np.ndarray], title: str,
                         rmse: Mapping[str, float] | None = None,
                         bands: Mapping[str, np.ndarray] | None = None) -> Path:
    """Relative energy (kcal/mol) vs dihedral angle (degrees) for several curves
    (e.g. reference, start, fitted), sorted by angle. ``bands``: curve name -> standard
    deviation (kcal/mol) per point, drawn as a shaded +/-1 sigma band around that curve
    (the parameter uncertainty propagated to the profile)."""
    path = Path(path)
    order = np.argsort(angles)
    x = np.asarray(angles)[order]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for name, values in curves.items():
        style = STYLES.get(name.split(" ")[0], {})
        label = name if not rmse or name not in rmse else f"{name} (RMSE {rmse[name]:.2f})"
        y = np.asarray(values)[order]
        ax.plot(x, y, label=label, markersize=4, **style)
        if bands and name in bands:
            sigma = np.asarray(bands[name], dtype=float)[order]
            ax.fill_between(x, y - sigma, y + sigma, color=style.get("color", "grey"),
                            alpha=0.2, linewidth=0, label=f"{name} \u00b11\u03c3 (parameters)")
    ax.set_xlabel("dihedral angle (degrees)")
    ax.set_ylabel("relative energy (kcal/mol)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    savefig_atomic(fig, path)
    plt.close(fig)
    return path


def parity_plot(path: str | Path, reference: np.ndarray, predictions: Mapping[str, np.ndarray],
                title: str, unit: str = "kcal/mol") -> Path:
    """Predicted vs reference scatter with the y = x line; RMSE per series in the legend."""
    path = Path(path)
    reference = np.asarray(reference, dtype=float).ravel()
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=110)
    lo, hi = reference.min(), reference.max()
    for name, values in predictions.items():
        values = np.asarray(values, dtype=float).ravel()
        rmse = float(np.sqrt(np.mean((values - reference) ** 2)))
        style = STYLES.get(name.split(" ")[0], {})
        ax.scatter(reference, values, s=10, alpha=0.7, color=style.get("color"),
                   label=f"{name} (RMSE {rmse:.2f})")
        lo, hi = min(lo, values.min()), max(hi, values.max())
    pad = 0.05 * (hi - lo + 1e-9)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linewidth=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"reference ({unit})")
    ax.set_ylabel(f"model ({unit})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    savefig_atomic(fig, path)
    plt.close(fig)
    return path


def history_plot(path: str | Path, objective: np.ndarray, title: str) -> Path:
    """Objective vs iteration (log scale)."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=110)
    values = np.maximum(np.asarray(objective, dtype=float), 1e-16)
    ax.semilogy(np.arange(len(values)), values, marker="o", markersize=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    savefig_atomic(fig, path)
    plt.close(fig)
    return path
