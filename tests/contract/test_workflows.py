"""Workflows in the store: a run is created in one transaction; a step becomes ready in the
transaction that ends its last dependency; failure policies (fail_fast, fail_downstream,
continue) apply whichever way a step ends; retries re-run what failed and nothing that
succeeded; cancel stops the run; a workflow schedule fires one run per fire time."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import IllegalTransition, InvalidInput, WorkflowRunNotFound
from taskwheel.jobs import AttemptOutcome, Guarantee, Job, JobFilter, JobTemplate, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import (
    FirePlan,
    FireResult,
    Overlap,
    PlannedFire,
    ScheduleDefinition,
    build_trigger,
)
from taskwheel.stores.base import Store
from taskwheel.workflows import (
    FailurePolicy,
    RunStatus,
    StepSpec,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
)

from .backends import BackendFactory
from .conftest import NS, OTHER_NS, QUEUE, T0, TTL, failed, new_job, succeeded, ts

S = JobStatus
DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def workflow(
    after: Mapping[str, Sequence[str]],
    *,
    on_failure: FailurePolicy = FailurePolicy.FAIL_DOWNSTREAM,
    policies: Mapping[str, FailurePolicy] | None = None,
    namespace: str = NS,
    max_attempts: int = 1,
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE,
    deadlines: Mapping[str, float] | None = None,
    name: str = "wf",
) -> WorkflowSpec:
    """A spec whose steps (in the order of ``after``, which must be topological) each run
    the task ``contract.<step>`` with the step's name as argument."""
    steps = tuple(
        StepSpec(
            name=step,
            job=JobTemplate(
                task=f"contract.{step}", args_json=json.dumps([step]), kwargs_json="{}",
                queue=QUEUE, priority=0, max_attempts=max_attempts, guarantee=guarantee.value,
                deadline_policy="expire", timeout=None,
                deadline_in=(deadlines or {}).get(step),
            ),
            after=tuple(deps),
            on_failure=(policies or {}).get(step, on_failure),
        )
        for step, deps in after.items()
    )
    return WorkflowSpec(name, namespace, on_failure, steps)


def statuses(store: Store, run_id: int, namespace: str = NS) -> dict[str, JobStatus]:
    return {s.name: s.job.status for s in store.get_workflow_run(namespace, run_id).steps}


def step_job(store: Store, run_id: int, step: str) -> Job:
    return store.get_workflow_run(NS, run_id).step(step).job


def claim(store: Store, *steps: str, worker: str = "w1") -> dict[str, Job]:
    """Claim every ready job; they must be exactly the steps named."""
    jobs = store.claim_jobs(NS, worker, [QUEUE], 10_000, TTL).jobs
    claimed = {job.step or "": job for job in jobs}
    assert sorted(claimed) == sorted(steps)
    return claimed


def dead(job: Job) -> Outcome:
    return failed(job, S.DEAD, error=f"ValueError: {job.step} broke")


def run_of(store: Store, run_id: int) -> WorkflowRun:
    return store.get_workflow_run(NS, run_id)


# -- submitting ---------------------------------------------------------------------------


def test_a_run_queues_its_first_steps_and_holds_the_others_waiting(store: Store) -> None:
    run = store.submit_workflow(workflow(DIAMOND))

    assert (run.name, run.namespace, run.status) == ("wf", NS, RunStatus.RUNNING)
    assert [s.name for s in run.steps] == ["a", "b", "c", "d"]
    assert {s.name: s.after for s in run.steps} == {
        "a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")
    }
    assert {s.name: s.job.status for s in run.steps} == {
        "a": S.QUEUED, "b": S.WAITING, "c": S.WAITING, "d": S.WAITING
    }
    ids = [s.job.id for s in run.steps]
    assert ids == sorted(ids)
    assert all(s.job.workflow_run_id == run.id for s in run.steps)
    assert run.step_counts == {"queued": 1, "waiting": 3}
    assert (ts(run.created_at), run.finished_at) == (T0, None)
    assert store.get_workflow_run(NS, run.id) == run


