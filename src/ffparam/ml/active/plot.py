"""The learning plot of an active-learning run: force error and uncertainty against the
number of labels."""

from __future__ import annotations

from pathlib import Path

from ffparam.io.atomic import savefig_atomic

_SERIES = (
    ("test_force_mae_mev_a", 0, "test force MAE", "o-"),
    ("valid_force_mae_mev_a", 0, "validation force MAE", "s--"),
    ("fresh", 0, "MAE on the frames chosen (before training)", "^:"),
    ("test_sigma_mean_ev_a", 1, "test mean frame sigma", "o-"),
    ("valid_sigma_mean_ev_a", 1, "validation mean frame sigma", "s--"),
    ("candidates", 1, "largest candidate sigma", "^:"),
)
"""(round.json key, panel, label, style); panel 0 in meV/A, panel 1 in meV/A from eV/A."""


def _value(record: dict, key: str) -> float | None:
    value = record.get(key)
    if key == "fresh" and value:
        return value["force_mae_mev_a"]
    if key == "candidates" and value:
        return 1000 * value["sigma_max_ev_a"]
    if value is None or isinstance(value, dict):
        return None
    return value if key.endswith("mev_a") else 1000 * value


def plot_rounds(rounds: list[dict], path: str | Path) -> Path:
    """Two panels against labels: force errors (meV/A) and uncertainties (meV/A)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for key, panel, label, style in _SERIES:
        points = [(r["n_labels"], _value(r, key)) for r in rounds]
        points = [(n, v) for n, v in points if v is not None]
        if points:
            axes[panel].plot(*zip(*points), style, label=label, ms=4)
    for ax, ylabel in zip(axes, ("force error (meV/A)", "force sigma (meV/A)")):
        ax.set_xlabel("labels")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = savefig_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
