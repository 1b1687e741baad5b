"""The job lifecycle: the table of legal transitions, checked pair by pair against a copy
written from DESIGN.md, and the shape DESIGN.md promises (one way into running, finished
jobs leave only when re-run by hand)."""

from __future__ import annotations

from itertools import product

import pytest

from taskwheel.errors import IllegalTransition
from taskwheel.lifecycle import (
    PENDING,
    RUNNING_TARGETS,
    TERMINAL,
    TRANSITIONS,
    JobStatus,
    can_transition,
    check_transition,
)

S = JobStatus

# Written from DESIGN.md's diagram, independently of lifecycle.py.
EXPECTED: set[tuple[JobStatus, JobStatus]] = {
    # enqueue with a delay, or backing off before a retry
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.EXPIRED),
    # workflow dependencies
    (S.WAITING, S.QUEUED),
    (S.WAITING, S.CANCELLED),
    (S.WAITING, S.EXPIRED),
    (S.WAITING, S.UPSTREAM_FAILED),
    (S.WAITING, S.SKIPPED),
    # ready to be claimed
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.EXPIRED),
    (S.QUEUED, S.SCHEDULED),
    (S.QUEUED, S.WAITING),  # a rate-limited job ready without an admission waits for tokens
    # an attempt ends, or its lease is rescued or given back
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.QUEUED),
    (S.RUNNING, S.SCHEDULED),
    (S.RUNNING, S.DEAD),
    (S.RUNNING, S.CANCELLED),
    # finished jobs run again only when retried or replayed by hand
    (S.SUCCEEDED, S.QUEUED),
    (S.CANCELLED, S.QUEUED),
    (S.DEAD, S.QUEUED),
    (S.EXPIRED, S.QUEUED),
    # a workflow step re-run behind a dependency that re-runs too waits for it again
    (S.CANCELLED, S.WAITING),
    (S.DEAD, S.WAITING),
    (S.EXPIRED, S.WAITING),
    (S.UPSTREAM_FAILED, S.QUEUED),
    (S.UPSTREAM_FAILED, S.WAITING),
    (S.SKIPPED, S.QUEUED),
    (S.SKIPPED, S.WAITING),
}

ALL_PAIRS = list(product(JobStatus, JobStatus))
LEGAL = sorted(EXPECTED)
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in EXPECTED]


def test_the_table_has_a_row_for_every_status() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_the_table_is_exactly_the_designed_one() -> None:
    table = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    assert table - EXPECTED == set(), "transitions the design does not allow"
    assert EXPECTED - table == set(), "transitions the design needs but the table lacks"


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_a_legal_transition_is_accepted(source: JobStatus, target: JobStatus) -> None:
    assert can_transition(source, target)
    check_transition(source, target, job_id=7)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_an_illegal_transition_is_refused_naming_the_job_and_both_states(
    source: JobStatus, target: JobStatus
) -> None:
    assert not can_transition(source, target)
    with pytest.raises(IllegalTransition) as caught:
        check_transition(source, target, job_id=42)
    error = caught.value
    assert (error.job_id, error.source, error.target) == (42, source.value, target.value)
    assert str(error) == f"job 42 cannot go from {source.value} to {target.value}"


def test_an_illegal_transition_without_a_job_id_still_says_what_was_refused() -> None:
    with pytest.raises(IllegalTransition, match=r"^job cannot go from succeeded to running$"):
        check_transition(S.SUCCEEDED, S.RUNNING)


@pytest.mark.parametrize("status", list(JobStatus))
def test_no_status_transitions_to_itself(status: JobStatus) -> None:
    assert not can_transition(status, status)


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_finished_job_leaves_only_to_be_run_again(status: JobStatus) -> None:
    # Retry / DLQ replay put it back in the queue; workflow re-runs may make it wait
    # for its dependencies again. Nothing else: a finished job never runs, succeeds,
    # dies or expires straight from where it ended.
    assert S.QUEUED in TRANSITIONS[status]
    assert TRANSITIONS[status] <= {S.QUEUED, S.WAITING}


def test_only_a_queued_job_can_be_claimed() -> None:
    assert {source for source, target in EXPECTED if target is S.RUNNING} == {S.QUEUED}
    assert [s for s in JobStatus if can_transition(s, S.RUNNING)] == [S.QUEUED]


@pytest.mark.parametrize("target", [S.SUCCEEDED, S.DEAD])
def test_only_an_attempt_can_succeed_or_exhaust_retries(target: JobStatus) -> None:
    assert [s for s in JobStatus if can_transition(s, target)] == [S.RUNNING]


def test_only_a_job_that_has_not_started_can_expire() -> None:
    sources = {s for s in JobStatus if can_transition(s, S.EXPIRED)}
    assert sources
    assert sources <= PENDING


def test_statuses_are_pending_running_or_terminal_and_nothing_else() -> None:
    assert PENDING.isdisjoint(TERMINAL)
    assert S.RUNNING not in PENDING | TERMINAL
    assert PENDING | TERMINAL | {S.RUNNING} == set(JobStatus)
    assert {S.SCHEDULED, S.WAITING, S.QUEUED} == PENDING


def test_every_pending_or_running_job_can_reach_an_end() -> None:
    def reachable(start: JobStatus) -> set[JobStatus]:
        seen: set[JobStatus] = set()
        frontier = [start]
        while frontier:
            for target in TRANSITIONS[frontier.pop()]:
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        return seen

    for status in PENDING | {S.RUNNING}:
        assert reachable(status) & TERMINAL, status
    # And every status is reachable from where a new job begins.
    assert reachable(S.SCHEDULED) | reachable(S.WAITING) | {S.SCHEDULED, S.WAITING} == set(
        JobStatus
    )


def test_every_unfinished_job_can_be_cancelled() -> None:
    for status in PENDING | {S.RUNNING}:
        assert can_transition(status, S.CANCELLED), status


def test_running_targets_are_where_an_attempt_may_send_a_job() -> None:
    assert {S.SUCCEEDED, S.QUEUED, S.SCHEDULED, S.DEAD, S.CANCELLED} == RUNNING_TARGETS


def test_statuses_are_their_stored_strings() -> None:
    assert {s.value for s in JobStatus} == {
        "scheduled", "waiting", "queued", "running", "succeeded", "cancelled", "dead",
        "expired", "upstream_failed", "skipped",
    }
    assert JobStatus("upstream_failed") is S.UPSTREAM_FAILED
