"""Output files that are either absent, the old version or complete, never half-written.

:func:`atomic_output` hands out a hidden temporary path in the target's folder; when the
``with`` block ends without an exception the file is flushed to disk and renamed over the
target with :func:`os.replace` (atomic on one file system), otherwise it is removed. A
process killed at any moment (SIGKILL, out of memory, power loss after the rename) leaves
at most a hidden ``.NAME.*.tmp.SUFFIX`` file beside the target, never a truncated file under the
target's name.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ffparam.errors import InputError


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; it becomes ``path`` when the block
    succeeds. The temporary name keeps ``path``'s suffix, so writers that choose the format
    by suffix behave the same. Missing parent folders are created.

    Raises:
        InputError: ``path`` is a directory, or a file stands where a parent folder goes.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise InputError(f"cannot write {path}: a file stands where a folder is needed") from exc
    tmp = path.with_name(f".{path.name[:80]}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def savefig_atomic(fig, path: str | Path, **kwargs) -> Path:
    """``fig.savefig`` to ``path`` atomically; the format comes from ``path``'s suffix."""
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for what results hold besides plain data: numpy scalars
    and arrays (as numbers and lists), paths (as strings) and settings/dataclasses with a
    ``to_dict`` (as their dict)."""
    import numpy as np

    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):  # torch tensors and other array types
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (numpy values and paths converted by
    :func:`json_default`; a value that cannot be written raises before anything is)."""
    return write_text_atomic(path, json.dumps(data, indent=indent, default=json_default))
