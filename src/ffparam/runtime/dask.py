"""Items on a Dask ``distributed`` cluster; the client records the outcomes.

``DaskExecutor(address)`` connects to a running scheduler (for example one started by
dask-jobqueue's ``SLURMCluster``, see docs/reference.md); ``DaskExecutor()`` starts a
``LocalCluster`` of single-threaded worker processes. When a worker dies, the scheduler
reschedules its task on another worker: a LocalCluster's scheduler allows ``max_retries``
such deaths per item, a remote one its own ``distributed.scheduler.allowed-failures``
(default 3). An item that exhausts them comes back as a ``worker_died`` Failure
(``KilledWorker``), any other cluster error as ``lost``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask.config
from distributed import Client, KilledWorker, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from ffparam.errors import InputError
from ffparam.runtime.executor import Counter, Executor, Failure, R, T, call, check_counts
from ffparam.runtime.progress import ProgressHook
from ffparam.runtime.threads import limit_threads, thread_environment

MESSAGE_CHARACTERS = 500
"""Longest message of a cluster failure."""


class DaskExecutor(Executor):
    """Items on a Dask cluster: ``address`` of a running scheduler, or a new LocalCluster
    of ``workers`` single-threaded worker processes when ``address`` is None."""

    def __init__(self, address: Any = None, workers: int = 2, threads_per_worker: int = 1,
                 max_retries: int = 2) -> None:
        """``address``: scheduler address string, an object with ``scheduler_address``
        (e.g. a dask-jobqueue ``SLURMCluster``), or None for a new LocalCluster."""
        check_counts(workers, threads_per_worker, max_retries)
        address = getattr(address, "scheduler_address", address)
        self.address = address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.max_retries = max_retries
        self._cluster = None
        if address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": max_retries}):
                self._cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env=thread_environment(threads_per_worker),
                )
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout="30s")
            except OSError as exc:
                raise InputError(f"cannot reach Dask scheduler {address}: {exc}") from None
        self.client.register_plugin(_ThreadLimit(threads_per_worker), name="ffparam-threads")

    def run(self, fn: Callable[[T], R], items: Sequence[T],
            progress: ProgressHook | None = None) -> Iterator[tuple[int, R | Failure]]:
        counter = Counter(progress, len(items))
        futures = {self.client.submit(call, fn, item, pure=False): index
                   for index, item in enumerate(items)}
        try:
            for future in as_completed(list(futures)):
                index = futures.pop(future)
                try:
                    _, outcome = future.result()
                except Exception as exc:  # KilledWorker, lost scheduler: record, keep going
                    kind = "worker_died" if isinstance(exc, KilledWorker) else "lost"
                    message = f"dask: {type(exc).__name__}: {exc}"[:MESSAGE_CHARACTERS]
                    outcome = Failure(kind, message)
                future.release()
                yield counter(index, outcome)
        finally:
            for future in futures:  # the caller stopped early
                future.cancel()

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

    def setup(self, worker: Any) -> None:
        limit_threads(self.threads)
