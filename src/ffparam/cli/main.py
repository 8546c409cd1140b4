"""The ``ffparam`` command: a thin layer over the Python API.

Each command group lives in its own module under ``ffparam.cli`` and exposes
``register(app)``.

Every failure ends in exactly one line on stderr and an exit code, never a traceback:

- a usage error (unknown command or option, a value of the wrong type, a missing argument)
  prints ``error: <what is wrong> (usage: ffparam CMD [OPTIONS] ARGS; see 'ffparam CMD
  --help')`` and exits 2;
- an :class:`~ffparam.errors.FFParamError` prints ``error: <message>`` and exits with its
  code (2 for bad input, 1 for a failed calculation);
- an operating-system failure while running (disk full, permission denied) or running out
  of memory prints ``error: <what failed>`` and exits 1.

The only multi-line output on failure is the help a command group prints when called with
no arguments at all (``ffparam``, ``ffparam mlp``), exit 2. Every message is made one
printable line: newlines are joined, control characters and undecodable bytes are escaped
(``\\x00``), and very long messages are elided in the middle.
"""

from __future__ import annotations

import importlib
import re
import sys

import typer

try:  # typer >= 0.25 vendors click; its exceptions are not click's own
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses the installed click
    from click import exceptions as click_exceptions

from ffparam.errors import FFParamError

NOT_COMMAND_MODULES = ("main", "options")
"""Modules of ``ffparam.cli`` that add no commands; every other one exposes
``register(app)`` and is found by :func:`command_modules` (a new command is a new module)."""

MAX_MESSAGE_CHARS = 600
"""Longest error line printed; longer messages keep their start and end."""

app = typer.Typer(
    name="ffparam",
    help="Build force fields and ML potentials from quantum-mechanical reference data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def command_modules() -> list[str]:
    """Names of the modules of ``ffparam.cli`` that add commands, alphabetical."""
    import pkgutil

    import ffparam.cli

    return sorted(m.name for m in pkgutil.iter_modules(ffparam.cli.__path__)
                  if m.name not in NOT_COMMAND_MODULES and not m.name.startswith("_"))


def _register_commands() -> None:
    for name in command_modules():
        importlib.import_module(f"ffparam.cli.{name}").register(app)


_register_commands()


def _printable_char(char: str) -> str:
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of argv or a file name
        return f"\\x{code - 0xDC00:02x}"
    return repr(char)[1:-1] if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: str) -> str:
    """``text`` as one printable line: lines joined by `` | ``, non-printable characters
    escaped, at most :data:`MAX_MESSAGE_CHARS` characters."""
    parts = [part.strip() for part in str(text).splitlines() if part.strip()]
    line = "".join(_printable_char(c) for c in " | ".join(parts))
    if len(line) > MAX_MESSAGE_CHARS:
        half = MAX_MESSAGE_CHARS // 2 - 3
        line = f"{line[:half]} ... {line[-half:]}"
    return line


def print_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)


def _usage_message(exc: click_exceptions.UsageError) -> str:
    message = exc.format_message()
    if isinstance(exc, click_exceptions.NoSuchOption) and not exc.option_name.startswith("--"):
        command = exc.ctx.command_path if exc.ctx is not None else "ffparam COMMAND"
        message += (" (a SMILES that starts with '-' goes after '--': "
                    f"{command} -- {exc.option_name})")
    ctx = exc.ctx
    if ctx is None:
        return message
    usage = ctx.get_usage().strip()
    usage = usage[len("Usage:"):].strip() if usage.startswith("Usage:") else usage
    usage = re.sub(r"\{(\w+)\}", lambda match: match.group(1).upper(), usage)  # {input}
    return f"{message} (usage: {usage}; see '{ctx.command_path} --help')"


def _os_error_message(exc: OSError) -> str:
    what = exc.strerror or exc.__class__.__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{what}: {' -> '.join(names)}" if names else what


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; every failure becomes one line on stderr and an exit code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="ffparam")
    except FFParamError as exc:
        print_error(str(exc))
        return exc.exit_code
    except click_exceptions.NoArgsIsHelpError as exc:  # help on stdout, as for `ffparam`
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        return exc.exit_code
    except click_exceptions.UsageError as exc:
        print_error(_usage_message(exc))
        return exc.exit_code
    except click_exceptions.ClickException as exc:
        print_error(exc.format_message())
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print_error("out of memory")
        return 1
    except OSError as exc:  # disk full, permission denied... while writing results
        print_error(_os_error_message(exc))
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
