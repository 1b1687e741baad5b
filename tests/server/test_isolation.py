"""Isolation, generated from the OpenAPI document: every operation is tried with a key
of another namespace (404, the same answer as for a namespace that does not exist,
nothing changed) and with a key of the namespace whose role is too low (403, nothing
changed); then with a key that may, to show the request itself was a good one."""

from __future__ import annotations

import json
from typing import Any

from taskwheel.keys import Role

from .conftest import MINE, THEIRS, Running, kill_jobs, snapshot

# A valid body for each operation that takes one. A new operation with a body fails
# `test_every_operation_with_a_body_has_an_example_here` until it has one.
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/jobs"): {"task": "add", "args": [1, 2]},
    ("post", "/jobs/batch"): {"jobs": [{"task": "ping"}]},
    ("post", "/jobs/cancel"): {"ids": ["{job_id}"]},
    ("post", "/jobs/retry"): {"ids": ["{dead_id}"]},
    ("post", "/jobs/delete"): {"ids": ["{job_id}"]},
    ("post", "/dead-jobs/replay"): {"ids": ["{dead_id}"]},
    ("post", "/dead-jobs/purge"): {"ids": ["{dead_id}"]},
    ("put", "/schedules/{name}"): {"task": "ping", "every": "1h"},
    ("post", "/schedules/preview"): {"cron": "0 9 * * *", "count": 2},
    ("post", "/workflow-runs"): {"workflow": {"name": "wf", "steps": [{"task": "ping"}]}},
    ("post", "/workflow-runs/{run_id}/retry"): {},
    ("put", "/quota"): {"max_queued": 100},
    ("put", "/weight"): {"weight": 2},
    ("post", "/workers"): {"queues": ["default"]},
    ("post", "/claims"): {"worker_id": "{worker_id}", "queues": ["idle"]},
    ("post", "/workers/{worker_id}/heartbeat"): {"jobs": {}},
    ("post", "/jobs/{job_id}/checkpoint"): {"fence": 1, "state": 1},
    ("post", "/jobs/{job_id}/complete"): {"fence": 1},
    ("post", "/jobs/{job_id}/fail"): {"fence": 1, "error": "boom"},
    ("post", "/reports"): {"reports": [{"job_id": 1, "fence": 1, "outcome": "succeeded"}]},
    ("put", "/webhooks/{webhook}"): {"task": "ping"},
    ("put", "/alerts/{alert}"): {"kind": "no_worker", "queue": "math",
                                 "url": "http://127.0.0.1:9/hook"},
    ("put", "/queues/{queue}/limit"): {"max_depth": 1000},
    ("put", "/fairness/{key}"): {"weight": 2},
    ("put", "/queues/{queue}/aging"): {"rate": "1/min", "cap": 8},
    ("put", "/queues/{queue}/reserve"): {"share": "10%", "below": 5},
    ("post", "/queues/{queue}/pause"): {"until": "2100-01-01T00:00:00+00:00"},
    ("post", "/tasks/{task}/pause"): {},
    ("put", "/limits/{key}"): {"limit": 3},
    ("put", "/limits/{key}/rate"): {"rate": "100/min", "burst": 20},
    ("post", "/limits/{key}/pause"): {"until": "2100-01-01T00:00:00+00:00"},
    ("post", "/breakers/{key}/open"): {"until": "2100-01-01T00:00:00+00:00"},
}
PREFIX = "/api/v1/namespaces/{namespace}"
LOWER = {"operate": Role.READ, "admin": Role.OPERATE, "operator": Role.ADMIN}


def _operations(server: Running) -> list[tuple[str, str, dict[str, Any]]]:
    document = server.http.get(f"{server.url}/openapi.json").json()
    found = []
    for path, methods in document["paths"].items():
        if path.startswith("/hooks/"):
            continue  # signed, not keyed: tests/server/test_webhooks.py
        assert path.startswith(PREFIX), f"{path} names no namespace"
        for method, operation in methods.items():
            found.append((method, path.removeprefix(PREFIX), operation))
    # Deletions last: the others act on what they would delete.
    return sorted(found, key=lambda item: (
        item[0] == "delete" or item[1].endswith(("/purge", "/jobs/delete")), item[1], item[0]))


