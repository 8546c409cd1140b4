"""Rich progress bars for long loops (written to stderr; silent when disabled)."""

from __future__ import annotations

from collections.abc import Iterator
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
