"""The supervisor's small decisions: sizes and limits refused naming their option, the
pause before a restart, the exit status it leaves with, the line it logs for a death."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from taskwheel.errors import InvalidInput
from taskwheel.jobs import Job
from taskwheel.lifecycle import JobStatus
from taskwheel.worker.supervised import ChildLimits, parse_size
from taskwheel.worker.supervisor import (
    FIRST_PAUSE,
    LONGEST_PAUSE,
    QUICK_DEATH,
    describe_jobs,
    exit_status,
    quick_deaths_after,
    restart_pause,
)

from .job_records import job_record


@pytest.mark.parametrize(("given", "size"), [
    ("512MB", 512 * 2**20), ("512 MiB", 512 * 2**20), ("1.5G", 3 * 2**29), ("2gib", 2**31),
    ("800k", 800 * 1024), ("4096", 4096), (4096, 4096), ("10B", 10),
])
def test_sizes_read_in_binary_units(given: Any, size: int) -> None:
    assert parse_size(given, "max_memory_per_child") == size


@pytest.mark.parametrize("given", ["", "lots", "5 parsecs", "-1MB", "0", 0, -3, True, "1e9"])
def test_a_size_that_is_not_one_is_refused_naming_the_option(given: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_size(given, "max_memory_per_child")
    assert raised.value.field == "max_memory_per_child"


@pytest.mark.parametrize(("options", "field"), [
    ({"max_tasks_per_child": 0}, "max_tasks_per_child"),
    ({"max_tasks_per_child": True}, "max_tasks_per_child"),
    ({"max_memory_per_child": "none"}, "max_memory_per_child"),
])
def test_child_limits_are_validated_however_they_are_built(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as built:
        ChildLimits.build(**options)
    assert built.value.field == field
    direct = {"max_tasks": options.get("max_tasks_per_child"),
              "max_memory": options.get("max_memory_per_child")}
    with pytest.raises(InvalidInput) as constructed:
        ChildLimits(**direct)
    assert constructed.value.field == field


def test_no_limits_by_default() -> None:
    assert ChildLimits.build() == ChildLimits(None, None)


def test_a_worker_process_that_lived_is_restarted_at_once_and_quick_deaths_back_off() -> None:
    pauses = [restart_pause(n) for n in range(12)]
    assert pauses[:4] == [0.0, FIRST_PAUSE, 2 * FIRST_PAUSE, 4 * FIRST_PAUSE]
    assert pauses == sorted(pauses)
    assert pauses[-1] == LONGEST_PAUSE
    assert restart_pause(10**6) == LONGEST_PAUSE


def test_only_processes_dying_at_once_with_no_job_to_blame_make_the_pause_grow() -> None:
    # A worker that cannot start (or dies idle) at once: the run grows.
    assert quick_deaths_after(0, 0.4, held_jobs=False) == 1
    assert quick_deaths_after(3, QUICK_DEATH - 0.1, held_jobs=False) == 4
    # One that lived a while, or died holding jobs (a poison job, charged an attempt
    # for it): the next one starts at once.
    assert quick_deaths_after(3, QUICK_DEATH, held_jobs=False) == 0
    assert quick_deaths_after(3, 0.4, held_jobs=True) == 0
    assert restart_pause(quick_deaths_after(5, 0.4, held_jobs=True)) == 0.0


def test_the_exit_status_is_the_worker_processes_as_a_shell_reports_it() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-signal.SIGKILL) == 128 + 9
    assert exit_status(-signal.SIGSEGV) == 128 + 11


def _job(job_id: int, task: str, attempt: int, status: JobStatus) -> Job:
    job = job_record(job_id, status=status, attempt=attempt, max_attempts=3)
    job.task = task
    return job


def test_the_line_for_a_death_names_each_job_and_what_became_of_it() -> None:
    assert describe_jobs([]) == "it held no job"
    line = describe_jobs([_job(7, "resize", 1, JobStatus.SCHEDULED),
                          _job(9, "poison", 3, JobStatus.DEAD)])
    assert line == ("its jobs ended as crashed attempts: 7 (resize, attempt 1/3 -> scheduled), "
                    "9 (poison, attempt 3/3 -> dead)")
