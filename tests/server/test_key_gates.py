"""Key gates over HTTP, on both stores: a reader lists and shows keys, an admin sets a
key's limit (a bad one is a 422 that writes nothing), an operate key pauses and resumes
a key; an unknown key is a 404 problem; the HTTP client says the same."""

from __future__ import annotations

import pytest

import taskwheel
from taskwheel.keys import Role

from .conftest import MINE, Running, snapshot

KEY = "tenant/42"
PATH = "/limits/tenant%2F42"


def _claimable(server: Running) -> list[int]:
    return [job.id for job in server.store.claim_jobs(MINE, "w1", ["sync"], 10, 30.0).jobs]


def test_a_key_s_limit_is_shown_set_paused_and_resumed(server: Running) -> None:
    ids = [server.call("POST", "/jobs", json={"task": "sync", "args": [KEY]}).json()["id"]
           for _ in range(3)]
    listed = server.call("GET", "/limits", role=Role.READ).json()["limits"]
    assert [(k["key"], k["capacity"], k["in_use"], k["waiting"]) for k in listed] == [
        (KEY, 1, 1, 2)]
    assert server.call("PUT", PATH, json={"limit": 2}, role=Role.OPERATE).status_code == 403
    raised = server.call("PUT", PATH, json={"limit": 2})
    assert raised.status_code == 200
    assert (raised.json()["capacity"], raised.json()["in_use"], raised.json()["set_by_hand"]
            ) == (2, 2, True)
    assert _claimable(server) == ids[:2]
    paused = server.call("POST", f"{PATH}/pause", role=Role.OPERATE)
    assert (paused.json()["paused"], paused.json()["waiting"]) == (True, 1)
    assert server.call("GET", PATH, role=Role.READ).json()["paused"] is True
    resumed = server.call("POST", f"{PATH}/resume", role=Role.OPERATE)
    assert resumed.json() == {"key": KEY, "released": 0}  # both slots are running
    again = server.call("POST", f"{PATH}/resume", role=Role.OPERATE)
    assert again.status_code == 404
    assert "is not paused" in again.json()["detail"]


def test_bad_limits_and_unknown_keys_are_refused_and_write_nothing(server: Running) -> None:
    server.call("POST", "/jobs", json={"task": "sync", "args": [KEY]})
    before = snapshot(server.store)
    for bad in (0, -1, "x", 2**31, True):
        refused = server.call("PUT", PATH, json={"limit": bad})
        assert refused.status_code == 422, bad
    assert server.call("PUT", "/limits/has%20space", json={"limit": 1}).status_code == 422
    for method, path in (("GET", "/limits/nope"), ("POST", "/limits/nope/pause"),
                         ("POST", "/limits/nope/resume")):
        missing = server.call(method, path, role=Role.OPERATE)
        assert missing.status_code == 404, path
        assert "key 'nope'" in missing.json()["detail"]
    assert snapshot(server.store) == before
    assert server.call("GET", PATH).json()["capacity"] == 1


def test_key_gates_over_the_http_client(server: Running) -> None:
    with taskwheel.HttpClient(server.url, server.key(MINE, Role.ADMIN), MINE) as client:
        _over_http(client)


def _over_http(client: taskwheel.HttpClient) -> None:
    client.enqueue("sync", [KEY])
    client.enqueue("sync", [KEY])
    assert client.limit(KEY)["waiting"] == 1
    assert client.set_limit(KEY, 3)["in_use"] == 2
    assert client.pause_key(KEY)["paused"] is True
    assert client.resume_key(KEY) == 2  # the two ready ones waited while it was paused
    assert [k["key"] for k in client.limits()] == [KEY]
    with pytest.raises(taskwheel.ApiError) as unknown:
        client.limit("nope")
    assert unknown.value.status == 404


def test_a_key_s_breaker_is_listed_opened_and_closed(server: Running) -> None:
    server.call("POST", "/jobs", json={"task": "sync", "args": [KEY]})
    assert server.call("POST", "/breakers/tenant%2F42/open", role=Role.READ
                       ).status_code == 403
    opened = server.call("POST", "/breakers/tenant%2F42/open", role=Role.OPERATE,
                         json={"until": "2100-01-01T00:00:00+00:00"})
    assert (opened.json()["breaker"], opened.json()["waiting"]) == ("open", 1)
    assert opened.json()["breaker_until"].startswith("2100-01-01")
    assert _claimable(server) == []
    assert [b["key"] for b in server.call("GET", "/breakers", role=Role.READ).json()[
        "breakers"]] == [KEY]
    closed = server.call("POST", "/breakers/tenant%2F42/close", role=Role.OPERATE)
    assert (closed.json()["breaker"], closed.json()["in_use"]) == ("closed", 1)
    again = server.call("POST", "/breakers/tenant%2F42/close", role=Role.OPERATE)
    assert again.status_code == 404
    assert "is not open" in again.json()["detail"]
    assert server.call("POST", "/breakers/nope/open", role=Role.OPERATE).status_code == 404
    with taskwheel.HttpClient(server.url, server.key(MINE, Role.ADMIN), MINE) as client:
        assert client.open_breaker(KEY)["breaker"] == "open"
        assert [b["breaker"] for b in client.breakers()] == ["open"]
        assert client.close_breaker(KEY)["breaker"] == "closed"
