"""Run liquid jobs in parallel: the caller (client) receives each outcome and records it.

* ``workers <= 1`` and no ``dask``: in this process, one after another.
* ``workers > 1``: a pool of ``spawn``ed processes, each limited to ``threads_per_worker``
  math/OpenMM threads. A worker that dies (killed, out of memory) takes its job with it;
  the pool is rebuilt and the job resubmitted (up to ``max_retries`` times) — it resumes
  from its last checkpoint. A worker whose parent dies exits within seconds.
* ``dask``: a scheduler address (``tcp://host:8786``) or ``local`` for a LocalCluster.

Workers only write their own run directories; :func:`run_liquid_jobs` yields
``(job, result, error)`` with exactly one of result / error set, and never raises for a
failed simulation (a NaN, a typing error...): the error is the one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from ffparam.errors import FFParamError, InputError
from ffparam.liquid.job import LiquidJob, simulate_liquid
from ffparam.liquid.properties import LiquidResult
from ffparam.reference.executor import exit_with_parent

Outcome = tuple[LiquidJob, LiquidResult | None, str | None]


def execute(job: LiquidJob) -> tuple[LiquidResult | None, str | None]:
    """Run one job; a failure becomes its one-line message (never raises)."""
    try:
        return simulate_liquid(job), None
    except FFParamError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # job boundary: keep the other liquids running
        text = str(exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {text[0][:400] if text else 'unknown error'}"


def _limit_threads(threads: int) -> None:
    from ffparam.reference.executor import limit_threads

    limit_threads(threads)
    os.environ["OPENMM_CPU_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _worker_init(threads: int, parent_pid: int) -> None:
    _limit_threads(threads)
    exit_with_parent(parent_pid)


def run_liquid_jobs(jobs: Sequence[LiquidJob], workers: int = 1, threads_per_worker: int = 1,
                    dask: str | None = None, max_retries: int = 2) -> Iterator[Outcome]:
    """Yield one outcome per job, in completion order (see the module docstring)."""
    if workers < 1:
        raise InputError("workers must be at least 1")
    if dask:
        yield from _run_dask(jobs, dask, workers, threads_per_worker)
    elif workers == 1 or len(jobs) <= 1:
        for job in jobs:
            result, error = execute(job)
            yield job, result, error
    else:
        yield from _run_pool(jobs, workers, threads_per_worker, max_retries)


def _run_pool(jobs: Sequence[LiquidJob], workers: int, threads: int,
              max_retries: int) -> Iterator[Outcome]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    attempts = {job.key: 0 for job in jobs}
    queue = list(jobs)
    while queue:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(queue)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init,
                                   initargs=(threads, os.getpid()))
        futures = {pool.submit(execute, job): job for job in queue}
        queue = []
        broken = False
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        result, error = future.result()
                    except BrokenProcessPool:
                        broken = True
                        attempts[job.key] += 1
                        if attempts[job.key] > max_retries:
                            yield job, None, (f"worker process died {attempts[job.key]} times "
                                              "running this liquid")
                        else:
                            queue.append(job)
                        continue
                    yield job, result, error
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)


def _run_dask(jobs: Sequence[LiquidJob], address: str, workers: int,
              threads: int) -> Iterator[Outcome]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address.strip().lower() == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None,
                               env={"OMP_NUM_THREADS": str(threads),
                                    "OPENMM_CPU_THREADS": str(threads)})
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise InputError(f"cannot reach Dask scheduler {address}: {exc}") from None
    try:
        futures = {client.submit(execute, job, pure=False): job for job in jobs}
        for future in as_completed(list(futures)):
            job = futures.pop(future)
            try:
                result, error = future.result()
            except Exception as exc:  # KilledWorker, lost scheduler: record, keep going
                result, error = None, f"dask: {type(exc).__name__}: {exc}"[:500]
            yield job, result, error
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
