"""Computed vs experimental liquid properties, before and after a fit (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ffparam.io.atomic import savefig_atomic


def liquids_plot(path: str | Path, liquids: Sequence[dict[str, Any]]) -> Path:
    """Two panels (density g/mL, Hvap kcal/mol): computed (with standard errors) against
    experiment, start force field and fitted, training and held-out liquids marked.

    ``liquids``: rows of :func:`ffparam.liquid.fit_metrics.fit_metrics` (``liquids``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    panels = (("density", "density_exp", "density_{}", "density_{}_error", "density [g/mL]"),
              ("hvap", "hvap_exp_kcal_mol", "hvap_{}_kcal_mol", "hvap_{}_error",
               "Hvap [kcal/mol]"))
    for ax, (_, exp_key, value_key, error_key, title) in zip(axes, panels):
        values = []
        for tag, colour in (("before", "tab:grey"), ("after", "tab:blue")):
            for role, marker in (("train", "o"), ("holdout", "s")):
                rows = [r for r in liquids if r["role"] == role and value_key.format(tag) in r]
                if not rows:
                    continue
                x = [r[exp_key] for r in rows]
                y = [r[value_key.format(tag)] for r in rows]
                e = [r[error_key.format(tag)] for r in rows]
                values += x + y
                label = f"{'start' if tag == 'before' else 'fitted'} ({role})"
                ax.errorbar(x, y, yerr=e, fmt=marker, color=colour, ms=5, capsize=2,
                            label=label, mfc="none" if role == "holdout" else colour)
        if values:
            lo, hi = min(values), max(values)
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_xlabel(f"experiment {title}")
        ax.set_ylabel(f"computed {title}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
