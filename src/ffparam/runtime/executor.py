"""Executors: where work runs. Workers compute; the client (the caller of ``run``) records.

``executor.run(fn, items)`` calls ``fn(item)`` for every item of a sequence and yields
``(index, outcome)`` pairs in completion order, exactly one per item: ``outcome`` is what
``fn`` returned, or a :class:`Failure` when it raised (the exception never reaches the
caller and never stops the other items) or when the worker process running it died more
than ``max_retries`` times. ``fn`` and the items must be picklable (a module-level function)
for the process pool and Dask; they are called with one item each.

* :class:`SerialExecutor` — in this process, one item after another.
* :class:`~ffparam.runtime.pool.LocalExecutor` — ``workers`` spawned processes; a dead
  worker's items are resubmitted on a rebuilt pool.
* :class:`~ffparam.runtime.dask.DaskExecutor` — a Dask ``distributed`` cluster (a scheduler
  address or a LocalCluster); the scheduler reschedules a dead worker's items.

Every worker limits its math libraries (OpenMP, BLAS, PySCF, OpenMM CPU, PyTorch) to
``threads_per_worker`` threads (:mod:`ffparam.runtime.threads`) and exits when its client
is gone. Use an executor in a ``with`` block: ``close()`` releases its workers.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ffparam.errors import FFParamError, InputError
from ffparam.runtime.progress import ProgressHook

T = TypeVar("T")
R = TypeVar("R")

MESSAGE_CHARACTERS = 400
"""Longest first line of an unexpected exception kept in a :class:`Failure` message."""


@dataclass(frozen=True)
class Failure:
    """What an item that gave no result yields instead of one.

    Attributes:
        kind: ``error`` (``fn`` raised), ``worker_died`` (the process running it died more
            than ``max_retries`` times; Dask: ``KilledWorker``) or ``lost`` (the cluster
            lost it: scheduler gone, cancelled).
        message: one line for a record or a log, e.g. ``ValueError: bad input``.
        attempts: times the item was started.
        traceback: the formatted traceback of an ``error`` raised in ``fn`` (else "").
    """

    kind: Literal["error", "worker_died", "lost"]
    message: str
    attempts: int = 1
    traceback: str = ""


def exception_message(exc: BaseException) -> str:
    """One line for an exception: an ffparam error's message as is (written for users),
    any other exception's first line (at most :data:`MESSAGE_CHARACTERS`)."""
    if isinstance(exc, FFParamError):
        return f"{type(exc).__name__}: {exc}"
    text = str(exc).strip().splitlines()
    first = text[0][:MESSAGE_CHARACTERS] if text else "unknown error"
    return f"{type(exc).__name__}: {first}"


def worker_died(attempts: int) -> Failure:
    """The failure of an item whose worker process died on each of ``attempts`` tries."""
    return Failure("worker_died", f"worker process died {attempts} times running this job",
                   attempts)


def call(fn: Callable[[T], R], item: T) -> tuple[bool, R | Failure]:
    """``(True, fn(item))``, or ``(False, Failure)`` when ``fn`` raises an Exception (what
    every executor runs in its workers; KeyboardInterrupt and SystemExit pass)."""
    try:
        return True, fn(item)
    except Exception as exc:  # item boundary: one item's error never stops the others
        return False, Failure("error", exception_message(exc), 1, traceback.format_exc())


class Counter:
    """Counts finished items of one run and calls the progress hook."""

    def __init__(self, hook: ProgressHook | None, total: int) -> None:
        self.hook = hook
        self.total = total
        self.done = 0

    def __call__(self, index: int, outcome: Any) -> tuple[int, Any]:
        self.done += 1
        if self.hook is not None:
            self.hook(self.done, self.total)
        return index, outcome


class Executor(ABC):
    """Runs a picklable function over items and yields each outcome as it completes.

    Attributes:
        workers: processes (or Dask workers) that run items at the same time.
        threads_per_worker: math-library threads of each worker process.
        max_retries: resubmissions of an item whose worker process died.
    """

    workers: int = 1
    threads_per_worker: int = 1
    max_retries: int = 2
    in_process: bool = False
    """True when items run in the calling process (no worker processes)."""

    @abstractmethod
    def run(self, fn: Callable[[T], R], items: Sequence[T],
            progress: ProgressHook | None = None) -> Iterator[tuple[int, R | Failure]]:
        """``(index into items, fn(item) or Failure)`` per item, in completion order;
        ``progress(done, total)`` is called as each item finishes."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the workers (an executor can be reused until closed)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """Where items run, in words (for logs and reports)."""
        return type(self).__name__


class SerialExecutor(Executor):
    """Runs every item in the calling process, one after another (no thread limits: the
    process keeps its own)."""

    in_process = True

    def run(self, fn: Callable[[T], R], items: Sequence[T],
            progress: ProgressHook | None = None) -> Iterator[tuple[int, R | Failure]]:
        counter = Counter(progress, len(items))
        for index, item in enumerate(items):
            _, outcome = call(fn, item)
            yield counter(index, outcome)

    def describe(self) -> str:
        return "in-process"


def check_counts(workers: int, threads_per_worker: int, max_retries: int) -> None:
    """InputError unless workers and threads are at least 1 and retries at least 0."""
    for name, value, low in (("workers", workers, 1),
                             ("threads_per_worker", threads_per_worker, 1),
                             ("max_retries", max_retries, 0)):
        if value < low:
            raise InputError(f"{name} must be at least {low}, got {value}")


def make_executor(workers: int = 1, dask: str | None = None, threads_per_worker: int = 1,
                  max_retries: int = 2) -> Executor:
    """Executor from CLI-style options.

    ``dask``: a scheduler address (``tcp://host:8786``) or ``local`` for a LocalCluster of
    ``workers`` processes (2 when ``workers`` is 0). Otherwise ``workers`` local processes,
    or this process when ``workers`` is 0.
    """
    if workers < 0:
        raise InputError(f"workers must be 0 (in this process) or more, got {workers}")
    if dask and dask.strip():
        from ffparam.runtime.dask import DaskExecutor

        address = None if dask.strip().lower() == "local" else dask.strip()
        return DaskExecutor(address, workers=workers or 2,
                            threads_per_worker=threads_per_worker, max_retries=max_retries)
    if workers == 0:
        return SerialExecutor()
    from ffparam.runtime.pool import LocalExecutor

    return LocalExecutor(workers, threads_per_worker, max_retries)