def test_a_run_is_durable_and_belongs_to_its_namespace_only(
    store: Store, open_backend: BackendFactory, tmp_path: Path, clock: ManualClock
) -> None:
    run = store.submit_workflow(workflow(DIAMOND))
    store.close()

    reopened = open_backend(tmp_path, clock)
    try:
        assert reopened.get_workflow_run(NS, run.id) == run
        with pytest.raises(WorkflowRunNotFound):
            reopened.get_workflow_run(OTHER_NS, run.id)
        assert reopened.list_workflow_runs(OTHER_NS, WorkflowRunFilter()) == []
    finally:
        reopened.close()


def test_a_run_that_cannot_be_written_writes_nothing(store: Store) -> None:
    broken = workflow({"a": [], "b": ["a"]}, max_attempts=0)  # refused by the schema

    with pytest.raises(Exception):  # noqa: B017, PT011 - each backend raises its own
        store.submit_workflow(broken)

    assert store.list_workflow_runs(NS, WorkflowRunFilter()) == []
    assert store.list_jobs(NS, JobFilter()) == []


# -- readiness ------------------------------------------------------------------------------


def test_a_step_becomes_ready_in_the_transaction_that_finishes_its_last_dependency(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow(DIAMOND))
    a = claim(store, "a")["a"]
    store.finish_attempts([succeeded(a, "A")])
    assert statuses(store, run.id) == {"a": S.SUCCEEDED, "b": S.QUEUED, "c": S.QUEUED,
                                       "d": S.WAITING}

    jobs = claim(store, "b", "c")
    store.finish_attempts([succeeded(jobs["b"], "B")])
    assert statuses(store, run.id)["d"] is S.WAITING
    store.finish_attempts([succeeded(jobs["c"], "C")])

    # No claim, rescue or any other call in between: the finish made it ready.
    assert statuses(store, run.id)["d"] is S.QUEUED
    d = claim(store, "d")["d"]
    outcomes = store.upstream_outcomes(NS, d.id)
    assert [(o.step, o.status, o.result, o.error) for o in outcomes] == [
        ("b", S.SUCCEEDED, "B", None), ("c", S.SUCCEEDED, "C", None)
    ]
    store.finish_attempts([succeeded(d, "D")])
    finished = run_of(store, run.id)
    assert (finished.status, ts(finished.finished_at)) == (RunStatus.SUCCEEDED, T0)
    assert finished.step_counts == {"succeeded": 4}


def test_a_chain_runs_one_step_at_a_time(store: Store) -> None:
    chain = {f"s{n}": [f"s{n - 1}"] if n else [] for n in range(6)}
    run = store.submit_workflow(workflow(chain))

    for n in range(6):
        job = claim(store, f"s{n}")[f"s{n}"]
        assert run_of(store, run.id).status is RunStatus.RUNNING
        store.finish_attempts([succeeded(job, n)])

    assert run_of(store, run.id).status is RunStatus.SUCCEEDED


def test_a_fan_out_and_fan_in_of_a_thousand_steps(store: Store) -> None:
    middle = [f"m{n:04d}" for n in range(998)]
    run = store.submit_workflow(workflow({"source": [], **{m: ["source"] for m in middle},
                                          "sink": middle}))
    store.finish_attempts([succeeded(claim(store, "source")["source"])])

    claimed = store.claim_jobs(NS, "w1", [QUEUE], 10_000, TTL).jobs
    assert sorted(job.step or "" for job in claimed) == middle  # all in parallel
    for start in range(0, len(claimed), 100):
        store.finish_attempts([succeeded(job) for job in claimed[start:start + 100]])
        last_batch = start + 100 >= len(claimed)
        assert (step_job(store, run.id, "sink").status is S.QUEUED) is last_batch

    store.finish_attempts([succeeded(claim(store, "sink")["sink"])])
    assert run_of(store, run.id).step_counts == {"succeeded": 1000}
    assert run_of(store, run.id).status is RunStatus.SUCCEEDED


def test_a_step_whose_attempt_fails_with_retries_left_keeps_its_dependents_waiting(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}, max_attempts=2))
    a = claim(store, "a")["a"]

    store.finish_attempts([failed(a, S.QUEUED)])

    assert statuses(store, run.id) == {"a": S.QUEUED, "b": S.WAITING}
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    assert statuses(store, run.id) == {"a": S.SUCCEEDED, "b": S.QUEUED}


