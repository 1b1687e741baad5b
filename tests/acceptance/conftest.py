"""Acceptance tests drive the real ``taskwheel`` command in subprocesses.

Each test gets a project: a directory holding its own SQLite file and a copy of
``acceptance_app.py``, put on the processes' PYTHONPATH. Tests read the outcome
through the store, waiting for conditions with a deadline rather than for time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from taskwheel.jobs import Attempt, Job, JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import Store, open_store

APP = "acceptance_app:app"
_SCRIPT = Path(sys.executable).with_name("taskwheel")
# The installed console script, as users run it (the module when it is missing).
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "taskwheel.cli.main"]


def worker_pid(worker_id: str | None) -> int:
    """The process id inside a worker id (``host:pid:suffix``)."""
    assert worker_id is not None
    return int(worker_id.rsplit(":", 2)[1])


class WorkerProcess:
    """A ``taskwheel worker`` subprocess and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def signal_group(self, sig: int) -> None:
        """Signal its whole process group: a worker's supervisor and worker process
        together, as when the node dies (SIGKILL) or Ctrl-C is pressed (SIGINT)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class Project:
    """A directory with an app module and a database, and the processes run on it."""

    def __init__(self, root: Path, url: str | None = None) -> None:
        """A project on ``url``, by default a SQLite file in ``root``."""
        self.root = root
        self.database = root / "taskwheel.db"
        self.url = url or f"sqlite:///{self.database}"
        shutil.copy(Path(__file__).with_name("acceptance_app.py"), root / "acceptance_app.py")
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("TASKWHEEL_")
        }
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.env["TASKWHEEL_DATABASE_URL"] = self.url
        self.workers: list[WorkerProcess] = []
        self._store: Store | None = None

    # -- running the command ---------------------------------------------------------------

    def run(
        self, *args: str, input: str | None = None, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``taskwheel ARGS`` to completion (stdin is not a terminal)."""
        return subprocess.run(
            [*COMMAND, *args], cwd=self.root, env=self.env, capture_output=True, text=True,
            input=input, stdin=None if input is not None else subprocess.DEVNULL,
            timeout=timeout, check=False,
        )

    def run_json(self, *args: str, timeout: float = 30.0) -> Any:
        """Run a command with ``--format json``; it must succeed and print valid JSON."""
        done = self.run(*args, "--format", "json", timeout=timeout)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start_worker(self, *args: str) -> WorkerProcess:
        return self.start("worker", *args)

    def start_scheduler(self, *args: str) -> WorkerProcess:
        return self.start("scheduler", *args)

    def start(self, role: str, *args: str) -> WorkerProcess:
        """A long-running ``taskwheel ROLE --app ...`` process, stopped with the project."""
        log = self.root / f"{role}-{len(self.workers) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*COMMAND, role, "--app", APP, *args], cwd=self.root, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: see signal_group
            )
        process = WorkerProcess(proc, log)
        self.workers.append(process)
        return process

    def enqueue_many(self, task: str, calls: Sequence[list[Any]]) -> list[int]:
        """Enqueue one job per argument list in a single `App.enqueue_many` batch,
        from a separate process as an application would."""
        program = (
            "import json, sys\n"
            "from acceptance_app import app\n"
            "task = app.get_task(sys.argv[1])\n"
            "handles = app.enqueue_many(task.prepare(*args) for args in json.load(sys.stdin))\n"
            "print(json.dumps([h.id for h in handles]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program, task], cwd=self.root, env=self.env,
            input=json.dumps(list(calls)), capture_output=True, text=True, timeout=60,
            check=True,
        )
        ids: list[int] = json.loads(done.stdout)
        return ids

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.signal_group(signal.SIGCONT)
            worker.signal_group(signal.SIGKILL)
            worker.wait(10)

    # -- reading the outcome ---------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.url)
        return self._store

    def migrate(self) -> None:
        """Create the database's schema, as ``taskwheel migrate`` does before a deploy."""
        self.store.migrate()

    def jobs(self) -> list[Job]:
        return self.store.list_jobs("default", JobFilter(limit=1_000_000))

    def job(self, job_id: int) -> Job:
        return self.store.get_job("default", job_id)

    def attempts(self, job_id: int) -> list[Attempt]:
        return self.store.list_attempts("default", job_id)

    def count_jobs(self) -> int:
        return len(self.jobs())

    def count(self, status: JobStatus) -> int:
        # Counted by the store (off its status index), not by listing the jobs: tests
        # poll this every few milliseconds while workers run, and decoding thousands of
        # rows per look took a core from the processes under test.
        return sum(queue.counts.get(status.value, 0)
                   for queue in self.store.stats("default").queues)

    def statuses(self, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        return {job.id: job.status for job in self.store.get_jobs("default", job_ids)}

    def all_in(self, job_ids: Sequence[int], status: JobStatus) -> bool:
        statuses = self.statuses(job_ids)
        return len(statuses) == len(job_ids) and set(statuses.values()) == {status}

    def worker_process_pids(self, worker: WorkerProcess) -> set[int]:
        """The pids of the worker processes registered under ``worker`` (its supervisor's
        children; itself with ``--no-supervisor``): the pids its tasks see."""
        return {registered.pid for registered in self.store.stats("default").workers
                if worker_pid(registered.id) == worker.pid}

    def running_under(self, worker: WorkerProcess) -> list[Job]:
        return [
            job for job in self.store.list_jobs(
                "default", JobFilter(status=JobStatus.RUNNING, limit=1_000_000)
            )
            if worker_pid(job.worker_id) == worker.pid
        ]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@contextlib.contextmanager
def running_project(
    root: Path, url: str | None = None, *, migrated: bool = True
) -> Iterator[Project]:
    """A project (its database migrated unless ``migrated`` is false) whose processes
    are killed at the end; their logs are printed (pytest shows them when the test
    failed)."""
    project = Project(root, url)
    try:
        if migrated:
            project.migrate()
        yield project
    finally:
        project.stop_all()
        project.close()
        for number, worker in enumerate(project.workers, 1):
            print(f"---- process {number} (pid {worker.pid}) log ----")
            print(worker.log_text()[-6000:])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with running_project(tmp_path) as project:
        yield project


@pytest.fixture
def fresh_project(tmp_path: Path) -> Iterator[Project]:
    """A project whose database nobody has migrated (nor created)."""
    with running_project(tmp_path, migrated=False) as project:
        yield project


@pytest.fixture
def pg_project(tmp_path: Path) -> Iterator[Project]:
    """A project on a schema of its own on the shared PostgreSQL test server."""
    from pg_server import drop_schema, new_schema_name, postgres_url, with_schema

    schema = new_schema_name()
    try:
        with running_project(tmp_path, with_schema(postgres_url(), schema)) as project:
            yield project
    finally:
        drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgres"])
def any_project(request: pytest.FixtureRequest) -> Project:
    """The same test on a SQLite project and on a PostgreSQL one."""
    project: Project = request.getfixturevalue(
        "project" if request.param == "sqlite" else "pg_project"
    )
    return project
