"""A local pool of spawned worker processes that survives the death of a worker.

A worker that dies (killed, out of memory, segfault) breaks the whole
``ProcessPoolExecutor``: every item in flight fails with ``BrokenProcessPool``. The pool is
then rebuilt and those items resubmitted, each at most ``max_retries`` times; an item whose
worker died more often comes back as a ``worker_died`` :class:`Failure`. Workers are
started with ``spawn`` (no forked locks or threads), limit their math threads and exit
within seconds when their client process is gone (:mod:`ffparam.runtime.threads`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

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
from ffparam.runtime.threads import worker_init


class LocalExecutor(Executor):
    """A local process pool of ``workers`` spawned processes (kept between runs until
    :meth:`close`)."""

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
        attempts = [0] * len(items)
        queue = list(range(len(items)))
        while queue:
            pool = self._get_pool()
            futures: dict[Future, int] = {pool.submit(call, fn, items[i]): i for i in queue}
            queue = []
            broken = False
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = futures.pop(future)
                        attempts[index] += 1
                        try:
                            _, outcome = future.result()
                        except BrokenProcessPool:
                            broken = True
                            if attempts[index] <= self.max_retries:
                                queue.append(index)
                                continue
                            outcome = worker_died(attempts[index])
                        except Exception as exc:  # not picklable, ...: this item only
                            outcome = Failure("error", exception_message(exc), attempts[index])
                        yield counter(index, outcome)
            finally:
                for future in futures:  # the caller stopped early: drop what waits
                    future.cancel()
            if broken:
                self.worker_deaths += 1
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> str:
        return f"{self.workers} local worker process(es)"
