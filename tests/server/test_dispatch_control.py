"""Pauses and queues' maximum depths over HTTP, on both stores: an operate key pauses and
resumes a queue or task (no worker claims its jobs meanwhile), an admin key sets a
queue's maximum depth, and an enqueue past it is a 429 problem that writes nothing."""

from __future__ import annotations

from taskwheel.keys import Role

from .conftest import MINE, Running, snapshot


def _claimable(server: Running, queue: str) -> list[int]:
    return [job.id for job in server.store.claim_jobs(MINE, "w1", [queue], 10, 30.0).jobs]


def test_a_paused_queue_s_jobs_wait_until_it_is_resumed(server: Running) -> None:
    job = server.call("POST", "/jobs", json={"task": "ping"}).json()
    queue = job["queue"]
    assert server.call("POST", f"/queues/{queue}/pause", role=Role.READ).status_code == 403
    paused = server.call("POST", f"/queues/{queue}/pause", role=Role.OPERATE)
    assert paused.status_code == 200
    assert (paused.json()["kind"], paused.json()["name"], paused.json()["held"]) == (
        "queue", queue, 1)
    assert [p["name"] for p in server.call("GET", "/pauses", role=Role.READ).json()[
        "pauses"]] == [queue]
    assert _claimable(server, queue) == []
    resumed = server.call("POST", f"/queues/{queue}/resume", role=Role.OPERATE)
    assert resumed.json() == {"kind": "queue", "name": queue, "released": 1}
    again = server.call("POST", f"/queues/{queue}/resume", role=Role.OPERATE)
    assert again.status_code == 404
    assert "is not paused" in again.json()["detail"]
    assert _claimable(server, queue) == [job["id"]]


def test_a_paused_task_s_jobs_wait_in_every_queue(server: Running) -> None:
    job = server.call("POST", "/jobs", json={"task": "ping"}).json()
    assert server.call("POST", "/tasks/ping/pause", role=Role.OPERATE).json()["held"] == 1
    assert _claimable(server, job["queue"]) == []
    assert server.call("POST", "/tasks/ping/resume", role=Role.OPERATE).json()[
        "released"] == 1
    assert server.call("POST", "/tasks/bad%20name/pause", role=Role.OPERATE
                       ).status_code == 422


def test_an_enqueue_past_a_queue_s_max_depth_is_a_429_that_writes_nothing(
    server: Running,
) -> None:
    queue = server.call("POST", "/jobs", json={"task": "ping"}).json()["queue"]
    limit = {"max_depth": 2}
    assert server.call("PUT", f"/queues/{queue}/limit", json=limit, role=Role.OPERATE
                       ).status_code == 403
    set_ = server.call("PUT", f"/queues/{queue}/limit", json=limit)
    assert set_.json() == {"namespace": MINE, "queue": queue, "max_depth": 2, "depth": 1}
    for bad in (0, -1, "x", None):
        assert server.call("PUT", f"/queues/{queue}/limit", json={"max_depth": bad}
                           ).status_code == 422
    before = snapshot(server.store)
    refused = server.call("POST", "/jobs/batch", json={"jobs": [{"task": "ping"}] * 2})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["type"].endswith("queue-full")
    assert "is full" in refused.json()["detail"]
    assert snapshot(server.store) == before
    assert server.call("POST", "/jobs", json={"task": "ping"}).status_code == 201
    assert server.call("GET", "/queue-limits", role=Role.READ).json()["limits"][0][
        "depth"] == 2
    assert server.call("DELETE", f"/queues/{queue}/limit").status_code == 204
    assert server.call("DELETE", f"/queues/{queue}/limit").status_code == 404
    assert server.call("POST", "/jobs", json={"task": "ping"}).status_code == 201


def test_a_pause_may_be_given_an_end(server: Running) -> None:
    until = "2100-01-01T00:00:00+00:00"
    paused = server.call("POST", "/queues/math/pause", role=Role.OPERATE, json={"until": until})
    assert paused.status_code == 200
    assert paused.json()["until"].startswith("2100-01-01T00:00:00")
    for bad in ({"until": "2000-01-01T00:00:00+00:00"}, {"until": "2100-01-01T00:00:00"},
                {"until": "soon"}, {"for": "1m"}):
        assert server.call("POST", "/tasks/ping/pause", role=Role.OPERATE, json=bad
                           ).status_code == 422, bad
    assert [p["kind"] for p in server.call("GET", "/pauses").json()["pauses"]] == ["queue"]
