"""The execution layer on its own: any picklable function over items, in this process, in
a pool of 2 spawned workers and on a Dask LocalCluster; failures come back per item."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffparam.errors import InputError
from ffparam.runtime import Failure, LocalExecutor, SerialExecutor, make_executor
from tests.runtime import work

ROOT = Path(__file__).parents[2]
THREADS = 2
"""Threads per worker of the pooled executors (the test session's own limit is 1)."""


@pytest.fixture(scope="module", params=["in-process", "pool", "dask"])
def executor(request):
    """One executor of each kind, shared by this module's tests."""
    if request.param == "in-process":
        made = SerialExecutor()
    elif request.param == "pool":
        made = LocalExecutor(workers=2, threads_per_worker=THREADS)
    else:
        from ffparam.runtime.dask import DaskExecutor

        made = DaskExecutor(workers=2, threads_per_worker=THREADS)
    with made:
        yield made


def test_function_over_items_gives_each_result_once(executor):
    seen: list[tuple[int, int]] = []
    outcomes = list(executor.run(work.square, list(range(6)),
                                 progress=lambda done, total: seen.append((done, total))))
    assert sorted(i for i, _ in outcomes) == list(range(6))
    assert {i: value for i, (value, _) in outcomes} == {i: i * i for i in range(6)}
    pids = {pid for _, (_, pid) in outcomes}
    assert (pids == {os.getpid()}) == executor.in_process
    assert seen == [(k, 6) for k in range(1, 7)]
    assert list(executor.run(work.square, [])) == []


def test_an_exception_is_that_items_failure_and_the_others_finish(executor):
    outcomes = dict(executor.run(work.fail_on_three, [1, 2, 3, 4, 5]))
    assert {i: outcomes[i] for i in (0, 1, 4)} == {0: 1, 1: 4, 4: 25}
    failed = outcomes[2]
    assert isinstance(failed, Failure) and failed.kind == "error"
    assert failed.message == "ValueError: three is not allowed"  # first line only
    assert "fail_on_three" in failed.traceback
    assert outcomes[3].message == "InputError: four: a user error keeps its whole message"


def test_workers_run_with_the_thread_limits(executor):
    if executor.in_process:
        pytest.skip("in-process items keep the threads of the calling process")
    for _, seen in executor.run(work.thread_limits, [None, None]):  # one item per worker
        assert seen == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2",
                        "MKL_NUM_THREADS": "2", "OPENMM_CPU_THREADS": "2", "torch": THREADS}


def test_a_lone_item_gets_the_idle_workers_threads_and_gives_them_back():
    """LocalExecutor: a run of one item on 2 one-thread workers computes it with 2 threads
    (environment and the live BLAS pool); the next run of 2 items sees 1 thread each."""
    with LocalExecutor(workers=2, threads_per_worker=1) as pool:
        ((_, lone),) = list(pool.run(work.blas_and_env_threads, [None]))
        pair = [seen for _, seen in pool.run(work.blas_and_env_threads, [None, None])]
    assert lone == ("2", 2)
    assert pair == [("1", 1), ("1", 1)]


def test_limit_threads_resets_a_loaded_torch():
    with LocalExecutor(1) as pool:
        ((_, threads),) = list(pool.run(work.torch_threads_after_limit, [3]))
    assert threads == 3


def test_a_killed_worker_item_is_resubmitted_and_completes(tmp_path):
    """Item 2 SIGKILLs its own worker on its first attempt (marker file): the pool is
    rebuilt, the items in flight are resubmitted and every item completes."""
    items = [(str(tmp_path), v) for v in (1, 2, -3, 4, 5)]
    with LocalExecutor(workers=2, max_retries=2) as pool:
        outcomes = dict(pool.run(work.die_once, items))
        assert pool.worker_deaths == 1
        again = dict(pool.run(work.square, [7]))  # the rebuilt pool keeps working
    assert {i: value for i, (value, _) in outcomes.items()} == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}
    dead = int((tmp_path / "died_-3").read_text())
    assert outcomes[2][1] != dead
    assert again[0][0] == 49


def test_exhausted_retries_give_a_worker_died_failure():
    with LocalExecutor(workers=1, max_retries=1) as pool:
        ((index, failure),) = list(pool.run(work.die, [None]))
        assert pool.worker_deaths == 2
    assert index == 0 and isinstance(failure, Failure)
    assert (failure.kind, failure.attempts) == ("worker_died", 2)
    assert failure.message == "worker process died 2 times running this job"


def test_an_item_that_keeps_killing_its_worker_fails_alone():
    """The items in flight when a worker dies are retried one at a time: the item that
    kills its worker every time is charged alone, every other item completes."""
    items = [1, 2, -3, 4, 5, 6, 7]
    with LocalExecutor(workers=2, max_retries=1) as pool:
        outcomes = dict(pool.run(work.die_on_negative, items))
        assert pool.worker_deaths == 2
    failed = outcomes.pop(2)
    assert isinstance(failed, Failure) and (failed.kind, failed.attempts) == ("worker_died", 2)
    assert outcomes == {i: x * x for i, x in enumerate(items) if x > 0}


def test_make_executor_reads_cli_options():
    assert isinstance(make_executor(0), SerialExecutor)
    with make_executor(2, threads_per_worker=3) as pool:
        assert isinstance(pool, LocalExecutor)
        assert (pool.workers, pool.threads_per_worker) == (2, 3)
        assert pool.describe() == "2 local worker process(es)"
    with pytest.raises(InputError, match="workers must be 0"):
        make_executor(-1)
    with pytest.raises(InputError, match="threads_per_worker must be at least 1"):
        make_executor(2, threads_per_worker=0)


CLIENT_WITH_A_POOL = """
import time
from ffparam.runtime import LocalExecutor
executor = LocalExecutor(workers=2)
list(executor.run(abs, [-1, -2, -3]))
print(*executor.worker_pids(), flush=True)
time.sleep(600)
"""


def test_pool_workers_exit_when_their_client_is_killed():
    """kill -9 of the command (the client) must not leave its idle workers waiting for
    work forever."""
    client = subprocess.Popen([sys.executable, "-c", CLIENT_WITH_A_POOL],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workers = [int(pid) for pid in client.stdout.readline().split()]
    assert workers, "the pool started no worker"
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 30.0
    alive = workers
    try:
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [pid for pid in alive if _running(pid)]
        assert not alive, f"workers {alive} outlived their killed client"
    finally:
        for pid in alive:
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """A process with this pid exists (an orphan's zombie is reaped by init at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
