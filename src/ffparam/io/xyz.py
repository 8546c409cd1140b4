"""Extended XYZ files read through ASE, after checking what ASE trusts.

ASE believes the atom count on each frame's first line; a negative or huge count makes it
loop or allocate without bound. :func:`check_xyz_counts` walks the frames first (every count
a positive integer with that many lines after it), then :func:`read_extxyz_frames` parses.
"""

from __future__ import annotations

import io
from pathlib import Path

from ffparam.errors import InputError
from ffparam.io.files import read_text


def check_xyz_counts(text: str, name: str) -> int:
    """Number of frames in XYZ ``text``; :class:`InputError` naming the line when a frame's
    atom count is not a positive integer or more lines are announced than follow."""
    lines = text.splitlines()
    i, frames = 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        field = lines[i].split()[0]
        try:
            n = int(field)
        except ValueError:
            raise InputError(f"{name}: line {i + 1} should hold an atom count, "
                             f"not {field[:20]!r}") from None
        if n < 1:
            raise InputError(f"{name}: line {i + 1}: atom count {n} must be positive")
        if n + 2 > len(lines) - i:
            raise InputError(f"{name}: line {i + 1} announces {n} atoms but only "
                             f"{max(len(lines) - i - 2, 0)} lines follow")
        i += n + 2
        frames += 1
    if frames == 0:
        raise InputError(f"{name} holds no frames")
    return frames


def read_extxyz_frames(path: str | Path, index: str | slice = ":", what: str = "extended XYZ "
                       "file") -> list:
    """ASE ``Atoms`` of each selected frame of an extended XYZ file (UTF-8 text, counts
    checked first); a parse failure is one :class:`InputError`."""
    from ase.io import read

    path = Path(path)
    text = read_text(path, what)
    check_xyz_counts(text, path.name)
    try:
        frames = read(io.StringIO(text), index=index, format="extxyz")
    except Exception as exc:  # ASE raises assorted parser exception types
        raise InputError(f"cannot parse {path.name} as extended XYZ: {exc}") from None
    return frames if isinstance(frames, list) else [frames]
