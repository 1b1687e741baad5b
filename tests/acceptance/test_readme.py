"""The README's examples work as written: its modules are written to files, its commands
run with the real ``taskwheel``, its scripts in a fresh Python process.

Blocks whose first line is ``# <name>.py`` are modules; the quick start's commands and
scripts run in the order a reader follows; the other Python snippets continue
``mymod.py`` and run after ``from mymod import *``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import COMMAND, Project

README = Path(__file__).resolve().parents[2] / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MODULE = re.compile(r"# (\w+\.py)\n")


def blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(README.read_text(encoding="utf-8"))
            if lang == language]


def modules() -> dict[str, str]:
    """The README's modules by file name."""
    found: dict[str, str] = {}
    for body in blocks("python"):
        named = _MODULE.match(body)
        if named:
            found[named.group(1)] = body
    return found


def block_with(language: str, text: str) -> str:
    [found] = [body for body in blocks(language) if text in body]
    return found


def commands(block: str) -> list[list[str]]:
    """The command lines of a shell block, comments dropped."""
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def python(project: Project, script: str, timeout: float = 120) -> None:
    done = subprocess.run([sys.executable, "-c", script], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{script}\n---\n{done.stderr}"


@contextlib.contextmanager
def running(project: Project, arguments: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running ``taskwheel`` command of the README, killed on exit."""
    assert arguments[0] == "taskwheel"
    log = project.root / "readme-worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*COMMAND, *arguments[1:]], cwd=project.root,
                                   env=project.env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # a worker's supervisor and worker process
        process.wait(10)
        print(log.read_text(errors="replace")[-4000:])


def write_modules(project: Project) -> None:
    for name, body in modules().items():
        (project.root / name).write_text(body, encoding="utf-8")


def test_the_quick_start_works_as_written(fresh_project: Project) -> None:
    project = fresh_project
    write_modules(project)
    migrate, worker = commands(block_with("sh", "create the database's schema"))
    assert migrate == ["taskwheel", "migrate"]

    done = project.run(*migrate[1:])
    assert done.returncode == 0, done.stderr
    with running(project, worker):
        python(project, block_with("python", "from mymod import app, send, resize"))

    [welcome] = [job for job in project.jobs() if job.idempotency_key == "welcome:42"]
    assert (welcome.status, welcome.result) == (JobStatus.SUCCEEDED, "sent to a@b.c")
    resized = project.store.list_jobs("default", JobFilter(task="resize", limit=2000))
    assert len(resized) == 1000


def test_the_testing_example_passes_under_pytest(project: Project) -> None:
    """The example test runs with the ``tw`` fixture of the plugin taskwheel installs
    (its ``pytest11`` entry point), in a project of its own."""
    write_modules(project)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_welcome.py"], cwd=project.root, env=project.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_snippets_that_continue_mymod_run_as_written(project: Project) -> None:
    write_modules(project)
    snippets = [body for body in blocks("python")
                if not _MODULE.match(body) and "from mymod import" not in body
                and "from etl import" not in body]
    assert len(snippets) >= 2  # the task context and the schedules
    for snippet in snippets:
        python(project, "from mymod import *\n" + snippet)


def test_the_workflow_example_runs_as_written(project: Project) -> None:
    write_modules(project)
    [worker] = commands(block_with("sh", "taskwheel worker --app etl:app"))
    (project.root / "etl.yaml").write_text(block_with("yaml", "name: etl"), encoding="utf-8")

    with running(project, worker):
        python(project, block_with("python", "from etl import"))
        submitted = project.run("workflows", "submit", "etl.yaml", "--app", "etl:app")

    assert submitted.returncode == 0, submitted.stderr
    runs = project.run_json("workflows", "list")
    assert [run["name"] for run in runs] == ["etl", "etl"]
    assert runs[-1]["status"] == "succeeded"


def test_the_server_example_works_as_written(project: Project) -> None:
    write_modules(project)
    install, create_key, serve = commands(block_with("sh", "taskwheel server --app"))
    assert install[:2] == ["pip", "install"]
    created = project.run(*create_key[1:])
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    port = str(free_port())
    serve = [port if part == "8080" else part for part in serve]
    curls = block_with("sh", "curl -s -X POST").replace("8080", port)
    curls = re.sub(r"^KEY=.*$", f"KEY={key}", curls, flags=re.MULTILINE)
    with running(project, serve):
        wait_for(lambda: listening(int(port)), timeout=30, what="the server to listen")
        done = subprocess.run(["bash", "-euc", curls], cwd=project.root, env=project.env,
                              capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    enqueued, listed = [json.loads(line) for line in
                        done.stdout.replace("}{", "}\n{").splitlines() if line.strip()]
    assert (enqueued["task"], enqueued["args"], enqueued["status"]) == ("send", ["a@b.c"],
                                                                        "queued")
    assert [job["id"] for job in listed["jobs"]] == [enqueued["id"]]
    assert project.store.get_job("default", enqueued["id"]).idempotency_key == "signup:7"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_defaults_file_example_is_accepted_as_written(project: Project) -> None:
    write_modules(project)
    (project.root / "taskwheel.toml").write_text(block_with("toml", "[worker]"),
                                                 encoding="utf-8")

    settings = project.run_json("config")
    listed = project.run("jobs", "list", "--format", "csv")

    assert listed.returncode == 0, listed.stderr
    assert {(row["setting"], row["command"]): row["value"] for row in settings}[
        ("concurrency", "worker")] == 16
