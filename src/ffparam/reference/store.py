"""The Store: every reference calculation in one SQLite file, keyed by content.

One row per calculation key (see :func:`ffparam.reference.jobs.job_key`) with its status
(``complete``, ``failed``, ``running``), results in internal units, the error message of a
failure and provenance (package versions, wall time, host). Only the client process writes
(workers return records); the file uses SQLite's write-ahead log, so other processes can
read while the client writes. Results are buffered and committed in one transaction at most
every ``commit_interval`` seconds (and on :meth:`flush`/:meth:`close`): a crash loses at
most that much work, and a committed result is never recomputed. A ``running`` row left by a
killed run is treated as missing.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ffparam.errors import InputError
from ffparam.reference.records import ARRAY_FIELDS, STATUSES, Record, Species

if TYPE_CHECKING:
    from ffparam.reference.jobs import Job

SCHEMA_VERSION = 1
_COLUMNS = (
    "key, status, method, task, molecule_key, name, charge, multiplicity, numbers, bonds, "
    "geometry, energy, data, error, provenance, updated"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    method TEXT NOT NULL,
    task TEXT NOT NULL,
    molecule_key TEXT NOT NULL,
    name TEXT,
    charge INTEGER NOT NULL,
    multiplicity INTEGER NOT NULL,
    numbers BLOB NOT NULL,
    bonds TEXT NOT NULL,
    geometry BLOB NOT NULL,
    energy REAL,
    data BLOB,
    error TEXT,
    provenance TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_molecule ON records (molecule_key, method);
CREATE INDEX IF NOT EXISTS records_status ON records (status);
"""


def _check_store_path(path: Path, readonly: bool) -> None:
    """A store is a regular file (or, unless ``readonly``, a path not there yet) in a
    directory (or one that can be made); SQLite would block on a FIFO."""
    from ffparam.io.files import path_exists, require_file

    if path_exists(path) or readonly:
        require_file(path, "store (SQLite database)")
        return
    for parent in path.parents:
        if path_exists(parent):
            if not parent.is_dir():
                raise InputError(f"cannot create store {path}: {parent} is not a directory")
            return


