"""Command-line interface (thin layer over the Python API): ``ffparam.cli.main:main`` is
the ``ffparam`` command, :data:`app` its typer application.

``app`` is imported on first use (PEP 562): ``python -m ffparam.cli.main`` runs that module
as ``__main__``, so its package must not import it first.
"""

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ffparam.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
