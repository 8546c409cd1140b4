"""Reference jobs on the runtime's executors: the records of in-process execution; a
killed worker's job is retried (process pool and Dask)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from ffparam.chem import Molecule
from ffparam.reference import Store, make_jobs, run_jobs
from ffparam.runtime import LocalExecutor, SerialExecutor


@pytest.fixture(scope="module")
def ethanol() -> Molecule:
    return Molecule.from_smiles("CCO", name="ethanol").generate_conformers(1, seed=7)


@pytest.fixture(scope="module")
def phenacetin() -> Molecule:
    """A 26-atom drug: its GFN2 finite-difference Hessian takes a few seconds."""
    return Molecule.from_smiles("CCOc1ccc(NC(C)=O)cc1", name="phenacetin").generate_conformers(
        1, seed=7
    )


def perturbed(molecule: Molecule, n: int) -> np.ndarray:
    noise = np.random.default_rng(0).normal(scale=0.02, size=(n, molecule.n_atoms, 3))
    return molecule.conformers[0][None] + noise


def test_local_pool_gives_the_records_of_serial_execution(ethanol):
    jobs = make_jobs(ethanol, perturbed(ethanol, 6), "gfn2-xtb", "optimize")
    serial, _ = run_jobs(jobs, Store(), SerialExecutor())
    with LocalExecutor(workers=2) as executor:
        pooled, summary = run_jobs(jobs, Store(), executor)
    assert summary.n_computed == 6 and summary.complete
    for a, b in zip(serial, pooled):
        assert a.key == b.key
        assert a.energy == b.energy  # bitwise: a job's result depends only on its inputs
        np.testing.assert_array_equal(a.final_geometry, b.final_geometry)
    assert len({r.provenance["pid"] for r in pooled}) >= 1
    assert all(r.provenance["pid"] != os.getpid() for r in pooled)


def kill_first_worker_after(executor: LocalExecutor, delay: float, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    while not executor.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    pids = executor.worker_pids()
    if pids:
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])


def test_killed_worker_job_is_retried_and_completes(tmp_path, phenacetin):
    jobs = make_jobs(phenacetin, perturbed(phenacetin, 2), "gfn2-xtb", "hessian")  # seconds
    killed: list[int] = []
    with Store(tmp_path / "k.db") as store, LocalExecutor(workers=1) as executor:
        # kill during the first job: one Hessian takes ~1.3 s on an idle machine, so a
        # later kill lands in the second job and the first record carries the dead pid
        killer = threading.Thread(target=kill_first_worker_after, args=(executor, 0.3, killed))
        killer.start()
        records, summary = run_jobs(jobs, store, executor)
        killer.join()
    assert killed, "the worker was not killed"
    assert executor.worker_deaths == 1
    assert all(r.ok for r in records) and summary.complete and summary.n_computed == 2
    assert killed[0] not in {r.provenance["pid"] for r in records}
    serial, _ = run_jobs(jobs[:1], Store(), SerialExecutor())
    np.testing.assert_array_equal(records[0].hessian, serial[0].hessian)


def _n_executing(dask_worker) -> int:
    return len(dask_worker.state.executing)


def test_dask_local_cluster_matches_serial_and_survives_a_killed_worker(ethanol, phenacetin):
    from ffparam.runtime.dask import DaskExecutor

    jobs = make_jobs(ethanol, perturbed(ethanol, 4), "gfn2-xtb", "gradient")
    slow = make_jobs(phenacetin, phenacetin.conformers, "gfn2-xtb", "hessian")
    serial, _ = run_jobs(jobs, Store(), SerialExecutor())
    with DaskExecutor(workers=1) as executor:
        records, _ = run_jobs(jobs, Store(), executor)
        assert [r.energy for r in records] == [r.energy for r in serial]
        pids = list(executor.client.run(os.getpid).values())

        def kill_once_running() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = executor.client.run(_n_executing)
                if any(busy.values()):
                    break
                time.sleep(0.1)
            time.sleep(0.5)  # mid-job: the Hessian takes seconds
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_once_running)
        killer.start()
        slow_records, slow_summary = run_jobs(slow, Store(), executor)
        killer.join()
    assert slow_summary.complete, slow_summary.text()
    assert slow_records[0].provenance["pid"] != pids[0]  # rescheduled on the new worker
