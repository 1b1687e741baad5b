"""Webhooks on both stores, through a real server: a delivery signed with the webhook's
secret becomes a job of its task; an unsigned or badly signed one, or one for a webhook
that does not exist, writes nothing; a redelivery (the same id in a header or in the
body) creates no second job."""

from __future__ import annotations

import json
from typing import Any

import httpx

from taskwheel.jobs import JobFilter
from taskwheel.keys import Role
from taskwheel.webhooks import sign

from .conftest import MINE, THEIRS, Running, snapshot

SECRET = "a-secret-of-some-length"


def _define(server: Running, name: str = "orders", namespace: str = MINE,
            **options: Any) -> dict[str, Any]:
    answer = server.call("PUT", f"/webhooks/{name}", namespace=namespace,
                         json={"task": "on_event", "secret": SECRET, **options})
    assert answer.status_code == 200, answer.text
    defined: dict[str, Any] = answer.json()
    return defined


def _deliver(server: Running, payload: Any, *, name: str = "orders", namespace: str = MINE,
             secret: str | None = SECRET, headers: dict[str, str] | None = None
             ) -> httpx.Response:
    body = json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-Signature-256"] = sign(secret, body)
    return server.http.post(f"{server.url}/hooks/{namespace}/{name}", content=body,
                            headers=sent)


def test_a_signed_delivery_becomes_a_job_of_the_webhooks_task(server: Running) -> None:
    defined = _define(server)
    assert (defined["secret"], defined["url_path"]) == (SECRET, f"/hooks/{MINE}/orders")
    answer = _deliver(server, {"order": 7, "items": ["a"]})
    assert answer.status_code == 202, answer.text
    job = server.store.get_job(MINE, answer.json()["id"])
    assert (job.task, job.args, job.queue) == ("on_event", [{"order": 7, "items": ["a"]}],
                                               "events")
    listed = server.call("GET", "/webhooks", role=Role.READ).json()["webhooks"]
    assert [hook["name"] for hook in listed] == ["orders"]
    assert "secret" not in listed[0]  # shown when defined, never listed


def test_an_unsigned_or_badly_signed_delivery_writes_nothing(server: Running) -> None:
    _define(server)
    before = snapshot(server.store)
    for secret, headers in ((None, {}), ("another-secret-entirely", {}),
                            (None, {"X-Signature-256": "sha256=" + "0" * 64}),
                            (None, {"X-Signature-256": "garbage"})):
        answer = _deliver(server, {"order": 7}, secret=secret, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["field"] == "X-Signature-256"
    # Signed for one body, sent with another.
    tampered = server.http.post(
        f"{server.url}/hooks/{MINE}/orders", content=b'{"order": 8}',
        headers={"Content-Type": "application/json",
                 "X-Signature-256": sign(SECRET, b'{"order": 7}')})
    assert tampered.status_code == 401
    assert snapshot(server.store) == before


def test_a_delivery_to_a_webhook_that_does_not_exist_is_404_alike(server: Running) -> None:
    _define(server, namespace=THEIRS)
    before = snapshot(server.store)
    elsewhere = _deliver(server, {}, namespace=MINE)  # the name is another namespace's
    nowhere = _deliver(server, {}, namespace="team-z")
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.json() == nowhere.json()
    assert snapshot(server.store) == before
    removed = server.call("DELETE", "/webhooks/orders", namespace=THEIRS)
    assert removed.status_code == 204
    assert _deliver(server, {}, namespace=THEIRS).status_code == 404


def test_a_redelivery_with_the_same_header_id_creates_no_second_job(server: Running) -> None:
    _define(server, idempotency_header="X-GitHub-Delivery")
    first = _deliver(server, {"n": 1}, headers={"X-GitHub-Delivery": "d-1"})
    again = _deliver(server, {"n": 1}, headers={"X-GitHub-Delivery": "d-1"})
    other = _deliver(server, {"n": 1}, headers={"X-GitHub-Delivery": "d-2"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert len(server.store.list_jobs(MINE, JobFilter(limit=1000))) == 2
    before = snapshot(server.store)
    missing = _deliver(server, {"n": 1})
    assert (missing.status_code, missing.json()["field"]) == (422, "X-GitHub-Delivery")
    assert snapshot(server.store) == before


def test_a_redelivery_with_the_same_body_id_creates_no_second_job(server: Running) -> None:
    _define(server, idempotency_pointer="/event/id")
    first = _deliver(server, {"event": {"id": 41}, "at": 1})
    again = _deliver(server, {"event": {"id": 41}, "at": 2})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["idempotency_key"] == "webhook:orders:41"
    before = snapshot(server.store)
    for payload in ({"event": {}}, {"event": {"id": [1]}}, [1, 2]):
        refused = _deliver(server, payload)
        assert (refused.status_code, refused.json()["field"]) == (422, "/event/id"), payload
    assert snapshot(server.store) == before


def test_bad_webhook_definitions_are_refused_naming_the_field(server: Running) -> None:
    before = snapshot(server.store)
    for body, field in (
        ({"task": "no_such_task"}, "task"),
        ({"task": "on_event", "secret": "short"}, "secret"),
        ({"task": "on_event", "idempotency_header": "X-A", "idempotency_pointer": "/a"},
         "idempotency_header"),
        ({"task": "on_event", "idempotency_pointer": "id"}, "idempotency_pointer"),
        ({"task": "on_event", "idempotency_header": "Bad Header"}, "idempotency_header"),
        ({"task": "on_event", "queue": "not a queue"}, "queue"),
        ({"task": "on_event", "colour": "red"}, "colour"),
    ):
        answer = server.call("PUT", "/webhooks/orders", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field, body
    assert server.call("PUT", "/webhooks/orders", role=Role.OPERATE,
                       json={"task": "on_event"}).status_code == 403
    assert snapshot(server.store) == before
    generated = _define(server, secret=None)["secret"]
    assert len(generated) == 64
    assert generated != SECRET
