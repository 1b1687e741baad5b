"""``taskwheel enqueue --from-file`` as users run it: from stdin, and with its progress
bar on stderr only when stderr is a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading

from .conftest import APP, COMMAND, Project

LINES = "".join(json.dumps({"task": "add", "args": [n, n]}) + "\n" for n in range(2_500))


def test_stdin_is_read_with_a_dash_and_piped_stderr_stays_empty(project: Project) -> None:
    done = project.run("enqueue", "--from-file", "-", "--app", APP, "--format", "json",
                       input=LINES)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["enqueued"] == 2_500
    assert sorted(job.args[0] for job in project.jobs()) == list(range(2_500))


def test_a_terminal_on_stderr_sees_the_progress_bar_and_stdout_only_the_answer(
    project: Project,
) -> None:
    (project.root / "jobs.jsonl").write_text(LINES)
    leader, follower = pty.openpty()
    drawn = bytearray()

    def read_terminal() -> None:  # read as it is drawn: a full terminal would block it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once read to its end
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [*COMMAND, "enqueue", "--from-file", "jobs.jsonl", "--app", APP],
            cwd=project.root, env={**project.env, "TERM": "xterm"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60, check=False)
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)

    assert done.returncode == 0, drawn.decode(errors="replace")
    assert done.stdout.startswith("enqueued 2500 jobs")
    assert b"enqueueing" in drawn
    assert project.count_jobs() == 2_500
