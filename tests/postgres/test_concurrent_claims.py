"""Claims by concurrent connections: SKIP LOCKED hands each ready job to exactly one
claimer, and a claimer never waits for rows someone else has locked."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.postgres import PostgresStore

from .conftest import NS, QUEUE, new_job

JOBS = 1_500
BATCH = 20


def claim_until_empty(url: str, worker: str, start: Any = None) -> list[int]:
    """A claimer with connections of its own: claims batches until none is ready or
    due. An empty answer while jobs still wait is not the end: another claimer's
    statement may still hold rows it looked at and passed over (PostgreSQL keeps the
    lock of a row it rechecked, a due job another claim made ready meanwhile, to the
    end of that statement), and a worker would be woken again by their wake-up."""
    store = PostgresStore(url)
    try:
        if start is not None:
            start.wait()
        taken: list[int] = []
        empty = 0
        while empty <= 1_000:
            claim = store.claim_jobs(NS, worker, [QUEUE], BATCH, 60)
            taken.extend(job.id for job in claim.jobs)
            empty = 0 if claim.jobs else empty + 1
            if empty and not _waiting(store):
                break
        return taken
    finally:
        store.close()


def _waiting(store: PostgresStore) -> bool:
    return any(store.list_jobs(NS, JobFilter(status=status, limit=1))
               for status in (JobStatus.QUEUED, JobStatus.SCHEDULED))


def assert_each_job_claimed_once_by_its_claimer(
    store: PostgresStore, claims: dict[str, list[int]], job_ids: list[int]
) -> None:
    claimed = [job_id for taken in claims.values() for job_id in taken]
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert sorted(claimed) == sorted(job_ids), "a ready job was never claimed"
    owner = {job_id: worker for worker, taken in claims.items() for job_id in taken}
    for job in store.list_jobs(NS, JobFilter(limit=10 * JOBS)):
        assert job.status is JobStatus.RUNNING
        assert (job.attempt, job.fence) == (1, 1), job  # one claim each, ever
        assert job.worker_id == owner[job.id]


def test_claimer_threads_with_their_own_connections_never_take_the_same_job(
    store: PostgresStore, url: str
) -> None:
    job_ids = [job.id for job in store.enqueue([new_job(n) for n in range(JOBS)])]
    workers = [f"thread-{n}" for n in range(6)]
    start = threading.Barrier(len(workers))

    with ThreadPoolExecutor(len(workers)) as pool:
        results = pool.map(lambda worker: claim_until_empty(url, worker, start), workers)
        claims = dict(zip(workers, results, strict=True))

    assert_each_job_claimed_once_by_its_claimer(store, claims, job_ids)


def test_claimer_processes_never_take_the_same_job(store: PostgresStore, url: str) -> None:
    job_ids = [job.id for job in store.enqueue([new_job(n) for n in range(JOBS)])]
    workers = [f"process-{n}" for n in range(3)]
    context = multiprocessing.get_context("spawn")

    with ProcessPoolExecutor(len(workers), mp_context=context) as pool:
        results = pool.map(claim_until_empty, [url] * len(workers), workers)
        claims = dict(zip(workers, results, strict=True))

    assert_each_job_claimed_once_by_its_claimer(store, claims, job_ids)


def test_a_claim_skips_rows_another_transaction_holds_instead_of_waiting(
    store: PostgresStore, url: str, schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    jobs = store.enqueue([new_job(n) for n in range(6)])
    held = [job.id for job in jobs[:3]]  # the first in dispatch order
    claimed: list[int] = []
    with admin.transaction():
        admin.execute(
            sql.SQL("SELECT id FROM {}.jobs WHERE id = ANY(%s) FOR UPDATE")
            .format(sql.Identifier(schema)), (held,),
        )
        claimer = threading.Thread(
            target=lambda: claimed.extend(
                job.id for job in store.claim_jobs(NS, "w", [QUEUE], 10, 60).jobs
            ),
            daemon=True,
        )
        claimer.start()
        claimer.join(timeout=10)
        assert not claimer.is_alive(), "the claim waited for the locked rows"

    assert claimed == [job.id for job in jobs[3:]]
    # Once the lock is gone, the skipped jobs are there to be claimed.
    assert [job.id for job in store.claim_jobs(NS, "w", [QUEUE], 10, 60).jobs] == held
