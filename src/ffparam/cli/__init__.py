"""Command-line interface (thin layer over the Python API): ``ffparam.cli.main:main`` is
the ``ffparam`` command, :data:`app` its typer application.

``app`` is imported on first use (PEP 562, :func:`ffparam.lazy_exports`): ``python -m
ffparam.cli.main`` runs that module as ``__main__``, so its package must not import it first.
"""

from ffparam import lazy_exports

__all__ = ["app"]

__getattr__ = lazy_exports(__name__, {"app": "ffparam.cli.main"})