class Store:
    """SQLite store of :class:`Record` objects (``path`` may be ``:memory:``).

    Args:
        path: database file; created with its folder if missing (unless ``readonly``).
        readonly: open for reading only (safe while another process writes).
        commit_interval: seconds between commits of buffered results.
    """

    def __init__(
        self, path: str | Path = ":memory:", readonly: bool = False, commit_interval: float = 0.5
    ) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.commit_interval = commit_interval
        self._pending: list[tuple] = []
        self._last_commit = time.monotonic()
        self._db = None
        if self.path != ":memory:":
            _check_store_path(Path(self.path), readonly)
        try:
            self._open()
        except (sqlite3.DatabaseError, InputError) as exc:  # another program's file, damaged
            if self._db is not None:
                self._db.close()
                self._db = None
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{self.path} is not a usable ffparam store (SQLite: {exc})") \
                from None

    def _open(self) -> None:
        if self.readonly:
            uri = f"file:{Path(self.path).resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=60.0)
            self._wait_for_schema()
        else:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            tables = {row[0] for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "records" not in tables:  # never add our tables to another's file
                raise InputError(f"{self.path} is another program's SQLite database, not an "
                                 "ffparam store (no records table)")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _wait_for_schema(self, timeout: float = 10.0) -> None:
        """A reader may open the file between its creation and the writer's schema commit:
        an empty database gets up to ``timeout`` s for the records table; a database with
        other tables, or still empty after that, is refused."""
        deadline = time.monotonic() + timeout
        while True:
            tables = {row[0] for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "records" in tables:
                return
            if tables or time.monotonic() > deadline:  # another program's database
                self._db.close()
                self._db = None
                raise InputError(f"{self.path} is not an ffparam store (no records table)")
            time.sleep(0.05)

    # ------------------------------------------------------------------ context
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_db", None) is None:
            return
        if not self.readonly:
            self.flush()
        self._db.close()
        self._db = None

    # ------------------------------------------------------------------ writing
    def put(self, record: Record) -> None:
        """Buffer ``record`` (a computed result); committed within ``commit_interval``."""
        self._pending.append(_row(record))
        if time.monotonic() - self._last_commit >= self.commit_interval:
            self.flush()

    def flush(self) -> None:
        """Commit buffered records in one transaction."""
        if self.readonly or not self._pending:
            self._last_commit = time.monotonic()
            return
        rows, self._pending = self._pending, []
        with _transaction(self._db):
            self._db.executemany(
                f"INSERT OR REPLACE INTO records ({_COLUMNS}) VALUES ({','.join('?' * 16)})",
                rows,
            )
        self._last_commit = time.monotonic()

    def mark_running(self, jobs: Sequence[Job]) -> None:
        """Record ``jobs`` as running (never overwrites a complete record)."""
        self.flush()
        rows = [_running_row(job) for job in jobs]
        with _transaction(self._db):
            self._db.executemany(
                f"INSERT INTO records ({_COLUMNS}) VALUES ({','.join('?' * 16)}) "
                "ON CONFLICT(key) DO UPDATE SET status='running', updated=excluded.updated "
                "WHERE records.status != 'complete'",
                rows,
            )

    # ------------------------------------------------------------------ reading
    def get(self, key: str) -> Record | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Record]:
        """Records for ``keys`` that exist (buffered ones included)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Record] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            cursor = self._db.execute(
                f"SELECT {_COLUMNS} FROM records WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((row[0], _record(row)) for row in cursor)
        wanted = set(keys)
        for row in self._pending:
            if row[0] in wanted:
                found[row[0]] = _record(row)
        return found

    def records(
        self,
        status: str | None = None,
        method: str | None = None,
        molecule_key: str | None = None,
        task_kind: str | None = None,
    ) -> Iterator[Record]:
        """Stored records matching the filters, oldest update first."""
        self.flush()
        clauses, args = [], []
        for column, value in (
            ("status", status),
            ("method", method),
            ("molecule_key", molecule_key),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {_COLUMNS} FROM records{where} ORDER BY updated, key"
        for row in self._db.execute(query, args):
            record = _record(row)
            if task_kind is None or record.task_kind == task_kind:
                yield record

    def counts(self) -> dict[str, int]:
        """Number of records per status."""
        self.flush()
        rows = self._db.execute("SELECT status, COUNT(*) FROM records GROUP BY status")
        return {status: int(n) for status, n in rows}

    def __len__(self) -> int:
        return sum(self.counts().values())

    # ------------------------------------------------------------------ export
    def export_extxyz(self, path: str | Path, **filters) -> int:
        """Write complete records to extended XYZ (eV, Angstrom); returns the frame count."""
        from ffparam.reference.export import write_extxyz

        return write_extxyz(self.records(status="complete", **filters), path)

    def export_json(self, path: str | Path, **filters) -> int:
        """Write records (all statuses) to JSON in internal units; returns the count."""
        from ffparam.reference.export import write_json

        return write_json(self.records(**filters), path)


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


_ARRAY_MAGIC = b"FFA1"


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """float64 arrays -> bytes: ``FFA1``, count, then per array its name and shape, then
    the raw little-endian data of all arrays in order."""
    head = [_ARRAY_MAGIC, struct.pack("<B", len(arrays))]
    data = []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array, dtype="<f8")
        label = name.encode()
        head.append(struct.pack(f"<B{len(label)}sB", len(label), label, array.ndim))
        head.append(struct.pack(f"<{array.ndim}q", *array.shape))
        data.append(array.tobytes())
    return b"".join(head + data)


def unpack_arrays(blob: bytes | None) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`."""
    if not blob:
        return {}
    if blob[:4] != _ARRAY_MAGIC:
        return _unpack_json_header(blob)
    (count,) = struct.unpack_from("<B", blob, 4)
    offset, shapes = 5, []
    for _ in range(count):
        (size,) = struct.unpack_from("<B", blob, offset)
        name = blob[offset + 1 : offset + 1 + size].decode()
        (ndim,) = struct.unpack_from("<B", blob, offset + 1 + size)
        offset += 2 + size
        shape = struct.unpack_from(f"<{ndim}q", blob, offset)
        offset += 8 * ndim
        shapes.append((name, shape))
    arrays = {}
    for name, shape in shapes:
        n = int(np.prod(shape)) if shape else 1
        arrays[name] = np.frombuffer(blob, dtype="<f8", count=n, offset=offset).reshape(shape)
        arrays[name] = arrays[name].astype(np.float64)
        offset += 8 * n
    return arrays


def _unpack_json_header(blob: bytes) -> dict[str, np.ndarray]:
    """Blobs written before the binary header (4-byte length, JSON header, data)."""
    (size,) = struct.unpack_from("<I", blob)
    header = json.loads(blob[4 : 4 + size])
    body = memoryview(blob)[4 + size :]
    return {
        name: np.frombuffer(body[offset : offset + nbytes], dtype=dtype).reshape(shape).copy()
        for name, (dtype, shape, offset, nbytes) in header.items()
    }


@lru_cache(maxsize=64)
def _species_columns(key: str, numbers: tuple[int, ...], bonds: tuple) -> tuple[bytes, str]:
    """(numbers blob, bonds JSON) of a species, computed once per molecule."""
    return np.asarray(numbers, dtype=np.int32).tobytes(), json.dumps(bonds)


def _row(record: Record) -> tuple:
    species = record.species
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in record.arrays().items()}
    numbers, bonds = _species_columns(species.key, species.numbers, species.bonds)
    return (
        record.key,
        record.status,
        record.method,
        record.task,
        species.key,
        species.name,
        species.charge,
        species.multiplicity,
        numbers,
        bonds,
        np.ascontiguousarray(record.geometry, dtype=np.float64).tobytes(),
        record.energy,
        pack_arrays(arrays) if arrays else None,
        record.error,
        json.dumps(record.provenance, default=str) if record.provenance else None,
        time.time(),
    )


