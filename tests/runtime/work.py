"""Module-level functions that the runtime tests run in worker processes (a spawned worker
imports them by name)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ffparam.errors import InputError
from ffparam.runtime.threads import THREAD_VARIABLES


def square(x: int) -> tuple[int, int]:
    """x squared, and the pid of the process that computed it."""
    return x * x, os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"three is not allowed\nsecond line of {x}")
    if x == 4:
        raise InputError("four: a user error keeps its whole message")
    return x * x


def die_once(item: tuple[str, int]) -> tuple[int, int]:
    """Kill this worker process (SIGKILL) the first time an item with a negative value is
    run; its marker file records the dead pid. Returns (|value|, pid)."""
    folder, value = item
    if value < 0:
        marker = Path(folder) / f"died_{value}"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    return abs(value), os.getpid()


def die(_: object) -> None:
    """Kill this worker process, every time."""
    os.kill(os.getpid(), signal.SIGKILL)


def die_on_negative(x: int) -> int:
    """Kill this worker process for a negative x (every time); else x squared."""
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def thread_limits(_: object) -> dict[str, object]:
    """The thread settings a job sees: environment and PyTorch (imported here)."""
    import torch

    seen: dict[str, object] = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    seen["torch"] = torch.get_num_threads()
    return seen


def blas_and_env_threads(_: object) -> tuple[str | None, int]:
    """OMP_NUM_THREADS and the largest live BLAS/OpenMP pool (threadpoolctl) a job sees."""
    import numpy  # noqa: F401  (loads its BLAS)
    from threadpoolctl import threadpool_info

    return os.environ.get("OMP_NUM_THREADS"), max(i["num_threads"] for i in threadpool_info())


def torch_threads_after_limit(threads: int) -> int:
    """PyTorch's thread count after limit_threads in a process that already loaded it."""
    import torch

    from ffparam.runtime import limit_threads

    torch.set_num_threads(1)
    limit_threads(threads)
    return torch.get_num_threads()
