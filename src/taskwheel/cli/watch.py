"""``--watch``: a listing drawn again every few seconds until Ctrl-C.

On a terminal, a table is redrawn in place (rich's Live display); piped, or as JSON or
CSV, each drawing is printed after the last, a new document each time (JSON on one line
each: JSON lines). Ctrl-C ends the watch with exit code 0.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from taskwheel.cli.output import Format, Output, terminal_console

if TYPE_CHECKING:  # rich is imported when something is drawn (see output.py)
    from rich.console import Console

DEFAULT_INTERVAL = 2.0
LONGEST_INTERVAL = 86_400.0


def pause(seconds: float) -> None:
    """Wait between two drawings (tests replace it: nothing here reads a clock)."""
    time.sleep(seconds)


def watch_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--watch", "watch", type=float, default=None, is_flag=False,
        flag_value=DEFAULT_INTERVAL, metavar="[SECONDS]", callback=_check_interval,
        help=f"Draw the listing again every SECONDS ({DEFAULT_INTERVAL:g} when not given) "
        "until Ctrl-C.",
    )(command)


def _check_interval(
    ctx: click.Context, param: click.Parameter, value: float | None
) -> float | None:
    if value is not None and not (math.isfinite(value) and 0.1 <= value <= LONGEST_INTERVAL):
        raise click.BadParameter(
            f"must be a number of seconds from 0.1 to {LONGEST_INTERVAL:g}, got {value!r}",
            ctx, param)
    return value


def follow(draw: Callable[[Output], None], format: Format, interval: float) -> None:
    """Call ``draw`` with an output every ``interval`` seconds until Ctrl-C."""
    screen = terminal_console()
    try:
        if format is Format.TABLE and screen.is_terminal:
            _redraw_in_place(draw, screen, interval)
        else:
            while True:
                draw(Output(format, console=screen, compact=True))
                pause(interval)
    except KeyboardInterrupt:
        return


def _redraw_in_place(draw: Callable[[Output], None], screen: Console, interval: float) -> None:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    with Live(console=screen, auto_refresh=False) as live:
        while True:
            drawn = io.StringIO()
            canvas = Console(file=drawn, highlight=False, width=screen.width,
                             force_terminal=True)
            draw(Output(Format.TABLE, console=canvas))
            now = datetime.now(UTC).strftime("%H:%M:%S")
            header = Text(f"every {interval:g}s, last at {now} UTC; Ctrl-C to stop",
                          style="dim")
            live.update(Group(header, Text.from_ansi(drawn.getvalue())), refresh=True)
            pause(interval)