def _running_row(job: Job) -> tuple:
    species = job.species
    numbers, bonds = _species_columns(species.key, species.numbers, species.bonds)
    return (
        job.key,
        "running",
        job.method.canonical(),
        job.task.canonical(),
        species.key,
        species.name,
        species.charge,
        species.multiplicity,
        numbers,
        bonds,
        np.ascontiguousarray(job.geometry, dtype=np.float64).tobytes(),
        None,
        None,
        None,
        None,
        time.time(),
    )


def _record(row: tuple) -> Record:
    (
        key,
        status,
        method,
        task,
        molecule_key,
        name,
        charge,
        multiplicity,
        numbers,
        bonds,
        geometry,
        energy,
        data,
        error,
        provenance,
        _updated,
    ) = row
    species = Species(
        numbers=tuple(int(z) for z in np.frombuffer(numbers, dtype=np.int32)),
        charge=int(charge),
        multiplicity=int(multiplicity),
        bonds=tuple(tuple(b) for b in json.loads(bonds)),
        key=molecule_key,
        name=name or "molecule",
    )
    arrays = unpack_arrays(data)
    return Record(
        key=key,
        status=status,
        method=method,
        task=task,
        species=species,
        geometry=np.frombuffer(geometry, dtype=np.float64).reshape(-1, 3).copy(),
        energy=energy,
        error=error,
        provenance=json.loads(provenance) if provenance else {},
        cached=True,
        **{name: arrays[name] for name in ARRAY_FIELDS if name in arrays},
    )
