"""`taskwheel.HttpClient` against a real server on both stores: the App's verbs over
HTTP, answering the same `Job` and `Attempt` records the store holds, and the Python
API's errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import taskwheel
from taskwheel.errors import InvalidInput, QuotaExceeded
from taskwheel.keys import Role
from taskwheel.lifecycle import JobStatus

from .conftest import MINE, THEIRS, Running, kill_jobs, snapshot


@pytest.fixture
def client(server: Running) -> Iterator[taskwheel.HttpClient]:
    with taskwheel.HttpClient(server.url, server.key(MINE, Role.ADMIN), MINE) as made:
        yield made


def test_jobs_over_http_are_the_jobs_the_store_holds(
    server: Running, client: taskwheel.HttpClient
) -> None:
    job = client.enqueue("add", [1, 2], priority=7, idempotency_key="k")
    assert job == server.store.get_job(MINE, job.id)
    assert (job.task, job.args, job.queue, job.priority) == ("add", [1, 2], "math", 7)
    assert client.enqueue("add", [1, 2], idempotency_key="k").id == job.id
    batch = client.enqueue_many([{"task": "ping"}] * 3)
    listed = client.list_jobs(task="ping", limit=3)
    assert [j.id for j in listed] == sorted((j.id for j in batch), reverse=True)
    assert client.cancel_job(job.id).status is JobStatus.CANCELLED
    assert client.retry_job(job.id).status is JobStatus.QUEUED
    kill_jobs(server.store, MINE, [batch[0].id])
    assert [j.id for j in client.list_dead()] == [batch[0].id]
    [attempt] = client.attempts(batch[0].id)
    assert attempt == server.store.list_attempts(MINE, batch[0].id)[0]
    assert client.replay_dead(None) == [batch[0].id]
    assert client.purge_dead() == 0
    running = client.enqueue("ping", queue="held")
    took = server.store.claim_jobs(MINE, "w1", ["held"], 10, 30)
    assert [j.id for j in took.jobs] == [running.id]
    deleted, refused = client.delete_jobs([batch[0].id, running.id, 10**9])  # replayed
    assert [j.id for j in deleted] == [batch[0].id]
    assert set(refused) == {running.id, 10**9}
    assert server.store.get_jobs(MINE, [batch[0].id]) == []
    assert server.store.get_jobs(MINE, [running.id])[0].status is JobStatus.RUNNING
    assert client.stats()["queues"]


def test_pages_are_followed_to_the_limit(server: Running, client: taskwheel.HttpClient) -> None:
    made = client.enqueue_many([{"task": "ping"}] * 1500)
    assert [j.id for j in client.list_jobs(limit=1200)] == sorted(
        (j.id for j in made), reverse=True)[:1200]


def test_schedules_and_workflow_runs_over_http(client: taskwheel.HttpClient) -> None:
    schedule = client.define_schedule("hourly", "ping", every="1h")
    assert schedule["name"] == "hourly"
    assert client.pause_schedule("hourly")["state"] == "paused"
    assert [s["name"] for s in client.list_schedules()] == ["hourly"]
    client.remove_schedule("hourly")
    assert client.list_schedules() == []
    run = client.submit({"name": "wf", "steps": [{"task": "ping"}]})
    assert client.workflow_run(run["id"])["name"] == "wf"
    assert client.cancel_workflow_run(run["id"])["status"] == "cancelled"
    assert [r["id"] for r in client.list_workflow_runs()] == [run["id"]]


def test_refusals_are_the_python_apis_errors(server: Running,
                                             client: taskwheel.HttpClient) -> None:
    before = snapshot(server.store)
    with pytest.raises(InvalidInput) as bad:
        client.enqueue("add", [1])
    assert bad.value.field == "args"
    with pytest.raises(taskwheel.ApiError) as missing:
        client.job(10**9)
    assert missing.value.status == 404
    with taskwheel.HttpClient(server.url, server.key(THEIRS, Role.ADMIN), MINE) as foreign:
        with pytest.raises(taskwheel.ApiError) as hidden:
            foreign.list_jobs()
        assert hidden.value.status == 404
    with taskwheel.HttpClient(server.url, server.key(MINE, Role.READ), MINE) as reader:
        with pytest.raises(taskwheel.ApiError) as low:
            reader.enqueue("ping")
        assert low.value.status == 403
    assert snapshot(server.store) == before
    server.call("PUT", "/quota", key=server.key("*", Role.ADMIN), json={"max_queued": 0})
    with pytest.raises(QuotaExceeded):
        client.enqueue("ping")
    with pytest.raises(InvalidInput):
        taskwheel.HttpClient("ftp://example.org", "k")


def test_enqueue_many_says_which_jobs_existed_already(client: taskwheel.HttpClient) -> None:
    first = client.enqueue("ping", idempotency_key="twice")
    answer = client.enqueue_many([{"task": "ping", "idempotency_key": "twice"},
                                  {"task": "ping"}])
    assert answer[0].id == first.id
    assert answer.existing == (True, False)


def test_pauses_and_maximum_depths_over_http(server: Running,
                                             client: taskwheel.HttpClient) -> None:
    job = client.enqueue("ping")
    assert client.pause_queue(job.queue)["held"] == 1
    assert [p["name"] for p in client.pauses()] == [job.queue]
    assert server.store.claim_jobs(MINE, "w1", [job.queue], 10, 30.0).jobs == []
    assert client.resume_queue(job.queue) == 1
    with pytest.raises(taskwheel.ApiError) as not_paused:
        client.resume_queue(job.queue)
    assert not_paused.value.status == 404
    assert client.pause_task("ping")["kind"] == "task"
    assert client.resume_task("ping") == 1
    assert client.set_queue_limit(job.queue, 1)["depth"] == 1
    with pytest.raises(taskwheel.ApiError) as full:
        client.enqueue("ping")
    assert full.value.status == 429
    assert [limit["max_depth"] for limit in client.queue_limits()] == [1]
    client.remove_queue_limit(job.queue)
    assert client.enqueue("ping").queue == job.queue
