"""Crash-safe writing: a staging directory whose files are moved into place only after
every export in it has been verified.

Files are written under ``OUTDIR/.ffparam-export-<basename>-XXXX/`` with their final names, read
back and checked there, and then each is moved to ``OUTDIR`` with :func:`os.replace`
(atomic on one file system). A failure, a crash or a kill before that point leaves
nothing new in ``OUTDIR`` except the hidden staging directory, which the next export of
the same basename removes. The manifest (``<basename>.export.json``) is removed before
the moves and written last, so a manifest always describes a complete, verified set of
files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ffparam.io.atomic import write_text_atomic

STAGING_PREFIX = ".ffparam-export-"


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


class StagingDirectory:
    """A hidden directory inside ``outdir`` for files that are not verified yet.

    Use as a context manager: on an exception the staging directory and everything in
    it are removed; :meth:`publish` moves the staged files into ``outdir``.
    """

    def __init__(self, outdir: str | Path, label: str = "files") -> None:
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        prefix = f"{STAGING_PREFIX}{label}-"
        for stale in self.outdir.glob(f"{prefix}*"):  # left by a killed export of ``label``
            shutil.rmtree(stale, ignore_errors=True)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.outdir))

    def __enter__(self) -> StagingDirectory:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def file(self, name: str) -> Path:
        """Path of staged file ``name`` (a plain file name, no directories)."""
        if Path(name).name != name:
            raise ValueError(f"staged file names have no directory part: {name!r}")
        return self.path / name

    def publish(self, names: list[str], manifest: str | None = None,
                manifest_data: dict[str, Any] | None = None) -> list[Path]:
        """Move staged ``names`` into ``outdir`` (each atomically), then write the
        manifest. The old manifest is removed first, so a crash during the moves leaves
        no manifest rather than one that describes a mix of old and new files."""
        if manifest is not None:
            (self.outdir / manifest).unlink(missing_ok=True)
        published = []
        for name in names:
            target = self.outdir / name
            os.replace(self.file(name), target)
            published.append(target)
        if manifest is not None and manifest_data is not None:
            write_json_atomic(self.outdir / manifest, manifest_data)
        return published

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
