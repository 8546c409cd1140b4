"""What every worker process does first: limit its math libraries' threads and watch its
parent, written once for the process pool, Dask workers and liquid simulations."""

from __future__ import annotations

import os
import sys
import threading
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENMM_CPU_THREADS")
"""Environment variables read by OpenMP, OpenBLAS, MKL (PySCF, numpy, PyTorch) and OpenMM's
CPU platform for their thread counts."""


def thread_environment(threads: int) -> dict[str, str]:
    """The environment that limits a new process to ``threads`` math threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def limit_threads(threads: int) -> None:
    """Limit this (worker) process to ``threads`` threads: the environment of the libraries
    not loaded yet, and the live thread pools of the loaded BLAS/OpenMP libraries
    (threadpoolctl), PySCF and PyTorch."""
    os.environ.update(thread_environment(threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "pyscf" in sys.modules:
        from pyscf import lib

        lib.num_threads(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


def exit_with_parent(parent_pid: int, interval_s: float = 2.0) -> None:
    """Exit this worker once its parent is gone: a spawned pool worker is otherwise
    re-parented when the client is killed, finishes its job for nobody and then waits
    for work forever. Checks every ``interval_s`` seconds from a daemon thread."""

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ffparam-orphan-watch", daemon=True).start()


def worker_init(threads: int, parent_pid: int) -> None:
    """Initializer of a pool worker: thread limits, then the orphaned-worker watch."""
    limit_threads(threads)
    exit_with_parent(parent_pid)