def test_a_step_rescued_from_a_vanished_worker_runs_again_and_the_run_goes_on(
    store: Store, clock: ManualClock
) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}, max_attempts=3))
    claim(store, "a", worker="doomed")
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert len(rescue.requeued) == 1
    assert statuses(store, run.id) == {"a": S.QUEUED, "b": S.WAITING}
    store.finish_attempts([succeeded(claim(store, "a", worker="survivor")["a"])])
    assert statuses(store, run.id) == {"a": S.SUCCEEDED, "b": S.QUEUED}


# -- failure policies ------------------------------------------------------------------------

WIDE = {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"], "z": ["c", "y"]}


def test_fail_downstream_blocks_the_failed_steps_dependents_and_lets_other_branches_finish(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow(WIDE, on_failure=FailurePolicy.FAIL_DOWNSTREAM))
    first = claim(store, "a", "x")

    store.finish_attempts([dead(first["a"])])

    assert statuses(store, run.id) == {"a": S.DEAD, "b": S.UPSTREAM_FAILED,
                                       "c": S.UPSTREAM_FAILED, "x": S.RUNNING,
                                       "y": S.WAITING, "z": S.UPSTREAM_FAILED}
    assert step_job(store, run.id, "c").last_error == "upstream step 'a' ended dead"
    assert ts(step_job(store, run.id, "c").finished_at) == T0
    assert run_of(store, run.id).status is RunStatus.RUNNING
    store.finish_attempts([succeeded(first["x"])])
    store.finish_attempts([succeeded(claim(store, "y")["y"])])
    assert run_of(store, run.id).status is RunStatus.FAILED
    assert claim(store) == {}


def test_fail_fast_cancels_every_unfinished_step_and_asks_running_ones_to_stop(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow(WIDE, on_failure=FailurePolicy.FAIL_FAST))
    first = claim(store, "a", "x")

    store.finish_attempts([dead(first["a"])])

    assert statuses(store, run.id) == {"a": S.DEAD, "b": S.CANCELLED, "c": S.CANCELLED,
                                       "x": S.RUNNING, "y": S.CANCELLED, "z": S.CANCELLED}
    assert step_job(store, run.id, "x").cancel_requested is True
    assert store.heartbeat("w1", TTL, {first["x"].id: first["x"].fence}) == {first["x"].id: True}
    assert run_of(store, run.id).status is RunStatus.RUNNING
    store.finish_attempts([Outcome(first["x"].id, first["x"].fence, S.CANCELLED,
                                   AttemptOutcome.CANCELLED)])
    # Failed, not cancelled: nobody cancelled the run, a step failed it.
    assert run_of(store, run.id).status is RunStatus.FAILED


def test_continue_runs_the_dependents_of_a_failed_step_and_shows_them_the_failure(
    store: Store,
) -> None:
    run = store.submit_workflow(workflow(DIAMOND, on_failure=FailurePolicy.CONTINUE))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    middle = claim(store, "b", "c")

    store.finish_attempts([dead(middle["b"]), succeeded(middle["c"], [1, 2])])

    d = claim(store, "d")["d"]
    assert [(o.step, o.status, o.result, o.error) for o in store.upstream_outcomes(NS, d.id)] == [
        ("b", S.DEAD, None, "ValueError: b broke"), ("c", S.SUCCEEDED, [1, 2], None)
    ]
    store.finish_attempts([succeeded(d)])
    assert run_of(store, run.id).status is RunStatus.FAILED  # a step failed all the same


def test_a_steps_own_policy_overrides_the_runs(store: Store) -> None:
    run = store.submit_workflow(workflow(
        {"a": [], "b": ["a"], "x": [], "y": ["x"]}, on_failure=FailurePolicy.FAIL_FAST,
        policies={"a": FailurePolicy.CONTINUE},
    ))
    first = claim(store, "a", "x")

    store.finish_attempts([dead(first["a"])])

    assert statuses(store, run.id) == {"a": S.DEAD, "b": S.QUEUED, "x": S.RUNNING,
                                       "y": S.WAITING}
    assert [s.on_failure for s in run.steps] == [FailurePolicy.CONTINUE,
                                                 FailurePolicy.FAIL_FAST,
                                                 FailurePolicy.FAIL_FAST,
                                                 FailurePolicy.FAIL_FAST]


def test_a_step_that_dies_with_its_worker_on_its_last_attempt_fails_its_dependents(
    store: Store, clock: ManualClock
) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}, max_attempts=1))
    claim(store, "a")
    clock.advance(TTL + 1)

    rescue = store.rescue_expired_leases(NS)

    assert len(rescue.failed) == 1
    assert statuses(store, run.id) == {"a": S.DEAD, "b": S.UPSTREAM_FAILED}
    assert run_of(store, run.id).status is RunStatus.FAILED


