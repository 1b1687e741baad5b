"""The plain WSGI and ASGI example's own tests: a committed signup has its welcome job,
a failed one has none, the job runs (taskwheel's test helpers: no worker, no sleep),
and the ASGI server's startup opens the store (and fails on a database taskwheel did
not migrate)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import plain_signups
import pytest

import taskwheel
from taskwheel.lifecycle import JobStatus
from taskwheel.testing import InProcess


@pytest.fixture
def taskwheel_app(tmp_path: Path) -> taskwheel.App:
    # The in-process store's file (tmp_path/taskwheel.db) is the application's database.
    plain_signups.jobs.configure(database_url=f"sqlite:///{tmp_path / 'taskwheel.db'}")
    return plain_signups.jobs


def wsgi_post(path: str, query: str) -> tuple[str, dict[str, Any]]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": path,
                               "QUERY_STRING": query}
    setup_testing_defaults(environ)
    answered: list[str] = []
    body = b"".join(plain_signups.wsgi_app(environ, lambda s, h: answered.append(s)))
    return answered[0], json.loads(body)


def test_wsgi_a_signup_commits_its_welcome_job_and_a_repeated_one_none(tw: InProcess) -> None:
    status, body = wsgi_post("/signups", "email=a@b.c")
    assert status == "201 Created"
    tw.assert_enqueued(plain_signups.send_welcome, args=["a@b.c"], count=1)
    assert wsgi_post("/signups", "email=a@b.c")[0] == "409 Conflict"
    assert wsgi_post("/signups", "email=nobody")[0] == "400 Bad Request"
    [job] = tw.drain()  # the second signup's job was rolled back with it
    assert (job.id, job.status, job.result) == (
        body["welcome_job"], JobStatus.SUCCEEDED, "welcome sent to a@b.c")


async def lifespan(app: Any, event: str) -> dict[str, Any]:
    """Send one lifespan event (``startup``, ``shutdown``) as a server does; the answer."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": f"lifespan.{event}"})
    scope = {"type": "lifespan", "state": {}}
    served = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    answer = await outbox.get()
    served.cancel()
    return answer


def test_asgi_the_server_lifespan_opens_the_store_and_signups_enqueue(tw: InProcess) -> None:
    async def session() -> list[httpx.Response]:
        app = plain_signups.asgi_app
        assert (await lifespan(app, "startup"))["type"] == "lifespan.startup.complete"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://signups") as http:
            answers = [await http.post("/signups", params={"email": "a@b.c"}),
                       await http.post("/signups", params={"email": "a@b.c"})]
        assert (await lifespan(app, "shutdown"))["type"] == "lifespan.shutdown.complete"
        return answers

    first, again = asyncio.run(session())
    assert (first.status_code, again.status_code) == (201, 409)
    tw.assert_enqueued(plain_signups.send_welcome, args=["a@b.c"], count=1)


def test_asgi_the_server_does_not_start_on_a_database_taskwheel_did_not_migrate(
    tmp_path: Path,
) -> None:
    plain_signups.jobs.close()
    plain_signups.jobs.configure(database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    answer = asyncio.run(lifespan(plain_signups.asgi_app, "startup"))
    assert answer["type"] == "lifespan.startup.failed"
    assert "taskwheel migrate" in answer["message"]
