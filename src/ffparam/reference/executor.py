"""Executors: where jobs run. Workers compute; the client (caller) records the results.

* :class:`SerialExecutor` — in this process, one job after another (API default).
* :class:`LocalExecutor` — a pool of ``workers`` processes (``spawn`` start method). If a
  worker process dies (killed, out of memory, segfault), the pool is rebuilt and the jobs
  that were in flight are resubmitted, up to ``max_retries`` times each. A worker whose
  parent dies (kill -9 of the command) exits within seconds instead of waiting forever.
* :class:`~ffparam.reference.dask_executor.DaskExecutor` — a Dask ``distributed``
  cluster: a scheduler ``address`` (``tcp://host:8786``, e.g. from dask-jobqueue on
  SLURM) or a ``LocalCluster``. Dask reschedules the task of a worker that dies on
  another worker (up to the scheduler's ``allowed-failures``); beyond that the job is
  recorded as failed.

``run(jobs)`` yields one :class:`Record` per job in completion order; jobs never raise.
Every worker limits its math libraries to ``threads_per_worker`` threads.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from ffparam.errors import InputError
from ffparam.reference.jobs import Job, execute_job
from ffparam.reference.records import Record

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Set the thread count of OpenMP/BLAS in this (worker) process."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import sys

    if "pyscf" in sys.modules:
        from pyscf import lib

        lib.num_threads(threads)


def exit_with_parent(parent_pid: int, interval_s: float = 2.0) -> None:
    """Exit this worker once its parent is gone: a spawned pool worker is otherwise
    re-parented when the client is killed, finishes its job for nobody and then waits
    for work forever."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ffparam-orphan-watch", daemon=True).start()


def _worker_init(threads: int, parent_pid: int) -> None:
    limit_threads(threads)
    exit_with_parent(parent_pid)


class Executor(ABC):
    """Runs jobs and yields their records as they complete."""

    workers: int = 1

    @abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[Record]:
        """One record per job, in completion order."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release workers (an executor can be reused until closed)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return type(self).__name__


class SerialExecutor(Executor):
    """Runs every job in the calling process."""

    def run(self, jobs: Sequence[Job]) -> Iterator[Record]:
        for job in jobs:
            yield execute_job(job)

    def describe(self) -> str:
        return "in-process"


class LocalExecutor(Executor):
    """A local process pool of ``workers`` processes."""

    def __init__(self, workers: int = 1, threads_per_worker: int = 1, max_retries: int = 2):
        if workers < 1:
            raise InputError("workers must be at least 1")
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.max_retries = max_retries
        self._pool = None
        self.worker_deaths = 0

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.threads_per_worker, os.getpid()),
            )
        return self._pool

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.is_alive()]

    def run(self, jobs: Sequence[Job]) -> Iterator[Record]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        attempts = {job.key: 0 for job in jobs}
        queue = list(jobs)
        while queue:
            pool = self._get_pool()
            futures = {pool.submit(execute_job, job): job for job in queue}
            queue = []
            broken = False
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        attempts[job.key] += 1
                        if attempts[job.key] > self.max_retries:
                            yield job.record(
                                "failed",
                                error=f"worker process died {attempts[job.key]} times "
                                "running this job",
                            )
                        else:
                            queue.append(job)
            if broken:
                self.worker_deaths += 1
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> str:
        return f"{self.workers} local worker process(es)"


def make_executor(
    workers: int | None = None, dask: str | None = None, threads_per_worker: int = 1
) -> Executor:
    """Executor from CLI-style options: ``dask`` = scheduler address or ``local`` (a
    LocalCluster of ``workers``); otherwise a LocalExecutor of ``workers`` (default 1)."""
    if dask:
        address = None if dask.strip().lower() == "local" else dask.strip()
        from ffparam.reference.dask_executor import DaskExecutor

        return DaskExecutor(address, workers=workers or 2, threads_per_worker=threads_per_worker)
    return LocalExecutor(workers=workers or 1, threads_per_worker=threads_per_worker)
