"""The README's examples work as written: its modules are written to files, its commands
run with the real ``taskwheel``, its scripts in a fresh Python process.

Blocks whose first line is ``# <name>.py`` are modules; the quick start's commands and
scripts run in the order a reader follows; the other Python snippets continue
``mymod.py`` and run after ``from mymod import *``.

The Python examples that make jobs, schedules or workflow runs also run under the
in-process test mode (`taskwheel.testing`, the ``tw`` fixture), whose clock the test
moves: what they enqueue runs, and each ends as the README says. A statement that waits
for a job or a run (``.result(...)``) is preceded by a minute of the test's clock, in
which everything that falls due runs -- what a worker would have done meanwhile.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import taskwheel
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import sqlite_path
from taskwheel.testing import InProcess
from taskwheel.workflows import RunStatus
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


# -- under the in-process test mode ----------------------------------------------------------

README_MODULES = ("mymod", "etl")


@pytest.fixture
def mymod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The README's modules, imported afresh from a directory of their own (whose
    default database, ./taskwheel.db, nothing here opens: the harness replaces it)."""
    root = tmp_path / "readme"
    root.mkdir()
    for name, body in modules().items():
        (root / name).write_text(body, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    monkeypatch.delenv("TASKWHEEL_DATABASE_URL", raising=False)
    for name in README_MODULES:
        sys.modules.pop(name, None)
    try:
        yield importlib.import_module("mymod")
    finally:
        for name in README_MODULES:
            sys.modules.pop(name, None)


@pytest.fixture
def taskwheel_app(mymod: ModuleType) -> taskwheel.App:
    app: taskwheel.App = mymod.app
    return app


def run_in_process(snippet: str, tw: InProcess, namespace: dict[str, Any]) -> None:
    """Run ``snippet`` statement by statement in ``namespace``; before a statement that
    waits for a job or a run, let the test's clock run a minute (see the module)."""
    for statement in ast.parse(snippet).body:
        source = ast.get_source_segment(snippet, statement) or ""
        if ".result(" in source:
            tw.advance("1m")
        exec(compile(ast.Module([statement], []), "README.md", "exec"), namespace)


def test_the_quick_start_script_runs_under_the_in_process_mode(
    tw: InProcess, mymod: ModuleType
) -> None:
    namespace: dict[str, Any] = {}
    run_in_process(block_with("python", "from mymod import app, send, resize"), tw, namespace)

    job = namespace["job"]
    assert (job.status, job.record.result) == (JobStatus.SUCCEEDED, "sent to a@b.c")
    assert job.record.idempotency_key == "welcome:42"
    tw.assert_enqueued(mymod.resize, count=1000, status=JobStatus.QUEUED)
    ran = tw.drain()
    assert [job.status for job in ran] == [JobStatus.SUCCEEDED] * 1000
    assert {job.args[0] for job in ran} == {f"img{n}.png" for n in range(1000)}


def test_the_queue_control_snippet_runs_under_the_in_process_mode(
    tw: InProcess, mymod: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    run_in_process(block_with("python", "app.client.pause_queue"), tw, vars(mymod).copy())

    assert "queue 'emails'" in capsys.readouterr().out  # the refusal, printed
    [held] = tw.assert_enqueued(mymod.send, count=1)  # the full queue took none of the five
    assert held.args == ["a@b.c"]
    [ran] = tw.drain()
    assert (ran.status, ran.result) == (JobStatus.SUCCEEDED, "sent to a@b.c")


def test_the_schedules_snippet_fires_on_the_test_s_clock(
    mymod: ModuleType, tmp_path: Path
) -> None:
    # Friday 2026-12-04 12:00 UTC, 07:00 in New York.
    friday = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    app = mymod.app
    with InProcess(app, directory=tmp_path, start=friday) as tw:
        run_in_process(block_with("python", 'app.schedule("standup"'), tw, vars(mymod).copy())

        ran = tw.advance("1h")
        assert [job.args for job in ran] == [["ops@example.com"]] * 4  # every 15 minutes
        app.client.pause_schedule("sync")
        # 09:00 on weekdays in New York (14:00 UTC in winter): Friday's, then Monday's.
        ran = tw.advance_to(datetime(2026, 12, 7, 15, 0, tzinfo=UTC))
        assert [(job.args, job.created_at.weekday()) for job in ran] == [
            (["team@example.com"], 4), (["team@example.com"], 0)]
        app.client.pause_schedule("standup")  # three years of stand-ups, else
        launch, ran = datetime(2030, 1, 1, 9, 1, tzinfo=UTC), []
        while tw.now() < launch:  # the clock moves at most its horizon at a time
            ran += tw.advance_to(min(launch, tw.now() + timedelta(days=30)))
        assert [job.args for job in ran] == [["all"]]
        assert all(job.status is JobStatus.SUCCEEDED for job in tw.jobs())


def test_the_transactional_enqueue_snippet_runs_under_the_in_process_mode(
    tw: InProcess, mymod: ModuleType
) -> None:
    run_in_process(block_with("python", "using=conn"), tw, vars(mymod).copy())

    # The signup and its job went to the test's database, committed together.
    with contextlib.closing(sqlite3.connect(sqlite_path(mymod.app.database_url))) as conn:
        assert conn.execute("SELECT email FROM signups").fetchall() == [("a@b.c",)]
    [ran] = tw.drain()
    assert (ran.task, ran.status, ran.result) == ("send", JobStatus.SUCCEEDED, "sent to a@b.c")


def test_the_workflow_example_runs_under_the_in_process_mode(
    tw: InProcess, mymod: ModuleType
) -> None:
    namespace: dict[str, Any] = {}
    run_in_process(block_with("python", "from etl import"), tw, namespace)

    run = namespace["run"].refresh().record
    assert run.status is RunStatus.SUCCEEDED
    assert {step.name: step.job.result for step in run.steps} == {
        "extract": [1, 2, 3], "transform": [2, 4, 6], "load": 3}


def test_the_in_process_runs_leave_the_readme_s_own_database_alone(
    tw: InProcess, mymod: ModuleType
) -> None:
    run_in_process(block_with("python", "using=conn"), tw, vars(mymod).copy())
    tw.drain()
    assert not (Path.cwd() / "taskwheel.db").exists()
