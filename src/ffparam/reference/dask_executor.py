"""Dask executor: jobs on a ``distributed`` cluster; the client records results.

``DaskExecutor(address)`` connects to a running scheduler (for example one started by
dask-jobqueue's ``SLURMCluster``, see docs/reference.md); ``DaskExecutor()`` starts a
``LocalCluster`` of single-threaded worker processes. When a worker dies, the scheduler
reschedules its task on another worker (up to ``distributed.scheduler.allowed-failures``,
default 3); a job that exhausts that is recorded as failed (``KilledWorker``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from distributed import Client, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from ffparam.errors import InputError
from ffparam.reference.executor import THREAD_VARIABLES, Executor, limit_threads
from ffparam.reference.jobs import Job, execute_job
from ffparam.reference.records import Record


class DaskExecutor(Executor):
    """Jobs on a Dask cluster: ``address`` of a running scheduler, or a new LocalCluster
    of ``workers`` single-threaded worker processes when ``address`` is None."""

    def __init__(self, address=None, workers: int = 2, threads_per_worker: int = 1):
        """``address``: scheduler address string, an object with ``scheduler_address``
        (e.g. a dask-jobqueue ``SLURMCluster``), or None for a new LocalCluster."""
        address = getattr(address, "scheduler_address", address)
        self.address = address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self._cluster = None
        env = {name: str(threads_per_worker) for name in THREAD_VARIABLES}
        if address is None:
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=env,
            )
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout="30s")
            except OSError as exc:
                raise InputError(f"cannot reach Dask scheduler {address}: {exc}") from None
        self.client.register_plugin(_ThreadLimit(threads_per_worker), name="ffparam-threads")

    def run(self, jobs: Sequence[Job]) -> Iterator[Record]:
        futures = {}
        for job in jobs:
            future = self.client.submit(execute_job, job, pure=False)
            futures[future] = job
        for future in as_completed(list(futures)):
            job = futures.pop(future)
            try:
                yield future.result()
            except Exception as exc:  # KilledWorker, lost scheduler: record, keep going
                yield job.record("failed", error=f"dask: {type(exc).__name__}: {exc}"[:500])
            future.release()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> str:
        where = self.address or f"LocalCluster of {self.workers} worker(s)"
        return f"Dask ({where})"


class _ThreadLimit(WorkerPlugin):
    """Dask worker plugin that applies :func:`limit_threads` on every (new) worker."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def setup(self, worker) -> None:
        limit_threads(self.threads)