def test_an_at_most_once_step_given_back_at_shutdown_fails_its_dependents(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]},
                                         guarantee=Guarantee.AT_MOST_ONCE))
    a = claim(store, "a")["a"]

    assert store.release_jobs("w1", {a.id: a.fence}) == [a.id]

    assert statuses(store, run.id) == {"a": S.DEAD, "b": S.UPSTREAM_FAILED}


def test_a_step_that_expires_while_waiting_fails_its_dependents(
    store: Store, clock: ManualClock
) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"], "c": ["b"]},
                                         deadlines={"b": 60}))
    a = claim(store, "a")["a"]
    clock.advance(61)  # b still waits for a

    assert store.expire_missed_deadlines(NS) == 1

    assert statuses(store, run.id) == {"a": S.RUNNING, "b": S.EXPIRED,
                                       "c": S.UPSTREAM_FAILED}
    store.finish_attempts([succeeded(a)])
    assert run_of(store, run.id).status is RunStatus.FAILED


def test_cancelling_one_pending_step_applies_its_policy(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": [], "c": ["a", "b"]}))

    store.cancel_job(NS, step_job(store, run.id, "b").id)

    assert statuses(store, run.id) == {"a": S.QUEUED, "b": S.CANCELLED,
                                       "c": S.UPSTREAM_FAILED}


# -- retry ---------------------------------------------------------------------------------


def failed_run(store: Store) -> WorkflowRun:
    """a -> b -> c and x -> y -> z; d after c and z. a succeeded, b died (c and d
    upstream_failed), x succeeded, y died (z upstream_failed)."""
    run = store.submit_workflow(workflow(
        {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"], "z": ["y"], "d": ["c", "z"]}
    ))
    first = claim(store, "a", "x")
    store.finish_attempts([succeeded(first["a"], "A"), succeeded(first["x"], "X")])
    second = claim(store, "b", "y")
    store.finish_attempts([dead(second["b"]), dead(second["y"])])
    assert run_of(store, run.id).status is RunStatus.FAILED
    return run_of(store, run.id)


def test_retrying_a_run_reruns_the_failed_steps_and_what_follows_them_but_not_what_succeeded(
    store: Store, clock: ManualClock
) -> None:
    before = failed_run(store)
    clock.advance(10)

    run = store.retry_workflow_run(NS, before.id)

    assert (run.status, run.finished_at) == (RunStatus.RUNNING, None)
    assert {s.name: s.job.status for s in run.steps} == {
        "a": S.SUCCEEDED, "b": S.QUEUED, "c": S.WAITING, "x": S.SUCCEEDED, "y": S.QUEUED,
        "z": S.WAITING, "d": S.WAITING,
    }
    for name in ("a", "x"):  # untouched
        assert run.step(name).job == before.step(name).job
    b = run.step("b").job
    assert (b.attempt, b.result, b.finished_at, ts(b.run_at)) == (0, None, None, T0 + 10)

    jobs = claim(store, "b", "y")
    store.finish_attempts([succeeded(job) for job in jobs.values()])
    store.finish_attempts([succeeded(job) for job in claim(store, "c", "z").values()])
    store.finish_attempts([succeeded(claim(store, "d")["d"])])
    assert run_of(store, run.id).status is RunStatus.SUCCEEDED
    assert len(store.list_attempts(NS, run.step("a").job.id)) == 1


def test_retrying_one_step_reruns_it_and_its_downstream_only(store: Store) -> None:
    before = failed_run(store)

    run = store.retry_workflow_run(NS, before.id, step="b")

    assert {s.name: s.job.status for s in run.steps} == {
        "a": S.SUCCEEDED, "b": S.QUEUED, "c": S.WAITING, "x": S.SUCCEEDED, "y": S.DEAD,
        "z": S.UPSTREAM_FAILED, "d": S.UPSTREAM_FAILED,
    }
    store.finish_attempts([succeeded(claim(store, "b")["b"])])
    store.finish_attempts([succeeded(claim(store, "c")["c"])])
    # d still depends on z, which failed and was not retried.
    assert run_of(store, run.id).status is RunStatus.FAILED
    assert statuses(store, run.id)["c"] is S.SUCCEEDED


def test_retrying_the_job_of_a_failed_step_reruns_its_downstream_too(store: Store) -> None:
    before = failed_run(store)

    job = store.retry_job(NS, before.step("y").job.id)

    assert job.status is S.QUEUED
    assert statuses(store, before.id)["z"] is S.WAITING
    assert run_of(store, before.id).status is RunStatus.RUNNING


@pytest.mark.parametrize(("step", "field", "reason"), [
    ("nope", "step", "no step 'nope'"),
    ("a", "step", "step 'a' succeeded"),
])
def test_a_retry_that_cannot_be_done_is_refused_and_changes_nothing(
    store: Store, step: str, field: str, reason: str
) -> None:
    before = failed_run(store)

    with pytest.raises(InvalidInput, match=reason) as refused:
        store.retry_workflow_run(NS, before.id, step=step)

    assert refused.value.field == field
    assert run_of(store, before.id) == before


def test_a_run_with_nothing_failed_has_nothing_to_retry(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": []}))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])

    with pytest.raises(InvalidInput, match="nothing to retry"):
        store.retry_workflow_run(NS, run.id)
    with pytest.raises(WorkflowRunNotFound):
        store.retry_workflow_run(NS, run.id + 1)


def test_a_retry_is_refused_while_a_step_after_it_still_runs(store: Store) -> None:
    run = store.submit_workflow(workflow(DIAMOND, on_failure=FailurePolicy.CONTINUE))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    middle = claim(store, "b", "c")
    store.finish_attempts([dead(middle["b"]), succeeded(middle["c"])])
    claim(store, "d")

    with pytest.raises(IllegalTransition):
        store.retry_workflow_run(NS, run.id, step="b")
    assert statuses(store, run.id) == {"a": S.SUCCEEDED, "b": S.DEAD, "c": S.SUCCEEDED,
                                       "d": S.RUNNING}


# -- cancel ----------------------------------------------------------------------------------


def test_cancelling_a_run_cancels_pending_steps_and_stops_running_ones(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": [], "c": ["a"], "d": ["b"]}))
    store.finish_attempts([succeeded(claim(store, "a", "b")["a"])])  # c is queued now

    cancelled = store.cancel_workflow_run(NS, run.id)

    assert {s.name: s.job.status for s in cancelled.steps} == {
        "a": S.SUCCEEDED, "b": S.RUNNING, "c": S.CANCELLED, "d": S.CANCELLED
    }
    assert cancelled.step("b").job.cancel_requested is True
    assert (cancelled.status, cancelled.cancel_requested) == (RunStatus.RUNNING, True)
    b = cancelled.step("b").job
    store.finish_attempts([Outcome(b.id, b.fence, S.CANCELLED, AttemptOutcome.CANCELLED)])
    assert run_of(store, run.id).status is RunStatus.CANCELLED
    assert claim(store) == {}


def test_cancelling_a_finished_run_changes_nothing(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": []}))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    finished = run_of(store, run.id)

    assert store.cancel_workflow_run(NS, run.id) == finished
    with pytest.raises(WorkflowRunNotFound):
        store.cancel_workflow_run(OTHER_NS, run.id)


def test_a_cancelled_run_can_be_retried(store: Store) -> None:
    run = store.submit_workflow(workflow({"a": [], "b": ["a"]}))
    store.cancel_workflow_run(NS, run.id)
    assert run_of(store, run.id).status is RunStatus.CANCELLED

    again = store.retry_workflow_run(NS, run.id)

    assert (again.status, again.cancel_requested) == (RunStatus.RUNNING, False)
    assert statuses(store, run.id) == {"a": S.QUEUED, "b": S.WAITING}


# -- listing -----------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_their_step_counts_and_filters(store: Store) -> None:
    first = store.submit_workflow(workflow({"a": []}, name="one"))
    second = store.submit_workflow(workflow({"a": [], "b": ["a"]}, name="two"))
    store.submit_workflow(workflow({"a": []}, name="one", namespace=OTHER_NS))
    store.finish_attempts([succeeded(store.claim_jobs(NS, "w", [QUEUE], 1, TTL).jobs[0])])

    listed = store.list_workflow_runs(NS, WorkflowRunFilter())

    assert [(r.id, r.name, r.status, r.step_counts, r.steps) for r in listed] == [
        (second.id, "two", RunStatus.RUNNING, {"waiting": 1, "queued": 1}, ()),
        (first.id, "one", RunStatus.SUCCEEDED, {"succeeded": 1}, ()),
    ]
    by_status = store.list_workflow_runs(NS, WorkflowRunFilter(status=RunStatus.SUCCEEDED))
    assert [r.id for r in by_status] == [first.id]
    assert [r.id for r in store.list_workflow_runs(NS, WorkflowRunFilter(name="two"))] == [
        second.id
    ]
    assert len(store.list_workflow_runs(NS, WorkflowRunFilter(limit=1))) == 1


# -- schedules and pruning ---------------------------------------------------------------------


def test_a_workflow_schedule_fires_one_run_per_fire_time(store: Store, clock: ManualClock) -> None:
    trigger = build_trigger(every=60, start=datetime.fromtimestamp(T0, UTC))
    spec = workflow({"a": [], "b": ["a"]})
    schedule, _ = store.upsert_schedule(ScheduleDefinition.build("nightly", spec, trigger))
    assert store.get_schedule(NS, "nightly").definition.workflow == spec
    clock.advance(120)

    def fire(*times: float, expected: float) -> list[FireResult]:
        plan = FirePlan(schedule.id, expected, tuple(PlannedFire(t, t) for t in times),
                        max(times) + 60, Overlap.ALLOW)
        return [f.result for f in store.fire_schedules(NS, [plan])]

    assert fire(T0 + 60, expected=T0 + 60) == [FireResult.CREATED]
    assert fire(T0 + 60, T0 + 120, expected=T0 + 120) == [FireResult.DUPLICATE,
                                                         FireResult.CREATED]

    runs = store.list_workflow_runs(NS, WorkflowRunFilter())
    assert sorted((r.schedule_id, ts(r.fire_at)) for r in runs) == [
        (schedule.id, T0 + 60), (schedule.id, T0 + 120)
    ]
    assert all(r.step_counts == {"queued": 1, "waiting": 1} for r in runs)


def test_a_workflow_schedule_that_skips_overlaps_fires_nothing_while_a_run_goes_on(
    store: Store, clock: ManualClock
) -> None:
    trigger = build_trigger(every=60, start=datetime.fromtimestamp(T0, UTC))
    schedule, _ = store.upsert_schedule(ScheduleDefinition.build(
        "nightly", workflow({"a": []}), trigger, overlap="skip"))
    clock.advance(60)
    assert store.trigger_schedule(NS, "nightly").workflow_run_id is not None

    plan = FirePlan(schedule.id, T0 + 60, (PlannedFire(T0 + 60, T0 + 60),), T0 + 120, Overlap.SKIP)
    assert [f.result for f in store.fire_schedules(NS, [plan])] == [FireResult.OVERLAP_SKIPPED]


def test_pruning_keeps_the_steps_of_running_runs_and_forgets_finished_runs(
    store: Store, clock: ManualClock
) -> None:
    done = store.submit_workflow(workflow({"a": []}, name="done"))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    going = store.submit_workflow(workflow({"a": [], "b": ["a"]}, name="going"))
    store.finish_attempts([succeeded(claim(store, "a")["a"])])
    clock.advance(3600)

    assert store.prune_finished(NS, before=T0 + 1800) == 1

    with pytest.raises(WorkflowRunNotFound):
        store.get_workflow_run(NS, done.id)
    assert statuses(store, going.id) == {"a": S.SUCCEEDED, "b": S.QUEUED}
    b = claim(store, "b")["b"]
    assert [o.step for o in store.upstream_outcomes(NS, b.id)] == ["a"]
    # A plain job enqueued now may be given a pruned step's id: it has no dependencies.
    plain = store.enqueue([new_job()])[0]
    assert store.upstream_outcomes(NS, plain.id) == []
