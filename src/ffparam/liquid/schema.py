"""Schema versions of the liquid JSON files read back (``result.json``, ``fit_state.json``).

Every such file carries ``schema_version``. A file without one was written before the
field existed (version 0) and goes through its module's one migration function; a file
of a newer version than this code knows is refused with one :class:`InputError`.
"""

from __future__ import annotations

from typing import Any

from ffparam.errors import InputError


def schema_version(data: Any, current: int, what: str) -> int:
    """The ``schema_version`` of ``data`` (0 when absent), refusing a newer one.

    Raises:
        InputError: ``data`` is not a mapping, its version is not a non-negative integer,
            or it is newer than ``current``.
    """
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a JSON object, got {type(data).__name__}")
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InputError(f"{what}: schema_version must be a non-negative integer, got "
                         f"{version!r}")
    if version > current:
        raise InputError(f"{what} has schema version {version}, newer than this ffparam "
                         f"reads (up to {current}); update ffparam to read it")
    return version
