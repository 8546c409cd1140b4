"""Help a person can read in an 80-column terminal: every option name of every command and
group is printed whole, and no line is wider than 80 characters."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ffparam.cli.main import app

WIDTH = 80


def _all_commands(group, path=()):
    """(path, command) of the root, every group and every leaf command."""
    yield path, group
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _all_commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(_all_commands(get_command(app)))


def test_every_command_is_covered():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "bespoke", "liquid", "liquid run", "liquid fit", "mlp train", "sample"} <= names
    assert len(names) >= 16


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "ffparam"
                                                        for p, _ in COMMANDS])
def test_help_shows_every_option_whole_at_80_columns(path, command):
    env = {"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH), "NO_COLOR": "1"}
    result = CliRunner().invoke(app, [*path, "--help"], env=env, terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "…" not in text, text
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not wide, f"lines wider than {WIDTH}: {wide}"
    names = ["--help"] + [opt for param in command.params
                          for opt in (*param.opts, *param.secondary_opts) if opt.startswith("-")]
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), \
            f"`ffparam {' '.join(path)} --help` does not show {name} whole:\n{text}"
