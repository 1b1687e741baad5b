"""Fixtures of the server tests: a real uvicorn server bound to 127.0.0.1 on a free
port, over a fresh, migrated store of each backend (its clock a `ManualClock`), with
keys of every role in two namespaces and an operator's; and what a test needs to see
that a refused request wrote nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from contract.backends import MIGRATED_BACKENDS, forget_databases
from taskwheel.clock import ManualClock
from taskwheel.jobs import AttemptOutcome, JobFilter, Outcome
from taskwheel.keys import Role, generate_key
from taskwheel.lifecycle import JobStatus
from taskwheel.server import ServerSettings, create_app
from taskwheel.stores.base import Store
from taskwheel.validators import ALL_NAMESPACES
from taskwheel.workflows import WorkflowRunFilter
from waiting import wait_for

from .server_app import app as tasks_app

T0 = 1_700_000_000.0
MINE = "team-a"
THEIRS = "team-b"
MAX_BODY = 64 * 1024


@dataclass
class Running:
    """A server under test: its URL, its store, and a key per (namespace, role)."""

    url: str
    store: Store
    clock: ManualClock
    keys: dict[tuple[str, Role], str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=httpx.Client)
    api: Any = None  # the FastAPI application it serves

    def key(self, namespace: str = MINE, role: Role = Role.ADMIN) -> str:
        return self.keys[(namespace, role)]

    def call(
        self, method: str, path: str, *, key: str | None = None, json: Any = None,
        namespace: str = MINE, role: Role = Role.ADMIN, **kwargs: Any,
    ) -> httpx.Response:
        """``path`` under /api/v1/namespaces/{namespace}, with a key of that namespace
        and role unless ``key`` is given ("" for none)."""
        bearer = self.key(namespace, role) if key is None else key
        headers = dict(kwargs.pop("headers", {}))
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = f"{self.url}/api/v1/namespaces/{namespace}{path}"
        return self.http.request(method, url, json=json, headers=headers, **kwargs)


@pytest.fixture(autouse=True)
def _forget_databases() -> Iterator[None]:
    yield
    forget_databases()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    opened = MIGRATED_BACKENDS[backend](tmp_path, clock)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def server(store: Store, clock: ManualClock) -> Iterator[Running]:
    api = create_app(store, tasks_app, ServerSettings(max_body_bytes=MAX_BODY))
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer on a kept-alive connection waits for a delayed ACK (40 ms).
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(api, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    running = Running(url=f"http://127.0.0.1:{port}", store=store, clock=clock, api=api)
    for namespace in (MINE, THEIRS, ALL_NAMESPACES):
        for role in Role:
            new = generate_key(namespace, role)
            store.create_api_key(new)
            running.keys[(namespace, role)] = new.key
    try:
        wait_for(lambda: uv.started, timeout=10, what="the server to start")
        yield running
    finally:
        running.http.close()
        uv.should_exit = True
        thread.join(timeout=10)
        listening.close()


# -- seeing what a request did -----------------------------------------------------------------


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a request could change, in every namespace."""
    namespaces = sorted({*store.namespaces(), MINE, THEIRS})
    return {
        "keys": [key.to_dict() for key in store.list_api_keys()],
        **{namespace: {
            "jobs": [job.to_dict() for job in store.list_jobs(namespace,
                                                              JobFilter(limit=100_000))],
            "schedules": [s.to_dict() for s in store.list_schedules(namespace)],
            "runs": [run.to_dict() for run in store.list_workflow_runs(
                namespace, WorkflowRunFilter(limit=100_000))],
            "quota": store.get_quota(namespace).to_dict(),
            "webhooks": [(hook.to_dict(), hook.secret)
                         for hook in store.list_webhooks(namespace)],
            "alerts": [(rule.to_dict(), rule.secret,
                        [d.to_dict() for d in store.list_alert_deliveries(namespace, rule.name)])
                       for rule in store.list_alerts(namespace)],
            "pauses": [pause.to_dict() for pause in store.list_pauses(namespace)],
            "queue_limits": [limit.to_dict() for limit in store.list_queue_limits(namespace)],
            "queue_aging": [aging.to_dict() for aging in store.list_queue_aging(namespace)],
            "queue_reserves": [reserve.to_dict()
                               for reserve in store.list_queue_reserves(namespace)],
        } for namespace in namespaces},
    }


def kill_jobs(store: Store, namespace: str, job_ids: list[int]) -> None:
    """Take the jobs and report them dead (their attempts ran out)."""
    claim = store.claim_jobs(namespace, "w", ["math", "default"], 1000, 30)
    jobs = [job for job in claim.jobs if job.id in job_ids]
    assert len(jobs) == len(job_ids)
    rejected = store.finish_attempts([Outcome(job.id, job.fence, JobStatus.DEAD,
                                              AttemptOutcome.FAILED, error="boom")
                                      for job in jobs])
    assert rejected == []
