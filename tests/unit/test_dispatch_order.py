"""Dispatch order: priority (higher first), then deadline (earliest first, none last),
then due time, then id; compared with a reference ordering written here by hand."""

from __future__ import annotations

from functools import cmp_to_key

from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.jobs import Job, dispatch_key

from .job_records import EPOCH, job_record


def _compare(left: int | float, right: int | float) -> int:
    return (left > right) - (left < right)


def reference_order(a: Job, b: Job) -> int:
    """Negative when ``a`` must be claimed before ``b``."""
    if a.priority != b.priority:
        return -_compare(a.priority, b.priority)  # higher priority first
    if (a.deadline is None) != (b.deadline is None):
        return -1 if a.deadline is not None else 1  # a deadline beats none
    if a.deadline is not None and b.deadline is not None and a.deadline != b.deadline:
        return -1 if a.deadline < b.deadline else 1
    if a.run_at != b.run_at:
        return -1 if a.run_at < b.run_at else 1
    return _compare(a.id, b.id)


# Few distinct values, so that ties at every level are common.
offsets = st.sampled_from([-86400.0, -1.5, 0.0, 0.25, 60.0, 3600.0])


@st.composite
def ready_jobs(draw: st.DrawFn) -> list[Job]:
    ids = draw(st.lists(st.integers(min_value=1, max_value=10**6), min_size=0, max_size=12,
                        unique=True))
    return [
        job_record(
            job_id,
            priority=draw(st.sampled_from([-1_000_000, -5, 0, 1, 5, 1_000_000])),
            deadline=draw(st.none() | offsets.map(lambda s: EPOCH + s)),
            run_at=EPOCH + draw(offsets),
        )
        for job_id in ids
    ]


@settings(max_examples=120)
@given(ready_jobs())
def test_jobs_sort_by_priority_then_deadline_then_due_time_then_id(jobs: list[Job]) -> None:
    by_key = [job.id for job in sorted(jobs, key=Job.dispatch_key)]
    by_reference = [job.id for job in sorted(jobs, key=cmp_to_key(reference_order))]
    assert by_key == by_reference


@settings(max_examples=50)
@given(ready_jobs())
def test_the_order_does_not_depend_on_the_order_jobs_arrive_in(jobs: list[Job]) -> None:
    forwards = [job.id for job in sorted(jobs, key=Job.dispatch_key)]
    backwards = [job.id for job in sorted(reversed(jobs), key=Job.dispatch_key)]
    assert forwards == backwards


def test_a_higher_priority_goes_first_whatever_its_deadline_and_due_time() -> None:
    urgent = job_record(2, priority=0, deadline=EPOCH, run_at=EPOCH - 3600)
    important = job_record(9, priority=1, deadline=None, run_at=EPOCH + 3600)
    assert sorted([urgent, important], key=Job.dispatch_key) == [important, urgent]


def test_at_equal_priority_a_deadline_goes_before_none_and_earlier_before_later() -> None:
    no_deadline = job_record(1, run_at=EPOCH - 3600)
    late = job_record(2, deadline=EPOCH + 600, run_at=EPOCH)
    soon = job_record(3, deadline=EPOCH + 60, run_at=EPOCH + 1)
    ordered = sorted([no_deadline, late, soon], key=Job.dispatch_key)
    assert [job.id for job in ordered] == [3, 2, 1]


def test_then_the_job_due_first_and_finally_the_lower_id() -> None:
    later = job_record(1, run_at=EPOCH + 5)
    sooner_high_id = job_record(8, run_at=EPOCH)
    sooner_low_id = job_record(7, run_at=EPOCH)
    ordered = sorted([later, sooner_high_id, sooner_low_id], key=Job.dispatch_key)
    assert [job.id for job in ordered] == [7, 8, 1]


def test_the_key_of_a_job_is_the_key_of_its_fields() -> None:
    job = job_record(5, priority=3, deadline=EPOCH + 10, run_at=EPOCH + 1)
    assert job.dispatch_key() == dispatch_key(3, EPOCH + 10, EPOCH + 1, 5)
    assert job_record(5, deadline=None).dispatch_key() == dispatch_key(0, None, EPOCH, 5)


@settings(max_examples=100)
@given(
    st.integers(min_value=-1_000_000, max_value=1_000_000),
    st.floats(min_value=0, max_value=4e9),
    st.floats(min_value=0, max_value=4e9),
)
def test_a_job_without_a_deadline_comes_after_any_deadline_at_equal_priority(
    priority: int, deadline: float, run_at: float
) -> None:
    with_deadline = dispatch_key(priority, deadline, run_at + 1e6, 2)
    without = dispatch_key(priority, None, run_at, 1)
    assert with_deadline < without
