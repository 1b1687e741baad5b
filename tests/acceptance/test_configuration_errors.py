"""A database that can be read but not written, and a PostgreSQL URL the server will
never accept (no such database, no such role), are configuration errors: reads work on
a read-only database, and every command that must write, workers included, says what
is wrong in one line and exits instead of retrying forever with tracebacks. An outage
(nothing listening) is still waited out."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from pg_server import postgres_url
from taskwheel.stores import open_store
from waiting import wait_for

from .conftest import APP, COMMAND, Project

# Root passes every permission check: read-only files only stay read-only for a root
# test run without the capabilities that override them.
_SETPRIV = shutil.which("setpriv")
UNPRIVILEGED = (
    [_SETPRIV, "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    if os.geteuid() == 0 and _SETPRIV else []
)


def needs_a_read_only_file() -> None:
    """Root reads and writes any file unless setpriv drops its capabilities: without
    setpriv, skip saying so; CI (Debian: util-linux has it) must run these tests."""
    if os.geteuid() == 0 and not UNPRIVILEGED:
        reason = "running as root without setpriv: nothing is read-only to root"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def taskwheel(
    project: Project, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*UNPRIVILEGED, *COMMAND, *args], cwd=project.root, env=project.env,
        capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return errors[0].removeprefix("error: ")


@pytest.fixture
def read_only_url(project: Project, tmp_path: Path) -> Iterator[str]:
    """A migrated database with a job, in a directory nobody may write, as a clean
    shutdown leaves it (no -wal, -shm or -writelock file beside it)."""
    needs_a_read_only_file()
    directory = tmp_path / "read-only"
    directory.mkdir()
    url = f"sqlite:///{directory / 'jobs.db'}"
    store = open_store(url)
    store.migrate()
    store.close()
    assert taskwheel(project, "enqueue", "add", "--args", "[1, 2]", "--app", APP,
                     "--database-url", url).returncode == 0
    for leftover in directory.glob("jobs.db-*"):
        leftover.unlink()
    (directory / "jobs.db").chmod(0o444)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        yield url
    finally:
        directory.chmod(0o755)


def test_reads_work_on_a_read_only_database(project: Project, read_only_url: str) -> None:
    for command in (["jobs", "list"], ["jobs", "show", "1"], ["stats"], ["dlq", "list"]):
        done = taskwheel(project, *command, "--database-url", read_only_url)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
    assert "add" in taskwheel(project, "jobs", "list", "--database-url", read_only_url).stdout


def test_writes_to_a_read_only_database_fail_in_one_line(
    project: Project, read_only_url: str
) -> None:
    enqueue = one_error_line(taskwheel(project, "enqueue", "add", "--args", "[1, 2]", "--app", APP,
                                       "--database-url", read_only_url))
    cancel = one_error_line(taskwheel(project, "jobs", "cancel", "1",
                                      "--database-url", read_only_url))

    assert "read-only" in enqueue
    assert "read-only" in cancel
    assert sorted(p.name for p in Path(read_only_url[len("sqlite:///"):]).parent.iterdir()) == [
        "jobs.db"]


@pytest.mark.parametrize("role", ["worker", "scheduler"])
def test_a_worker_or_scheduler_on_a_read_only_database_exits_in_one_line(
    project: Project, read_only_url: str, role: str
) -> None:
    done = taskwheel(project, role, "--app", APP, "--database-url", read_only_url,
                     timeout=30)

    assert "read-only" in one_error_line(done)


def test_a_worker_on_a_file_it_may_read_but_not_write_exits_in_one_line(
    project: Project, tmp_path: Path
) -> None:
    needs_a_read_only_file()
    project.database.chmod(0o444)  # its directory stays writable

    done = taskwheel(project, "worker", "--app", APP, timeout=30)

    assert one_error_line(done).endswith(f"{project.database} is read-only here")


@pytest.mark.parametrize("what", ["database", "role"])
def test_a_worker_given_a_database_or_role_that_does_not_exist_exits_in_one_line(
    project: Project, what: str
) -> None:
    parts = urlsplit(postgres_url())
    if what == "database":
        url = urlunsplit(parts._replace(path="/taskwheel_no_such_database"))
    else:
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit(parts._replace(netloc=f"taskwheel_no_such_role@{host}"))

    done = taskwheel(project, "worker", "--app", APP, "--database-url", url, timeout=30)

    assert f'{what} "taskwheel_no_such_' in one_error_line(done)


def test_a_worker_waits_out_a_database_that_is_not_there_yet(project: Project) -> None:
    worker = project.start_worker("--database-url", "postgresql://postgres@127.0.0.1:1/x")

    wait_for(lambda: "trying again" in worker.log_text(), timeout=30,
             what="the worker to say it waits")
    assert worker.alive()
