"""The real ``taskwheel`` command draws its spinner on stderr when stderr is a
terminal (a pseudo-terminal here), erases it when the work is done, and keeps stdout
for the answer; piped, stderr stays empty."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading

import pytest

from .conftest import COMMAND, Project

CONTROL = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
ERASE_LINE = b"\x1b[2K"

COMMANDS = [
    pytest.param(["migrate"], b"migrating", id="migrate"),
    pytest.param(["dlq", "replay", "--all"], b"replaying dead jobs", id="dlq-replay"),
    pytest.param(["dlq", "purge", "--yes"], b"purging dead jobs", id="dlq-purge"),
]


def run_on_a_terminal(project: Project, arguments: list[str]) -> tuple[int, str, bytes]:
    """Exit status, stdout and what was drawn on the terminal that was stderr."""
    leader, follower = pty.openpty()
    drawn = bytearray()

    def read_terminal() -> None:  # read as it is drawn: a full terminal would block it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # closed once read to its end
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [*COMMAND, *arguments], cwd=project.root,
            env={**project.env, "TERM": "xterm", "COLUMNS": "60"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60, check=False)
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    return done.returncode, done.stdout, bytes(drawn)


@pytest.mark.parametrize(("arguments", "description"), COMMANDS)
def test_a_terminal_sees_the_spinner_drawn_then_erased(
    project: Project, arguments: list[str], description: bytes
) -> None:
    status, stdout, drawn = run_on_a_terminal(project, arguments)

    assert status == 0, drawn.decode(errors="replace")
    assert description in drawn
    assert description not in stdout.encode()  # the answer alone on stdout
    # Transient: after the last drawing, the line is taken back and nothing is left.
    ending = drawn[drawn.rindex(description):]
    assert ERASE_LINE in ending, ending
    assert CONTROL.sub(b"", ending.rsplit(ERASE_LINE, 1)[1]).strip() == b""
    lines = CONTROL.sub(b"", drawn).replace(b"\r", b"\n").split(b"\n")
    assert max(len(line.decode()) for line in lines) <= 60


@pytest.mark.parametrize(("arguments", "description"), COMMANDS)
def test_piped_the_spinner_is_not_drawn(
    project: Project, arguments: list[str], description: bytes
) -> None:
    done = project.run(*arguments)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
