"""The ``ffparam`` command: a thin layer over the Python API.

Each command group lives in its own module under ``ffparam.cli`` and exposes
``register(app)``. Errors derived from :class:`~ffparam.errors.FFParamError` are printed
as one line on stderr (no traceback) with their exit code (2 for bad input).
"""

from __future__ import annotations

import importlib
import sys

import typer

from ffparam.errors import FFParamError

COMMAND_MODULES = ("energy", "reference", "fit", "bespoke", "mlp", "liquid")
"""Modules of ``ffparam.cli`` that add commands; a module that does not exist yet is skipped."""

app = typer.Typer(
    name="ffparam",
    help="Build force fields and ML potentials from quantum-mechanical reference data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ffparam.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ffparam.cli.{name}":
                continue
            raise
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning ffparam errors into one-line messages."""
    try:
        result = app(args=argv, standalone_mode=False)
    except FFParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
