"""Bad input of every kind gets a 4xx problem details answer naming what is wrong, never
a 5xx, and writes nothing: what HTTP adds (malformed JSON, a body that is not JSON, one
over the size limit, unknown fields) and every kind the command line refuses."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MAX_BODY, Running, snapshot

ADD = {"task": "add", "args": [1, 2]}
EVERY_HOUR = {"task": "ping", "every": "1h"}

# (id, method, path, body or raw bytes, content type, status, field)
CASES: list[tuple[str, str, str, Any, str, int, str | None]] = [
    ("malformed JSON", "POST", "/jobs", b'{"task": "add", ', "application/json", 400, "body"),
    ("wrong content type", "POST", "/jobs", b"task=add", "application/x-www-form-urlencoded",
     415, "content-type"),
    ("oversized body", "POST", "/jobs",
     b'{"task": "ping", "kwargs": {"x": "' + b"a" * MAX_BODY + b'"}}', "application/json",
     413, "body"),
    ("unknown field", "POST", "/jobs", {**ADD, "colour": "red"}, "", 422, "colour"),
    ("unknown field in a batch", "POST", "/jobs/batch", {"jobs": [{**ADD, "x": 1}]}, "", 422,
     "jobs[0].x"),
    ("unknown task", "POST", "/jobs", {"task": "nope"}, "", 422, "task"),
    ("arguments the task cannot take", "POST", "/jobs", {"task": "add", "args": [1]}, "",
     422, "args"),
    ("args not a list", "POST", "/jobs", {"task": "add", "args": {"a": 1}}, "", 422, "args"),
    ("negative timeout", "POST", "/jobs", {**ADD, "timeout": "-5s"}, "", 422, "timeout"),
    ("malformed duration", "POST", "/jobs", {**ADD, "delay": "5 parsecs"}, "", 422, "delay"),
    ("delay and at", "POST", "/jobs", {**ADD, "delay": "1s",
                                       "at": "2030-01-01T00:00:00Z"}, "", 422, "at"),
    ("a time without a timezone", "POST", "/jobs", {**ADD, "at": "2030-01-01T00:00:00"}, "",
     422, "at"),
    ("priority out of range", "POST", "/jobs", {**ADD, "priority": 10**9}, "", 422,
     "priority"),
    ("bad queue name", "POST", "/jobs", {**ADD, "queue": "no spaces"}, "", 422, "queue"),
    ("a NUL character", "POST", "/jobs", {**ADD, "idempotency_key": "a\x00b"}, "", 422,
     "body"),
    ("malformed cron", "PUT", "/schedules/s", {"task": "ping", "cron": "61 * * * *"}, "",
     422, "cron"),
    ("unknown timezone", "PUT", "/schedules/s", {"task": "ping", "cron": "0 9 * * *",
                                                 "timezone": "Mars/Olympus"}, "", 422,
     "timezone"),
    ("two triggers", "PUT", "/schedules/s", {**EVERY_HOUR, "cron": "0 9 * * *"}, "", 422,
     "trigger"),
    ("unknown misfire policy", "PUT", "/schedules/s", {**EVERY_HOUR, "misfire": "later"},
     "", 422, "misfire"),
    ("bad schedule name", "PUT", "/schedules/bad%20name", EVERY_HOUR, "", 422, "name"),
    ("cyclic workflow", "POST", "/workflow-runs", {"workflow": {"name": "w", "steps": [
        {"task": "ping", "name": "a", "after": ["b"]},
        {"task": "ping", "name": "b", "after": ["a"]}]}}, "", 422, "after"),
    ("unknown step", "POST", "/workflow-runs", {"workflow": {"name": "w", "steps": [
        {"task": "ping", "after": ["ghost"]}]}}, "", 422, "steps.ping.after"),
    ("unknown status filter", "GET", "/jobs?status=lost", None, "", 422, "status"),
    ("a limit out of range", "GET", "/jobs?limit=0", None, "", 422, "limit"),
    ("a cursor this server never gave", "GET", "/jobs?cursor=abc", None, "", 422, "cursor"),
    ("an id out of range", "GET", f"/jobs/{2**64}", None, "", 422, "job_id"),
    ("a NUL in the query", "GET", "/jobs?queue=a%00b", None, "", 422, "query"),
    ("ids and a filter", "POST", "/jobs/cancel", {"ids": [1], "filter": {}}, "", 422, "ids"),
    ("a negative quota", "PUT", "/quota", {"max_queued": -1}, "", 422, "max_queued"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_a_4xx_problem_naming_it_and_writes_nothing(
    server: Running, case: tuple[str, str, str, Any, str, int, str | None]
) -> None:
    _, method, path, body, content_type, status, field = case
    server.call("PUT", "/schedules/s", json=EVERY_HOUR).raise_for_status()
    before = snapshot(server.store)
    key = server.key("*") if path == "/quota" else None
    if isinstance(body, bytes):
        answer = server.call(method, path, key=key, content=body,
                             headers={"Content-Type": content_type})
    else:
        answer = server.call(method, path, key=key, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://taskwheel.dev/problems/")
    assert problem["title"]
    assert problem["detail"]
    assert problem.get("field") == field, problem
    assert snapshot(server.store) == before
