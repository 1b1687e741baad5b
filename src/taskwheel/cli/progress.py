"""Progress of long operations, drawn on stderr when stderr is a terminal (rich); piped
or redirected, nothing is drawn, so logs and scripts see only the answer.

An operation made of counted steps (the batches of ``enqueue --from-file``) shows a bar;
one that is a single transaction (replaying or purging the dead-letter queue, a
migration) shows a spinner with the time it has taken, since there is nothing to count
without splitting the transaction; one made of phases (a benchmark) shows each phase
done and a spinner on the one under way (piped: a line per phase)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when something is drawn (see output.py)
    from rich.progress import TaskID


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A function to call with how many more of ``total`` items are done."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    spinner = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
    with spinner:
        spinner.add_task(description, total=None)
        yield


@contextlib.contextmanager
def phases(prefix: str) -> Iterator[Callable[[str], None]]:
    """A function to call as each phase begins: on a terminal, the phase before is left
    as a line with the time it took and a spinner turns on the new one; piped, each
    phase is one line ``<prefix>: <phase>`` on stderr, as a log reads it."""
    if not sys.stderr.isatty():
        def line(phase: str) -> None:
            print(f"{prefix}: {phase}", file=sys.stderr, flush=True)

        yield line
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    spinner = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True, refresh_per_second=4)
    current: list[tuple[TaskID, str, float]] = []  # the phase under way, once one began

    def end() -> None:
        task, phase, began = current.pop()
        spinner.remove_task(task)
        spinner.console.print(f"{prefix}: {phase} [dim]({time.monotonic() - began:.1f} s)[/dim]",
                              highlight=False)

    def begin(phase: str) -> None:
        if current:
            end()
        current.append((spinner.add_task(phase, total=None), phase, time.monotonic()))

    with spinner:
        yield begin
        if current:
            end()
