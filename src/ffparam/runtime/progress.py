"""Rich progress bars for long loops (written to stderr; silent when disabled), and the
hook that lets an :class:`~ffparam.runtime.executor.Executor` drive one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

ProgressHook = Callable[[int, int], None]
"""Called by :meth:`Executor.run` after each item with (items done, items in the run)."""


def make_progress(enabled: bool = True) -> Progress:
    """A Progress with count, bar, elapsed and remaining time on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def progress_task(
    progress: Progress | bool, description: str, total: int | None
) -> Iterator[tuple[Progress, int]]:
    """Yield (progress, task id); starts and stops ``progress`` if given a bool."""
    own = not isinstance(progress, Progress)
    bar = make_progress(bool(progress)) if own else progress
    if own:
        bar.start()
    task = bar.add_task(description, total=total, note="")
    try:
        yield bar, task
    finally:
        if own:
            bar.stop()


def bar_hook(bar: Progress, task: int) -> ProgressHook:
    """A progress hook that shows an executor run on ``task`` of ``bar``."""

    def hook(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return hook
