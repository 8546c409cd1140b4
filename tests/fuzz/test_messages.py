"""The CLI's error line is one line of printable text whatever the message holds: raw
bytes of a binary file, terminal escape sequences, undecodable argv bytes, newlines."""

from __future__ import annotations

import subprocess
import sys

from ffparam.cli.main import MAX_MESSAGE_CHARS, one_line


def test_control_characters_and_undecodable_bytes_are_escaped():
    raw = b"bad \x00\x1b[2J\xff\xfe end".decode("utf-8", errors="surrogateescape")
    line = one_line(raw)
    assert line.isprintable()
    assert line.encode("utf-8")
    assert "\\x00" in line and "\\x1b" in line and "\\xff" in line and line.endswith("end")


def test_lines_are_joined_and_long_messages_elided():
    assert one_line("first\n\n  second  \nthird") == "first | second | third"
    long = one_line("a" * 5000 + "END")
    assert len(long) <= MAX_MESSAGE_CHARS and long.endswith("END")


def test_binary_file_error_on_stderr_is_valid_printable_utf8(tmp_path):
    (tmp_path / "x.pdb").write_bytes(b"CONECT \x1b[31m\xff\xfe\x80 garbage\n")
    proc = subprocess.run([sys.executable, "-m", "ffparam.cli.main", "energy", "x.pdb"],
                          cwd=tmp_path, capture_output=True, timeout=300)
    assert proc.returncode == 2
    text = proc.stderr.decode("utf-8")  # raises if not valid UTF-8
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].isprintable()


def test_undecodable_argument_bytes_are_escaped(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ffparam.cli.main", "energy", b"C\xffC"],
                          cwd=tmp_path, capture_output=True, timeout=300)
    assert proc.returncode == 2
    line = proc.stderr.decode("utf-8").strip()
    assert line.startswith("error: ") and line.isprintable()
    assert "\\xff" in line or "\\udcff" in line  # escaped by the CLI or by repr()
