"""The FastAPI example's own tests: a committed signup has its welcome job, a failed
one has none, and the job runs (with taskwheel's test helpers: no worker, no sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import signups

import taskwheel
from taskwheel.lifecycle import JobStatus
from taskwheel.testing import InProcess


@pytest.fixture
def taskwheel_app(tmp_path: Path) -> taskwheel.App:
    # The in-process store's file (tmp_path/taskwheel.db) is the application's database.
    signups.jobs.configure(database_url=f"sqlite:///{tmp_path / 'taskwheel.db'}")
    return signups.jobs


class Http:
    """Requests to the application in this process, inside its lifespan (started once,
    on an event loop of the test's, and stopped after the test)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.lifespan = signups.api.router.lifespan_context(signups.api)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=signups.api),
                                        base_url="http://signups")

    def start(self) -> None:
        try:
            self.loop.run_until_complete(self.lifespan.__aenter__())
        except BaseException:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()
            raise

    def stop(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()

    def post(self, path: str, **params: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, params=params))

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(path))


@pytest.fixture
def http(tw: InProcess) -> Iterator[Http]:
    started = Http()
    started.start()
    yield started
    started.stop()


def test_a_signup_commits_its_welcome_job_and_the_job_runs(
    http: Http, tw: InProcess
) -> None:
    answer = http.post("/signups", email="a@b.c")
    assert answer.status_code == 201
    job_id = answer.json()["welcome_job"]
    assert http.get(f"/jobs/{job_id}").json() == {"id": job_id, "status": "queued"}
    tw.assert_enqueued(signups.send_welcome, args=["a@b.c"], count=1)
    [job] = tw.drain()
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, "welcome sent to a@b.c")
    assert http.get(f"/jobs/{job_id}").json()["status"] == "succeeded"


def test_a_signup_that_fails_after_enqueueing_leaves_no_job(
    http: Http, tw: InProcess
) -> None:
    assert http.post("/signups", email="a@b.c").status_code == 201
    again = http.post("/signups", email="a@b.c")
    assert again.status_code == 409
    tw.assert_enqueued(signups.send_welcome, count=1)  # the second one was rolled back


def test_the_application_does_not_start_on_a_database_taskwheel_did_not_migrate(
    tmp_path: Path,
) -> None:
    signups.jobs.close()
    signups.jobs.configure(database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    with pytest.raises(taskwheel.SchemaOutdated):
        Http().start()
