"""``taskwheel jobs tail``: one line per job as it finishes, until Ctrl-C.

The tail follows the jobs unfinished when it started (the newest 1,000 of each
unfinished state) and every job created since, and looks at them again whenever the
store's notifier announces that jobs of the namespace ended (a worker's outcomes) or
were cancelled -- at most every 0.2 s however many come -- so a job is printed as soon
as its end is committed. Not every end is announced (a deadline passed, a lease lapsed)
and a notification may be lost, so without one it also looks every ``--interval``
seconds; a store whose notifier cannot deliver (an in-memory database) is only polled. A
job is printed once, when it is first seen in an end state (succeeded, dead, cancelled,
expired, upstream_failed, skipped); jobs that had finished before the tail started are
not printed.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterable

import click

from taskwheel.cli import watch
from taskwheel.cli.options import Target, common_options
from taskwheel.cli.output import _when
from taskwheel.client import Client
from taskwheel.durations import format_duration
from taskwheel.jobs import Job, JobFilter
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.notify import CANCEL, FINISHED, Listener

# Jobs read per statement, and unfinished jobs of each state followed from the start.
_PAGE = 1_000
# What may have ended jobs: outcomes reported, a cancel. New work ("jobs") has not.
_ENDINGS = frozenset({FINISHED, CANCEL})
# Seconds between two looks at the least, however many announcements come.
_LEAST_GAP = 0.2


class FinishedJobs:
    """Which of the jobs followed have finished since the last look."""

    def __init__(self, client: Client) -> None:
        self.client = client
        newest = client.list_jobs(JobFilter(limit=1))
        self.newest_id = newest[0].id if newest else 0
        self.following: set[int] = set()
        for status in JobStatus:
            if status not in TERMINAL:
                self.following.update(
                    job.id for job in client.list_jobs(JobFilter(status=status, limit=_PAGE)))

    def look(self) -> list[Job]:
        """The followed jobs that have finished since the last look, oldest first."""
        finished = [job for job in self._created_since() if job.status in TERMINAL]
        waiting = sorted(self.following)
        for start in range(0, len(waiting), _PAGE):
            for job in self.client.get_jobs(waiting[start:start + _PAGE]):
                if job.status in TERMINAL:
                    finished.append(job)
        for job in finished:
            self.following.discard(job.id)
        return sorted(finished, key=lambda job: (job.finished_at or job.created_at, job.id))

    def _created_since(self) -> Iterable[Job]:
        """Jobs newer than the newest seen; the unfinished ones are followed from now."""
        created: list[Job] = []
        before: int | None = None
        while True:
            page = self.client.list_jobs(JobFilter(limit=_PAGE, before_id=before))
            fresh = [job for job in page if job.id > self.newest_id]
            created.extend(fresh)
            if len(fresh) < len(page) or len(page) < _PAGE:
                break
            before = page[-1].id
        if created:
            self.newest_id = max(job.id for job in created)
        self.following.update(job.id for job in created if job.status not in TERMINAL)
        return [job for job in created if job.status in TERMINAL]


@click.command("tail")
@click.option("--interval", type=click.FloatRange(min=0.05, max=3600), default=2.0,
              show_default=True, help="Seconds between two looks at the jobs followed "
              "when no notification comes (ended jobs are announced).")
@common_options
def tail_jobs(target: Target, *, interval: float) -> None:
    """Print each job as it finishes (one line; --format json: one JSON object per line)
    until Ctrl-C. Jobs finished before it started are not printed."""
    with target.client() as client:
        listener = client.store.notifier.listen(hears=_ENDINGS)
        followed = FinishedJobs(client)
        try:
            while True:
                for job in followed.look():
                    click.echo(_line(job, as_json=target.output.json))
                wait_for_news(listener, client.namespace, interval)
        except KeyboardInterrupt:
            return
        finally:
            if listener is not None:
                listener.close()


def wait_for_news(listener: Listener | None, namespace: str, seconds: float) -> None:
    """Return when ``listener`` hears that jobs of ``namespace`` may have ended, but not
    sooner than `_LEAST_GAP` after the call (a burst of outcomes costs one look), or
    once ``seconds`` have passed; without a listener, just wait. Tests replace it."""
    if listener is None:
        watch.pause(seconds)
        return
    began = time.monotonic()
    deadline = began + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([listener.fileno()], [], [], left)
        if readable and any(heard == namespace and event in _ENDINGS
                            for heard, event in listener.read()):
            rest = min(deadline, began + _LEAST_GAP) - time.monotonic()
            if rest > 0:
                watch.pause(rest)
            return


def _line(job: Job, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(job.to_dict(), ensure_ascii=False, default=str)
    took = ("-" if job.started_at is None or job.finished_at is None else
            format_duration(max(0.0, (job.finished_at - job.started_at).total_seconds())))
    error = "" if job.status is JobStatus.SUCCEEDED or not job.last_error else (
        "  " + " ".join(job.last_error.splitlines())[:200])
    return (f"{_when(job.finished_at)}  job {job.id}  {job.task}  {job.queue}  "
            f"{job.status.value}  attempt {job.attempt}/{job.max_attempts}  took {took}{error}")
