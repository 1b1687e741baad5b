"""Rate limits on jobs made from templates, on every store: a schedule's fired jobs and a
workflow's steps carry their task's rate key as an enqueued job does, and wait for its
tokens once they could run; a step waiting for its dependencies, or a queue_one fire
waiting for its turn, is not admitted before then (it would run out of order), and
`jobs explain` tells the two kinds of waiting apart. A queue_one fire written before
rate keys reached templates still waits for its turn after the upgrade."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pg_server import postgres_url, schema_for
from taskwheel.clock import ManualClock
from taskwheel.explanations import ReasonCode
from taskwheel.jobs import JobTemplate, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import Overlap, Schedule
from taskwheel.stores.base import Store
from taskwheel.stores.postgres import store as postgres_store
from taskwheel.stores.sqlite import store as sqlite_store
from taskwheel.workflows import WorkflowSpec

from .backends import SQLITE_FILE, BackendFactory
from .conftest import NS, QUEUE, T0, TTL, new_job, succeeded
from .test_schedules import EVERY, created, definition, plan
from .test_workflows import workflow

KEY = "api:partner"


def rated(request: NewJob, rate: float = 1.0, burst: int = 2) -> NewJob:
    return replace(request, rate_key=KEY, rate_cost=1, rate_declared=(rate, burst))


def rated_schedule(store: Store, overlap: Overlap = Overlap.ALLOW, burst: int = 2
                   ) -> Schedule:
    declared = definition(overlap=overlap)
    assert declared.job is not None
    job = dataclasses.replace(declared.job, rate_key=KEY, rate_cost=1,
                              rate_declared=(1.0, burst))
    return created(store, dataclasses.replace(declared, job=job))


def rated_workflow(after: dict[str, list[str]]) -> WorkflowSpec:
    spec = workflow(after)
    steps = tuple(dataclasses.replace(step, job=dataclasses.replace(
        step.job, rate_key=KEY, rate_cost=1, rate_declared=(1.0, 5))) for step in spec.steps)
    return dataclasses.replace(spec, steps=steps)


def claim(store: Store) -> list[int]:
    return [job.id for job in store.claim_jobs(NS, "w1", [QUEUE], 100, TTL).jobs]


def status(store: Store, job_id: int) -> JobStatus:
    return store.get_job(NS, job_id).status


def reasons(store: Store, job_id: int) -> list[ReasonCode]:
    return [reason.code for reason in store.explain_job(NS, job_id).reasons]


def test_a_template_keeps_its_request_s_rate_key() -> None:
    template = JobTemplate.of(rated(new_job()))
    assert (template.rate_key, template.rate_cost, template.rate_declared) == (
        KEY, 1, (1.0, 2))
    assert JobTemplate.from_dict(template.to_dict()) == template
    stored = template.to_dict()
    for name in ("rate_key", "rate_cost", "rate_declared"):
        del stored[name]  # as stored before templates carried rate keys
    assert JobTemplate.from_dict(stored) == dataclasses.replace(
        template, rate_key=None, rate_declared=None)


def test_a_schedule_s_fired_jobs_wait_for_their_task_s_tokens(
    store: Store, clock: ManualClock
) -> None:
    schedule = rated_schedule(store)
    clock.advance(4 * EVERY)
    fired = store.fire_schedules(NS, [plan(schedule, *(T0 + n * EVERY for n in (1, 2, 3, 4)),
                                           expected=T0 + EVERY)])
    ids = [f.job_id for f in fired]
    assert {status(store, job_id) for job_id in ids if job_id} == {JobStatus.WAITING}
    assert claim(store) == []
    assert store.admit_rated_jobs(NS) == 2  # the burst
    assert claim(store) == ids[:2]
    assert store.admit_rated_jobs(NS) == 0  # no token left (this pass sees them start)
    clock.advance(1)
    assert store.admit_rated_jobs(NS) == 1  # one token a second
    assert claim(store) == ids[2:3]


def test_a_queue_one_fire_waits_for_its_turn_before_its_tokens(
    store: Store, clock: ManualClock
) -> None:
    schedule = rated_schedule(store, Overlap.QUEUE_ONE, burst=5)
    clock.advance(EVERY)
    [first] = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
    assert store.admit_rated_jobs(NS) == 1
    assert claim(store) == [first.job_id]
    clock.advance(EVERY)
    [second] = store.fire_schedules(NS, [plan(schedule, T0 + 2 * EVERY,
                                              expected=T0 + 2 * EVERY)])
    assert second.job_id is not None
    # Tokens are there, but it waits for the first job to end.
    assert store.admit_rated_jobs(NS) == 0
    assert claim(store) == []
    assert ReasonCode.WAITING_FOR_EARLIER_RUN in reasons(store, second.job_id)
    assert ReasonCode.WAITING_FOR_RATE not in reasons(store, second.job_id)

    [running] = store.get_jobs(NS, [first.job_id])
    store.finish_attempts([succeeded(running)])

    assert status(store, second.job_id) is JobStatus.WAITING  # now for its tokens
    assert reasons(store, second.job_id)[0] is ReasonCode.WAITING_FOR_RATE
    assert ReasonCode.WAITING_FOR_EARLIER_RUN not in reasons(store, second.job_id)
    assert store.admit_rated_jobs(NS) == 1
    assert claim(store) == [second.job_id]


def test_a_workflow_step_waits_for_its_dependencies_before_its_tokens(store: Store) -> None:
    run = store.submit_workflow(rated_workflow({"a": [], "b": ["a"]}))
    a, b = (run.step(name).job.id for name in ("a", "b"))
    assert (status(store, a), status(store, b)) == (JobStatus.WAITING, JobStatus.WAITING)
    assert store.admit_rated_jobs(NS) == 1  # a only: b's dependency has not run
    assert claim(store) == [a]
    assert claim(store) == []
    assert ReasonCode.WAITING_FOR_STEPS in reasons(store, b)
    assert ReasonCode.WAITING_FOR_RATE not in reasons(store, b)

    [running] = store.get_jobs(NS, [a])
    store.finish_attempts([succeeded(running)])

    assert status(store, b) is JobStatus.WAITING  # now for its tokens
    assert reasons(store, b)[0] is ReasonCode.WAITING_FOR_RATE
    assert store.admit_rated_jobs(NS) == 1
    assert claim(store) == [b]


def test_a_rated_template_s_jobs_count_in_the_key_s_bucket(store: Store) -> None:
    store.submit_workflow(rated_workflow({"a": [], "b": [], "c": ["a"]}))
    [bucket] = store.list_rates(NS)
    assert (bucket.key, bucket.rate, bucket.burst, bucket.waiting) == (KEY, 1.0, 5, 2)


def test_a_queue_one_fire_written_before_the_upgrade_still_waits_for_its_turn(
    open_backend: BackendFactory, backend: str, tmp_path: Path, clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before version 17 a fire waiting for its turn had waiting_on 0, as a job waiting
    for tokens has now: the upgrade marks it, so that it is released in its turn and
    never admitted before."""
    module = sqlite_store if backend == "sqlite" else postgres_store
    every = module._MIGRATIONS
    monkeypatch.setattr(module, "_MIGRATIONS", [m for m in every if m[0] < 17])
    store = open_backend(tmp_path, clock)
    try:
        store.migrate()
        schedule = created(store, definition(overlap=Overlap.QUEUE_ONE))
        clock.advance(EVERY)
        [first] = store.fire_schedules(NS, [plan(schedule, T0 + EVERY)])
        [second] = store.fire_schedules(NS, [plan(schedule, T0 + 2 * EVERY,
                                                  expected=T0 + 2 * EVERY)])
        assert second.job_id is not None
        _unmark(backend, tmp_path, second.job_id)  # as version 16's statements wrote it
        monkeypatch.setattr(module, "_MIGRATIONS", every)
        assert [name for name in store.migrate() if name.startswith("0017_")]

        assert store.release_waiting(NS) == 0  # its turn has not come
        [running] = store.get_jobs(NS, claim(store))
        assert running.id == first.job_id
        store.finish_attempts([succeeded(running)])
        assert claim(store) == [second.job_id]
    finally:
        store.close()


def _unmark(backend: str, directory: Path, job_id: int) -> None:
    if backend == "sqlite":
        with closing(sqlite3.connect(directory / SQLITE_FILE)) as conn, conn:
            conn.execute("UPDATE taskwheel_jobs SET waiting_on = 0 WHERE id = ?", (job_id,))
        return
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {}.jobs SET waiting_on = 0 WHERE id = %s").format(
            sql.Identifier(schema_for(directory))), (job_id,))
