"""Checked reading of user-supplied input files.

Every reader of a file a user names goes through :func:`require_file` (it exists and is a
regular file: not a directory, FIFO or device, whose reading would fail or never end) and
:func:`read_text` (UTF-8 text, not binary), so that a wrong file gives one
:class:`~ffparam.errors.InputError` line instead of an ``OSError`` or
``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ffparam.errors import InputError, MissingFileError

MAX_TEXT_BYTES = 2 * 1024**3
"""Largest text input read whole into memory (2 GiB)."""


def path_exists(path: str | Path) -> bool:
    """Whether ``path`` exists; ``False`` (not an exception) for names the operating system
    refuses, such as one longer than a file name may be."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def require_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a :class:`Path` after checking that it is an existing regular file.

    Raises:
        MissingFileError: nothing there.
        InputError: a directory, FIFO, device or socket, or a name the system refuses.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise MissingFileError(f"missing file: {path}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot open {what} {path}: {reason}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path} is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path} is not a regular file (a FIFO, device or socket), "
                         f"not a {what}")
    return path


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of a regular file of at most :data:`MAX_TEXT_BYTES`."""
    path = require_file(path, what)
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InputError(f"{path.name} is {size / 1024**3:.1f} GiB; larger than the "
                         f"{MAX_TEXT_BYTES / 1024**3:.0f} GiB ffparam reads as a {what}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def decode_text(data: bytes, name: str, what: str = "text file") -> str:
    """``data`` decoded as UTF-8 (a byte-order mark is dropped); binary data or another
    encoding is an :class:`InputError` that names the first bad byte by offset."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{name} is UTF-16 text; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{name} is a binary file, not a {what} (NUL byte at offset {nul})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} is not UTF-8 text, not a {what} (byte 0x{data[exc.start]:02x} "
                         f"at offset {exc.start})") from None


def read_text(path: str | Path, what: str = "text file") -> str:
    """The UTF-8 text of a regular file (see :func:`require_file`, :func:`decode_text`)."""
    path = Path(path)
    return decode_text(read_bytes(path, what), path.name, what)


def check_output_dir(path: str | Path) -> Path:
    """``path`` after checking that it is, or can become, a directory: neither it nor a
    folder above it is a file (the check comes before any work is done)."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if path_exists(candidate):
            if not candidate.is_dir():
                what = "is a file" if candidate == path else f"is under the file {candidate}"
                raise InputError(f"output directory {path} {what}; give a directory")
            break
    if len(path.name.encode()) > 255:
        raise InputError(f"output directory name too long ({len(path.name)} characters)")
    return path


def make_output_dir(path: str | Path) -> Path:
    """:func:`check_output_dir`, then create it (with its parents)."""
    path = check_output_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


SAFE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")
"""Characters allowed in a user-chosen name that becomes part of a file name."""


def check_file_name_part(name: str, what: str = "name") -> str:
    """``name`` if it can safely become part of a file name inside an output directory:
    1-100 characters from :data:`SAFE_NAME_CHARS`, not starting with ``.`` (so no ``..``,
    ``/``, hidden or empty names); else :class:`InputError` saying why."""
    bad = sorted({c for c in name if c not in SAFE_NAME_CHARS})
    if not name or len(name) > 100 or name.startswith(".") or bad:
        reason = (f"has {''.join(bad)!r}" if bad else "is empty" if not name
                  else "is longer than 100 characters" if len(name) > 100
                  else "starts with '.'")
        raise InputError(f"{what} {name[:100]!r} {reason}; it names files, so use letters, "
                         "digits, '-', '_', '+' and '.' (not first)")
    return name
