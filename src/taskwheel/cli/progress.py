"""Progress of long operations, drawn on stderr when stderr is a terminal (rich); piped
or redirected, nothing is drawn, so logs and scripts see only the answer.

An operation made of counted steps (the batches of ``enqueue --from-file``) shows a bar;
one that is a single transaction (replaying or purging the dead-letter queue, a
migration) shows a spinner with the time it has taken, since there is nothing to count
without splitting the transaction."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A function to call with how many more of ``total`` items are done."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.advance(task, done)


@contextlib.contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner with ``description`` and the time taken, while the block runs."""
    if not sys.stderr.isatty():
        yield
        return
    spinner = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
    with spinner:
        spinner.add_task(description, total=None)
        yield
