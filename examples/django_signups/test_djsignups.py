"""The Django example's own tests: a signup commits its welcome job in the view's
transaction, a failed one leaves none, the job runs (taskwheel's test helpers), and
``manage.py taskwheel`` runs the taskwheel command line on the project's database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.db import connections, transaction
from django.test import Client

import taskwheel
from taskwheel.lifecycle import JobStatus
from taskwheel.testing import InProcess

HERE = Path(__file__).parent
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsignups_settings")
django.setup()

import djsignups  # noqa: E402  (after django.setup(), as Django wants)

from taskwheel.integrations.django import enqueue_on_commit  # noqa: E402


@pytest.fixture
def taskwheel_app(tmp_path: Path) -> Iterator[taskwheel.App]:
    # Django's database is the in-process store's file (tmp_path/taskwheel.db).
    database = connections["default"]
    database.close()
    database.settings_dict["NAME"] = str(tmp_path / "taskwheel.db")
    yield djsignups.jobs
    database.close()


def test_a_signup_commits_its_welcome_job_and_the_job_runs(tw: InProcess) -> None:
    answer = Client().post("/signups?email=a@b.c")
    assert answer.status_code == 201
    tw.assert_enqueued(djsignups.send_welcome, args=["a@b.c"], count=1)
    [job] = tw.drain()
    assert (job.id, job.status, job.result) == (
        answer.json()["welcome_job"], JobStatus.SUCCEEDED, "welcome sent to a@b.c")


def test_a_signup_that_fails_after_enqueueing_leaves_no_job(tw: InProcess) -> None:
    assert Client().post("/signups?email=a@b.c").status_code == 201
    assert Client().post("/signups?email=a@b.c").status_code == 409
    tw.assert_enqueued(djsignups.send_welcome, count=1)  # the second one was rolled back


def test_manage_py_taskwheel_runs_a_worker_on_the_projects_database(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")},
           "SIGNUPS_DATABASE": str(tmp_path / "signups.db"),
           "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(HERE / "manage.py"), "taskwheel", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    assert manage("migrate").returncode == 0
    script = ("import django; django.setup(); from django.test import Client; "
              "assert Client().post('/signups?email=w@b.c').status_code == 201")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=60,
                   env={**env, "DJANGO_SETTINGS_MODULE": "djsignups_settings"})
    worker = manage("worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    listed = manage("jobs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert '"succeeded"' in listed.stdout


def test_enqueue_on_commit_waits_for_the_commit_and_a_rollback_drops_it(tw: InProcess) -> None:
    with transaction.atomic():
        enqueue_on_commit(djsignups.send_welcome, "later@b.c")
        tw.assert_not_enqueued(djsignups.send_welcome)
    tw.assert_enqueued(djsignups.send_welcome, args=["later@b.c"], count=1)

    def failing_view() -> None:
        with transaction.atomic():
            enqueue_on_commit(djsignups.send_welcome, "never@b.c")
            raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        failing_view()
    tw.assert_not_enqueued(djsignups.send_welcome, args=["never@b.c"])
