"""A key limited to 3 on PostgreSQL with 4 workers (16 slots), workers SIGKILLed at
random mid-run and replaced: the tasks' own record of when each attempt started and
ended (O_APPEND writes, independent of the database) shows at most 3 running at every
instant, and every job succeeds. An attempt killed with its worker ends, at the latest,
when its worker was killed."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project

LIMIT = 3


def intervals(record: Path, killed_at: dict[int, float]) -> list[tuple[float, float]]:
    """(start, end) of every attempt in the record; one that never wrote its end ran
    until its process was killed."""
    starts: dict[tuple[str, str], tuple[int, float]] = {}
    ends: dict[tuple[str, str], float] = {}
    for line in record.read_text().splitlines():
        event, job, fence, pid, at = line.split()
        if event == "start":
            starts[job, fence] = (int(pid), float(at))
        else:
            ends[job, fence] = float(at)
    spans = []
    for attempt, (pid, start) in starts.items():
        end = ends.get(attempt)
        if end is None:
            assert pid in killed_at, f"attempt {attempt} never ended, its process {pid} lives"
            end = killed_at[pid]
        spans.append((start, end))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    # An end and a start at the same instant do not overlap: ends first.
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_a_key_limited_to_three_never_runs_four_while_workers_are_killed(
    pg_project: Project, tmp_path: Path
) -> None:
    project, rng = pg_project, random.Random(13)
    record = tmp_path / "record.txt"
    project.start_scheduler()  # rescues the killed workers' leases
    workers = [project.start_worker("-c", "4", "--lease-ttl", "2s") for _ in range(4)]
    wait_for(lambda: len(project.store.stats("default").workers) == 4, timeout=30,
             what="four workers registered")
    job_ids = project.enqueue_many(
        "limited", [["t1", rng.choice([0.1, 0.2, 0.3]), str(record)] for _ in range(60)])

    killed_at: dict[int, float] = {}
    for _ in range(3):
        doomed = wait_for(lambda: next((w for w in rng.sample(workers, len(workers))
                                        if project.running_under(w)), None),
                          timeout=30, what="a worker running a limited job")
        pids = project.worker_process_pids(doomed)
        time.sleep(rng.uniform(0, 0.2))
        doomed.signal_group(signal.SIGKILL)
        assert doomed.wait() == -signal.SIGKILL
        for pid in [doomed.pid, *pids]:  # dead by now, if not a little earlier
            killed_at[pid] = time.time()
        workers.remove(doomed)
        workers.append(project.start_worker("-c", "4", "--lease-ttl", "2s"))

    # About 10 s on a quiet machine; a loaded one took over 60 once (3 at a time, and
    # each killed worker's jobs wait out their 2 s leases).
    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=180,
             what="every limited job to succeed")
    spans = intervals(record, killed_at)
    assert len(spans) >= len(job_ids)
    assert most_at_once(spans) == LIMIT  # the limit was reached, and never passed
    limit = project.store.get_limit("default", "tenant:t1")
    assert (limit.capacity, limit.in_use, limit.waiting) == (LIMIT, 0, 0)