def _seed(server: Running) -> dict[str, Any]:
    """A job, a dead job, a schedule, a workflow run and a key whose breaker is open
    (so that closing it is a good request) and with a rate limit, in the victim's
    namespace."""
    jobs = server.call("POST", "/jobs/batch", namespace=THEIRS, json={
        "jobs": [{"task": "ping"}, {"task": "ping"}]}).json()["jobs"]
    # The key of the gate routes is the fairness routes' key too.
    server.call("POST", "/jobs", namespace=THEIRS,
                json={"task": "sync", "args": ["customer:1"]}).raise_for_status()
    server.call("POST", "/breakers/customer:1/open", namespace=THEIRS).raise_for_status()
    server.call("PUT", "/limits/customer:1/rate", namespace=THEIRS,  # and a rate limit
                json={"rate": "100/min"}).raise_for_status()
    kill_jobs(server.store, THEIRS, [jobs[1]["id"]])
    server.call("PUT", "/schedules/nightly", namespace=THEIRS,
                json={"task": "ping", "cron": "0 3 * * *"}).raise_for_status()
    server.call("PUT", "/webhooks/gh", namespace=THEIRS,
                json={"task": "ping"}).raise_for_status()
    server.call("PUT", "/alerts/pager", namespace=THEIRS, json={
        "kind": "dlq_growing", "url": "http://127.0.0.1:9/hook"}).raise_for_status()
    run = server.call("POST", "/workflow-runs", namespace=THEIRS, json={
        "workflow": {"name": "wf", "steps": [{"task": "ping"}]}}).json()
    return {"job_id": jobs[0]["id"], "dead_id": jobs[1]["id"], "name": "nightly",
            "run_id": run["id"], "worker_id": "http:0", "webhook": "gh", "queue": "math",
            "task": "ping", "alert": "pager", "key": "customer:1"}


def _fill(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return names[value[1:-1]]
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


def _request(
    server: Running, method: str, path: str, names: dict[str, Any], *, key: str,
    namespace: str = THEIRS,
) -> Any:
    body = BODIES.get((method, path))
    concrete = path.format(**names)
    return server.call(method.upper(), concrete, key=key, namespace=namespace,
                       json=None if body is None else _fill(body, names))


def test_every_operation_with_a_body_has_an_example_here(server: Running) -> None:
    for method, path, operation in _operations(server):
        if "requestBody" in operation:
            assert (method, path) in BODIES, f"give {method} {path} a body in BODIES"


def test_no_key_of_another_namespace_or_of_a_lower_role_reads_or_changes_anything(
    server: Running,
) -> None:
    names = _seed(server)
    operations = _operations(server)
    assert len(operations) >= 25
    before = snapshot(server.store)
    foreign = server.key(MINE, Role.ADMIN)
    for method, path, operation in operations:
        where = f"{method.upper()} {path}"
        answer = _request(server, method, path, names, key=foreign)
        assert answer.status_code == 404, where
        assert answer.headers["content-type"] == "application/problem+json", where
        # The same answer as for a namespace nobody has (but for its name): nothing is
        # learned.
        absent = _request(server, method, path, names, key=foreign, namespace="team-z")
        assert answer.json() == json.loads(absent.text.replace("team-z", THEIRS)), where
        role = operation["x-taskwheel-role"]
        if role in LOWER:
            low = _request(server, method, path, names, key=server.key(THEIRS, LOWER[role]))
            assert low.status_code == 403, where
        unauthenticated = _request(server, method, path, names, key="")
        assert unauthenticated.status_code == 401, where
        assert snapshot(server.store) == before, where
    operator = server.key("*", Role.ADMIN)
    for method, path, _operation in operations:
        answer = _request(server, method, path, names, key=operator)
        # 409: the state forbids it (retrying a queued job): the key was not the reason.
        assert answer.status_code < 300 or answer.status_code == 409, (
            f"{method.upper()} {path}: {answer.status_code} {answer.text}")
