"""A local pool of spawned worker processes that survives the death of a worker.

At most ``workers + 1`` items are in flight at a time (one waits in the pool's queue, so
no worker idles while the client records a result). A worker that dies (killed, out of
memory, segfault) breaks the whole ``ProcessPoolExecutor``: every item in flight fails with
``BrokenProcessPool``, and which of them killed the worker is unknown. The pool is then
rebuilt and those items (the suspects) are run again one at a time, each alone in the pool,
before any other item: an innocent suspect completes, an item that kills its worker again
is charged alone. An item started more than ``max_retries + 1`` times comes back as a
``worker_died`` :class:`Failure`; items that were not in flight are never charged. Workers
are started with ``spawn`` (no forked locks or threads), limit their math threads and exit
within seconds when their client process is gone (:mod:`ffparam.runtime.threads`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from ffparam.runtime.executor import (
    Counter,
    Executor,
    Failure,
    R,
    T,
    call,
    check_counts,
    exception_message,
    worker_died,
)
from ffparam.runtime.progress import ProgressHook
from ffparam.runtime.threads import limit_threads, worker_init


def _broken(future: Future) -> bool:
    return isinstance(future.exception(), BrokenProcessPool)


def _outcome(future: Future, attempts: int) -> object:
    """The item's outcome from its finished future (which never raises here)."""
    exc = future.exception()
    if isinstance(exc, BrokenProcessPool):
        return worker_died(attempts)
    if exc is not None:  # fn, item or result not picklable...: this item only
        return Failure("error", exception_message(exc), attempts)
    return future.result()[1]


def call_with_threads(threads: int, usual: int, fn: Callable, item: object) -> object:
    """``fn(item)`` in a worker with ``threads`` math threads, then back to ``usual``."""
    limit_threads(threads)
    try:
        return fn(item)
    finally:
        limit_threads(usual)


class LocalExecutor(Executor):
    """A local process pool of ``workers`` spawned processes (kept between runs until
    :meth:`close`). A run of fewer items than workers gives each item the threads of the
    idle workers too (``threads_per_worker * (workers // n_items)``): one DFT single point
    on 2 workers uses both cores."""

    def __init__(self, workers: int = 1, threads_per_worker: int = 1,
                 max_retries: int = 2) -> None:
        check_counts(workers, threads_per_worker, max_retries)
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.max_retries = max_retries
        self.worker_deaths = 0
        """Times a dead worker broke the pool (over every run of this executor)."""
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_init,
                initargs=(self.threads_per_worker, os.getpid()),
            )
        return self._pool

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive()]

    def run(self, fn: Callable[[T], R], items: Sequence[T],
            progress: ProgressHook | None = None) -> Iterator[tuple[int, R | Failure]]:
        counter = Counter(progress, len(items))
        threads = self.threads_per_worker * max(1, self.workers // max(1, len(items)))
        if threads > self.threads_per_worker:
            fn = partial(call_with_threads, threads, self.threads_per_worker, fn)
        attempts = [0] * len(items)
        fresh = deque(range(len(items)))
        suspects: deque[int] = deque()
        running: dict[Future, int] = {}
        try:
            while fresh or suspects or running:
                self._submit(fn, items, fresh, suspects, running)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                if any(_broken(future) for future in done):
                    done, _ = wait(running)  # every item in flight fails with the pool
                    self._discard_broken_pool()
                for future in done:
                    index = running.pop(future)
                    attempts[index] += 1
                    if _broken(future) and attempts[index] <= self.max_retries:
                        suspects.append(index)
                        continue
                    yield counter(index, _outcome(future, attempts[index]))
        finally:
            for future in running:  # the caller stopped early: drop what waits
                future.cancel()

    def _submit(self, fn: Callable, items: Sequence, fresh: deque[int], suspects: deque[int],
                running: dict[Future, int]) -> None:
        """Top up the items in flight: a suspect alone when there are suspects, else up to
        ``workers + 1`` fresh items."""
        if suspects:
            if not running:
                index = suspects.popleft()
                running[self._get_pool().submit(call, fn, items[index])] = index
            return
        while fresh and len(running) <= self.workers:
            index = fresh.popleft()
            running[self._get_pool().submit(call, fn, items[index])] = index

    def _discard_broken_pool(self) -> None:
        self.worker_deaths += 1
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> str:
        return f"{self.workers} local worker process(es)"
