"""PostgreSQL's claim of delayed jobs that fell due: one statement makes them ready and
claims them (a due job costs its worker one round trip and one commit, as a ready one
does), except behind a gate (a concurrency key, a pause), which the claim in steps
keeps; and claimers racing for due jobs never take the same one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

import taskwheel
from taskwheel.gates import GateKind
from taskwheel.jobs import Claim, Job
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.postgres import PostgresStore
from waiting import wait_for

from .conftest import NS, QUEUE, new_job
from .test_concurrent_claims import assert_each_job_claimed_once_by_its_claimer, claim_until_empty

DUE_JOBS = 600


def make_due(admin: psycopg.Connection[tuple[Any, ...]], schema: str, jobs: list[Job]) -> None:
    """Move delayed jobs' due time an hour into the past (the database judges time)."""
    admin.execute(
        sql.SQL("UPDATE {}.jobs SET run_at = run_at - 7200 WHERE id = ANY(%s)")
        .format(sql.Identifier(schema)), ([job.id for job in jobs],),
    )


def claim_at_once(store: PostgresStore, limit: int = 10) -> list[int] | None:
    """The one-statement claim alone: the ids it took, or None when it answered "in
    steps"."""
    request = ClaimRequest("w1", (NS,), (QUEUE,), limit, 60.0, due=True)
    with store.executor("claim_jobs", "statement") as executor:
        claim = executor.claim_at_once(request)
    return None if claim is None else [job.id for job in claim.jobs]


def test_a_due_delayed_job_is_made_ready_and_claimed_in_one_statement(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    due, later = store.enqueue([new_job(1, delay=3600), new_job(2, delay=3600)])
    make_due(admin, schema, [due])

    assert claim_at_once(store) == [due.id]
    assert store.get_job(NS, due.id).status is JobStatus.RUNNING
    assert store.get_job(NS, later.id).status is JobStatus.SCHEDULED


def test_a_due_job_with_a_concurrency_key_is_left_to_the_claim_in_steps(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    keyed = replace(new_job(1, delay=3600), gate_key="tenant:1", gate_capacity=1)
    first, second = store.enqueue([keyed, replace(keyed, args=[2], args_json="[2]")])
    make_due(admin, schema, [first, second])

    assert claim_at_once(store) is None
    assert store.get_job(NS, first.id).status is JobStatus.SCHEDULED  # nothing written
    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, 60.0, due=True))
    assert [job.id for job in claim.jobs] == [first.id]  # one slot: one job
    assert store.get_job(NS, second.id).status is JobStatus.QUEUED


def test_a_due_job_under_a_pause_is_left_to_the_claim_in_steps(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    (job,) = store.enqueue([new_job(1, delay=3600)])
    make_due(admin, schema, [job])
    store.pause(NS, GateKind.QUEUE, QUEUE)

    assert claim_at_once(store) is None
    assert store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, 60.0, due=True)).jobs == []
    store.resume(NS, GateKind.QUEUE, QUEUE)
    assert [j.id for j in store.claim_jobs(NS, "w1", [QUEUE], 10, 60).jobs] == [job.id]


@pytest.mark.parametrize("claimers", [6])
def test_claimer_threads_never_take_the_same_due_job(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]],
    claimers: int,
) -> None:
    jobs = store.enqueue([new_job(n, delay=3600) for n in range(DUE_JOBS)])
    make_due(admin, schema, jobs)
    workers = [f"thread-{n}" for n in range(claimers)]
    start = threading.Barrier(len(workers))

    with ThreadPoolExecutor(len(workers)) as pool:
        results = pool.map(lambda worker: claim_until_empty(url, worker, start), workers)
        claims = dict(zip(workers, results, strict=True))

    assert_each_job_claimed_once_by_its_claimer(store, claims, [job.id for job in jobs])


def test_a_pause_in_the_namespace_keeps_a_delayed_job_from_being_claimed_ahead(
    store: PostgresStore,
) -> None:
    """A pause (here of another queue) decides when the namespace's due jobs become
    ready: the claim ahead leaves them to the claim in steps at their due time."""
    (job,) = store.enqueue([new_job(1, delay=0.5)])
    store.pause(NS, GateKind.QUEUE, "other")

    claim = store.claim(ClaimRequest("w1", (NS,), (QUEUE,), 10, 60.0, ahead=1.0))

    assert (claim.jobs, claim.next_due) == ([], job.run_at.timestamp())
    assert store.get_job(NS, job.id).status is JobStatus.SCHEDULED


@pytest.fixture
def app(url: str, store: PostgresStore) -> Iterator[taskwheel.App]:
    application = taskwheel.App(url, namespace=NS, store=store)
    yield application
    application.close()


def test_a_worker_claims_delayed_jobs_ahead_and_starts_their_code_when_they_fall_due(
    app: taskwheel.App,
) -> None:
    """A worker claims a plain delayed job up to `CLAIM_AHEAD` before it falls due and
    holds it: its code never starts before its due time (judged by this host's clock,
    which is the database's here), and its started_at is never before it either."""
    @app.task(queue=QUEUE)
    async def stamp() -> float:
        return time.time()

    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(poll_interval="60s",
                                                                  grace="2s"))
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False},
                              daemon=True)
    thread.start()
    try:
        handles = [stamp.enqueue(delay=lead) for lead in (0.05, 0.1, 0.15, 0.2, 0.3)]
        wait_for(lambda: all(h.refresh().status is JobStatus.SUCCEEDED for h in handles),
                 what="the delayed jobs")
    finally:
        worker.stop()
        thread.join(20)
    for handle in handles:
        job = handle.refresh().record
        assert job.started_at is not None
        assert job.started_at >= job.run_at
        assert job.result >= job.run_at.timestamp(), (job.result, job.run_at)


def test_a_worker_looks_ahead_once_at_a_delayed_job_it_does_not_take(
    app: taskwheel.App, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delayed job of another queue, due within the look ahead: the claim ahead leaves
    it, and the worker claims again at its due time (which makes it ready for its own
    workers), not over and over until then."""
    monkeypatch.setattr("taskwheel.worker.worker.CLAIM_AHEAD", 0.5)

    @app.task(queue=QUEUE)
    def noop() -> None:
        pass

    claims = []
    claim = store.claim

    def counted(request: ClaimRequest) -> Claim:
        claims.append(request)
        return claim(request)

    monkeypatch.setattr(store, "claim", counted)
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(poll_interval="60s",
                                                                  grace="2s"))
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False},
                              daemon=True)
    thread.start()
    try:
        wait_for(lambda: claims, what="the worker's first claim")
        (job,) = store.enqueue([replace(new_job(1, delay=0.6), queue="other")])
        wait_for(lambda: store.get_job(NS, job.id).status is JobStatus.QUEUED,
                 what="the job to fall due")
        wait_for(lambda: len(claims) >= 3, what="the claim at its due time")
    finally:
        worker.stop()
        thread.join(20)
    # The first, the one ahead, the one at its due time (which made it ready), and the
    # wake-up that readiness sends; looking again and again would be a hundred.
    assert len(claims) <= 5, len(claims)
