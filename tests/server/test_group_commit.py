"""Single enqueues written in groups (`taskwheel.server.batching.GroupCommit`), on both
stores: requests that arrive together share one transaction, yet each gets the answer
its own enqueue would have had, its own error included; and through the API an
idempotency key already held answers 200 with ``existing``."""

from __future__ import annotations

import asyncio

import pytest

from taskwheel.errors import QuotaExceeded
from taskwheel.jobs import JobFilter
from taskwheel.quotas import Quota
from taskwheel.server.batching import GroupCommit
from taskwheel.stores.base import Store

from .conftest import MINE, Running
from .server_app import add, ping


def test_requests_that_arrive_together_share_a_transaction(store: Store) -> None:
    enqueues = GroupCommit(store)

    async def together() -> list[tuple[int, bool]]:
        answers = await asyncio.gather(*(
            enqueues.enqueue(add.request([i, i], namespace=MINE)) for i in range(20)))
        return [(job.id, existing) for job, existing in answers]

    answers = asyncio.run(together())
    assert enqueues.groups == 1  # all arrived before the first write: one transaction
    stored = {job.id: job.args for job in store.list_jobs(MINE, JobFilter(limit=100))}
    assert [stored[job_id] for job_id, _ in answers] == [[i, i] for i in range(20)]
    assert not any(existing for _, existing in answers)


def test_a_refused_group_is_written_again_one_by_one_each_with_its_own_answer(
    store: Store,
) -> None:
    store.set_quota(Quota(MINE, max_queued=3))
    enqueues = GroupCommit(store)

    async def together() -> list[object]:
        requests = [ping.request(namespace=MINE, idempotency_key=f"k{i % 4}")
                    for i in range(8)]
        return await asyncio.gather(*(enqueues.enqueue(r) for r in requests),
                                    return_exceptions=True)

    answers = asyncio.run(together())
    # The group of eight holds four new jobs: over the quota of three, so refused whole;
    # one by one, each request gets what its own enqueue would have: a job, the job that
    # holds its key, or the quota's refusal.
    assert enqueues.groups == 1
    assert len(store.list_jobs(MINE, JobFilter(limit=100))) == 3
    first = answers[:3]
    assert all(isinstance(a, tuple) and not a[1] for a in first), first
    assert isinstance(answers[3], QuotaExceeded)
    for i, answer in enumerate(answers):
        assert isinstance(answer, tuple | QuotaExceeded), answer
        if isinstance(answer, tuple):
            assert answer[0].idempotency_key == f"k{i % 4}"


def test_an_idempotency_key_already_held_answers_200_and_existing(server: Running) -> None:
    body = {"task": "ping", "idempotency_key": "once"}
    first = server.call("POST", "/jobs", json=body)
    assert (first.status_code, first.json()["existing"]) == (201, False)
    again = server.call("POST", "/jobs", json=body)
    assert (again.status_code, again.json()["existing"]) == (200, True)
    assert again.json()["id"] == first.json()["id"]
    batch = server.call("POST", "/jobs/batch", json={"jobs": [body, {"task": "ping"}]})
    assert batch.status_code == 201
    assert [j["existing"] for j in batch.json()["jobs"]] == [True, False]


@pytest.mark.parametrize("clients", [8])
def test_concurrent_single_enqueues_each_get_their_committed_job(
    server: Running, clients: int
) -> None:
    async def burst() -> list[int]:
        import httpx

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            headers = {"Authorization": f"Bearer {server.key()}"}
            path = f"/api/v1/namespaces/{MINE}/jobs"
            answers = await asyncio.gather(*(
                http.post(path, json={"task": "add", "args": [i, 1]}, headers=headers)
                for i in range(clients * 5)))
        assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
        return [a.json()["args"][0] for a in answers]

    assert asyncio.run(burst()) == list(range(clients * 5))
    assert len(server.store.list_jobs(MINE, JobFilter(limit=100))) == clients * 5
