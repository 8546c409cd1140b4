"""Runtime: one way to run work. An :class:`Executor` runs any picklable function over
items, in this process, in a local pool of spawned processes or on a Dask cluster, and
yields ``(index, result or Failure)`` as items complete (see :mod:`ffparam.runtime.executor`).

* :func:`make_executor` — from CLI-style options (workers, dask, threads_per_worker).
* :class:`SerialExecutor`, :class:`LocalExecutor`, ``DaskExecutor``
  (``ffparam.runtime.dask``, imported on use: it loads ``distributed``).
* :class:`Failure` — what an item that raised, or whose worker kept dying, yields.
* :func:`limit_threads`, :func:`exit_with_parent` — what every worker does first.
* :func:`make_progress`, :func:`progress_task`, :func:`bar_hook` — rich progress bars.
"""

from ffparam.runtime.executor import Executor, Failure, SerialExecutor, make_executor
from ffparam.runtime.pool import LocalExecutor
from ffparam.runtime.progress import ProgressHook, bar_hook, make_progress, progress_task
from ffparam.runtime.threads import exit_with_parent, limit_threads

__all__ = [
    "Executor",
    "Failure",
    "LocalExecutor",
    "ProgressHook",
    "SerialExecutor",
    "bar_hook",
    "exit_with_parent",
    "limit_threads",
    "make_executor",
    "make_progress",
    "progress_task",
]
