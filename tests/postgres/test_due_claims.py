"""PostgreSQL's claim of delayed jobs that fell due: one statement makes them ready and
claims them (a due job costs its worker one round trip and one commit, as a ready one
does), except behind a gate (a concurrency key, a pause), which the claim in steps
keeps; and claimers racing for due jobs never take the same one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from taskwheel.fairness import QueueReserve
from taskwheel.gates import GateKind
from taskwheel.jobs import Job
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.postgres import PostgresStore

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


def test_a_claimer_whose_alarm_has_not_rung_reads_ready_jobs_only_and_is_told_of_a_due_one(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """A worker keeps an alarm and claims with ``due`` when it rings; until then its
    claims read only the ready jobs (claim_ready). A due job whose wake-up it missed is
    not made ready by such a claim, but the answer's next_due names it, so the alarm
    rings at once and the next claim, with ``due``, takes it."""
    ready, due, later = store.enqueue(
        [new_job(1), new_job(2, delay=3600), new_job(3, delay=3600)])
    make_due(admin, schema, [due])
    quiet = ClaimRequest("w1", (NS,), (QUEUE,), 10, 60.0, alarm=True)

    first = store.claim(quiet)
    assert [job.id for job in first.jobs] == [ready.id]
    assert store.get_job(NS, due.id).status is JobStatus.SCHEDULED  # not promoted
    assert first.next_due == store.get_job(NS, due.id).run_at.timestamp()
    assert first.next_due is not None
    assert first.next_due < store.now()  # rings at once

    rung = store.claim(replace(quiet, due=True))
    assert [job.id for job in rung.jobs] == [due.id]
    assert rung.next_due == store.get_job(NS, later.id).run_at.timestamp()


def test_a_ready_only_claim_leaves_a_job_whose_deadline_passed(
    store: PostgresStore, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    (missed,) = store.enqueue([replace(new_job(1), deadline_in=3600.0)])
    admin.execute(sql.SQL("UPDATE {}.jobs SET deadline = deadline - 7200 WHERE id = %s")
                  .format(sql.Identifier(schema)), (missed.id,))

    quiet = ClaimRequest("w1", (NS,), (QUEUE,), 10, 60.0, alarm=True)
    assert store.claim(quiet).jobs == []
    assert store.get_job(NS, missed.id).status is JobStatus.QUEUED  # maintenance's
    assert store.claim(replace(quiet, alarm=False)).jobs == []
    assert store.get_job(NS, missed.id).status is JobStatus.EXPIRED


def test_a_ready_only_claim_of_a_queue_with_a_reserve_claims_in_steps(
    store: PostgresStore,
) -> None:
    store.set_queue_reserve(QueueReserve(NS, QUEUE, share=0.5, below=5))
    high, low = store.enqueue([replace(new_job(1), priority=9), new_job(2)])
    quiet = ClaimRequest("w1", (NS,), (QUEUE,), 2, 60.0, alarm=True)
    with store.executor("claim_jobs", "statement") as executor:
        assert executor.claim_at_once(quiet) is None  # its policy claims in steps
    assert {job.id for job in store.claim(quiet).jobs} == {high.id, low.id}


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
