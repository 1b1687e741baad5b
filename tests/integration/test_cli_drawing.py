"""What the command line draws on a terminal: ``--watch`` redraws a table in place, in
the terminal's width; a long single transaction shows a spinner that turns and is
erased when it ends; piped, nothing is drawn. The terminal is a fake one (a buffer that
says it is a tty, of a chosen width) whose frames the tests read back."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import progress, watch
from waiting import wait_for

from .command_line import taskwheel as run

WIDTH = 120
# A control sequence: colours, cursor moves, line erasures, the cursor hidden or shown.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CURSOR_UP = "\x1b[1A"
ERASE_LINE = "\x1b[2K"
SPINNER_GLYPHS = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def visible(text: str) -> str:
    return CONTROL.sub("", text)


def test_watch_redraws_the_table_in_place_within_the_terminal_s_width(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = FakeTerminal()
    monkeypatch.setattr(watch, "terminal_console", lambda: Console(
        file=screen, width=WIDTH, force_terminal=True, highlight=False))
    send = app.task(lambda: None, name="send")
    send.enqueue()
    pauses: list[float] = []

    def between_drawings(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise KeyboardInterrupt
        send.enqueue()

    monkeypatch.setattr(watch, "pause", between_drawings)

    done = run("jobs", "list", "--watch", "0.5", url=url)

    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""  # everything went to the terminal
    drawn = screen.getvalue()
    # Each drawing but the first starts by going back up over the one before it (the
    # last drawing is drawn once more as the display closes).
    redraws = re.split(r"\r((?:\x1b\[2K\x1b\[1A)*\x1b\[2K)", drawn)
    frames = [visible(part) for part in redraws[0::2]]
    moves_up = [part.count(CURSOR_UP) for part in redraws[1::2]]
    assert len(frames) == 4, frames
    assert [frame.count(" send ") for frame in frames] == [1, 2, 3, 3], frames
    for frame, up in zip(frames, moves_up, strict=False):
        assert frame.startswith("every 0.5s, last at "), frame
        assert "UTC; Ctrl-C to stop" in frame
        lines = frame.rstrip("\n").split("\n")
        assert up == frame.count("\n"), (up, frame)  # in place: over exactly that drawing
        assert max(len(line) for line in lines) <= WIDTH, frame
    assert pauses == [0.5, 0.5, 0.5]


def test_watch_on_a_narrow_terminal_still_fits_each_line(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = FakeTerminal()
    monkeypatch.setattr(watch, "terminal_console", lambda: Console(
        file=screen, width=30, force_terminal=True, highlight=False))
    app.task(lambda: None, name="a_task_with_a_rather_long_name").enqueue()

    def stop(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(watch, "pause", stop)

    done = run("jobs", "list", "--watch", "1", url=url)

    assert done.exit_code == 0, done.stderr
    lines = visible(screen.getvalue()).replace("\r", "\n").split("\n")
    assert max(len(line) for line in lines) <= 30, lines
    assert "a_task" in visible(screen.getvalue())


def terminal_on_stderr(monkeypatch: pytest.MonkeyPatch) -> FakeTerminal:
    """stderr a terminal of ``WIDTH`` columns (in the test itself: pytest's capture
    puts its own stderr back between a fixture's setup and the test)."""
    screen = FakeTerminal()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.setenv("TERM", "xterm")
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    return screen


def test_a_spinner_turns_while_its_block_runs_and_is_erased_when_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = terminal_on_stderr(monkeypatch)
    with progress.working("replaying dead jobs"):
        # The spinner turns on its own (rich's refresh thread): wait for three glyphs.
        wait_for(lambda: len(SPINNER_GLYPHS & set(terminal.getvalue())) >= 3,
                 what="the spinner to turn three times")
        during = terminal.getvalue()
    after = terminal.getvalue()

    assert "replaying dead jobs" in visible(during)
    assert "0:00:0" in visible(during)  # the time taken
    lines = visible(during).replace("\r", "\n").split("\n")
    assert max(len(line) for line in lines) <= WIDTH
    # Erased at the end: the last thing written takes the line back, then the cursor.
    ending = after[after.rindex("replaying dead jobs"):]
    assert "\r" in ending, repr(ending)
    assert ERASE_LINE in ending, repr(ending)
    assert visible(ending.rsplit(ERASE_LINE, 1)[1]).strip() == ""


def test_a_progress_bar_counts_what_is_done_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = terminal_on_stderr(monkeypatch)
    with progress.progress(3_000, "enqueueing") as advance:
        advance(1_000)
        wait_for(lambda: "1000/3000" in terminal.getvalue(), what="the bar to show 1000/3000")
        advance(2_000)
        wait_for(lambda: "3000/3000" in terminal.getvalue(), what="the bar to show 3000/3000")
    assert "enqueueing" in visible(terminal.getvalue())


def test_a_benchmark_s_phases_each_end_as_a_line_while_a_spinner_turns_on_the_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = terminal_on_stderr(monkeypatch)
    with progress.phases("bench") as begin:
        begin("enqueue: 10 jobs")
        begin("drain: 10 jobs")
        wait_for(lambda: len(SPINNER_GLYPHS & set(terminal.getvalue())) >= 2,
                 what="the spinner to turn on the drain")
        during = visible(terminal.getvalue())
    after = visible(terminal.getvalue())

    assert re.search(r"bench: enqueue: 10 jobs \(\d+\.\d s\)", during)  # ended: a line
    assert "drain: 10 jobs" in during
    assert re.search(r"bench: drain: 10 jobs \(\d+\.\d s\)", after)  # the last one too
    assert max(len(line) for line in after.replace("\r", "\n").split("\n")) <= WIDTH


def test_a_benchmark_s_phases_piped_are_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    with progress.phases("bench") as begin:
        begin("enqueue: 10 jobs")
        begin("drain: 10 jobs")
    assert piped.getvalue() == "bench: enqueue: 10 jobs\nbench: drain: 10 jobs\n"


def test_piped_nothing_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    with progress.working("migrating"), progress.progress(10, "enqueueing") as advance:
        advance(10)
    assert piped.getvalue() == ""
