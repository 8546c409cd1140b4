"""Reports: plots (PNG) and the static HTML report with metrics. A leaf: it imports only
units/errors/io, so every box may use it.

The names are imported on first use (PEP 562): matplotlib and jinja2 load only when a
report is made.
"""

from ffparam import lazy_exports

_WHERE = {
    "write_report": "ffparam.report.html",
    "render_report": "ffparam.report.html",
    "torsion_profile_plot": "ffparam.report.plots",
    "parity_plot": "ffparam.report.plots",
    "history_plot": "ffparam.report.plots",
    "conformer_parity_plots": "ffparam.report.validation_plots",
    "torsion_parity_plot": "ffparam.report.validation_plots",
}

__all__ = [
    "conformer_parity_plots",
    "history_plot",
    "parity_plot",
    "render_report",
    "torsion_parity_plot",
    "torsion_profile_plot",
    "write_report",
]

__getattr__ = lazy_exports(__name__, _WHERE)
