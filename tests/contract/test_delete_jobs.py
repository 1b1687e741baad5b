"""Deleting jobs for good (the dashboard's bulk delete): every state but running, with the
attempts and edges; all or none; nothing of another namespace."""

from __future__ import annotations

import pytest

from taskwheel.errors import IllegalTransition, JobNotFound
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.stores.base import Store

from .conftest import NS, OTHER_NS, QUEUE, TTL, claim_one, enqueue_one, failed, new_job, succeeded
from .test_workflows import DIAMOND, workflow


def test_deleting_jobs_removes_them_with_their_attempts_whatever_their_state(
    store: Store,
) -> None:
    queued = enqueue_one(store)
    scheduled = enqueue_one(store, new_job(delay=60))
    enqueue_one(store, new_job(max_attempts=1))
    finished = claim_one(store)
    store.finish_attempts([succeeded(finished)])
    dead = claim_one(store)
    store.finish_attempts([failed(dead, JobStatus.DEAD)])
    assert store.list_attempts(NS, dead.id) != []
    before = {j.id: j for j in store.get_jobs(NS, [queued.id, scheduled.id, finished.id,
                                                    dead.id])}

    deleted = store.delete_jobs(NS, [dead.id, queued.id, finished.id, scheduled.id, queued.id])

    assert deleted == [before[i] for i in sorted(before)]
    assert store.get_jobs(NS, list(before)) == []
    assert all(store.list_attempts(NS, i) == [] for i in before)
    assert store.list_jobs(NS, JobFilter()) == []
    assert store.claim_jobs(NS, "w1", [QUEUE], 10, TTL).jobs == []


def test_deleting_a_running_job_is_refused_and_deletes_nothing(store: Store) -> None:
    enqueue_one(store)
    running = claim_one(store)
    waiting = enqueue_one(store)

    with pytest.raises(IllegalTransition, match=rf"job {running.id} is running: .*cancel"):
        store.delete_jobs(NS, [waiting.id, running.id])

    assert store.get_job(NS, waiting.id) == waiting
    assert store.get_job(NS, running.id).status is JobStatus.RUNNING


def test_deleting_an_unknown_or_foreign_job_is_job_not_found_and_deletes_nothing(
    store: Store,
) -> None:
    mine = enqueue_one(store)
    theirs = enqueue_one(store, new_job(namespace=OTHER_NS))

    with pytest.raises(JobNotFound, match=f"job {theirs.id} not found"):
        store.delete_jobs(NS, [mine.id, theirs.id])
    with pytest.raises(JobNotFound):
        store.delete_jobs(NS, [mine.id, 10_000])

    assert store.get_job(NS, mine.id) == mine
    assert store.get_job(OTHER_NS, theirs.id) == theirs
    assert store.delete_jobs(NS, []) == []


def test_a_step_of_a_running_workflow_run_cannot_be_deleted(store: Store) -> None:
    run = store.submit_workflow(workflow(DIAMOND))
    first = run.step("a").job

    with pytest.raises(IllegalTransition, match=f"workflow run {run.id}"):
        store.delete_jobs(NS, [first.id])

    assert store.get_job(NS, first.id) == first
    assert store.get_workflow_run(NS, run.id) == run


def test_the_steps_of_an_ended_run_are_deleted_with_their_edges(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}))
    store.cancel_workflow_run(NS, run.id)
    ids = [s.job.id for s in store.get_workflow_run(NS, run.id).steps]

    assert [j.id for j in store.delete_jobs(NS, ids)] == ids

    assert store.get_jobs(NS, ids) == []
    # A job enqueued next (which may reuse a deleted id on SQLite) inherits no edge.
    fresh = enqueue_one(store)
    assert claim_one(store).id == fresh.id
