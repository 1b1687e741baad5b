"""What the dashboard's pages show, built from the store's records: pure functions (no
I/O but the `Client` calls a page makes), shared by the pages and the live feed so a
fragment sent live is the one the page rendered.

The drawings are computed here and drawn by the templates as SVG: the throughput chart
(`chart`) and a workflow run's graph (`layout_graph`: steps in columns by depth, each
edge from a step to the steps after it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from taskwheel.alerts import AlertRule, AlertState
from taskwheel.client import Client
from taskwheel.gates import GateKind, Pause
from taskwheel.jobs import Job, JobFilter, QueueStats, StartWaits, Stats
from taskwheel.lifecycle import JobStatus
from taskwheel.schedules import Schedule
from taskwheel.triggers import DstEffect, upcoming
from taskwheel.workflows import WorkflowRun, WorkflowRunFilter

# Statuses a job leaves no more on its own: failures in red, the rest in grey.
FAILED_STATUSES = frozenset({JobStatus.DEAD, JobStatus.EXPIRED, JobStatus.UPSTREAM_FAILED})
CHART_MINUTES = 60
# The queues page's waits to start are those of the jobs started in the last minutes.
WAIT_MINUTES = 15


# -- formatting ----------------------------------------------------------------------------


def age(seconds: float | None) -> str:
    """``seconds`` for people: ``42 s``, ``3 min``, ``2 h 5 min``, ``4 d``."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest // 60:.0f} min"
    return f"{seconds // 86400:.0f} d"


def when(moment: datetime | None) -> str:
    """An instant in UTC, to the second."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def as_json(value: Any) -> str:
    """A value as indented JSON (for args, results and checkpoints)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def first_line(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- overview ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chart:
    """Per-minute finished jobs over the last hour, as SVG polylines in a 600 by 160 box."""

    succeeded: list[int]
    failed: list[int]
    top: int
    width: int = 600
    height: int = 160

    def points(self, series: Sequence[int]) -> str:
        step = self.width / max(1, len(series) - 1)
        return " ".join(f"{i * step:.1f},{self.height - value / self.top * self.height:.1f}"
                        for i, value in enumerate(series))

    @property
    def total_succeeded(self) -> int:
        return sum(self.succeeded)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)


def chart(buckets: Iterable[tuple[float, str, int]], now: float,
          minutes: int = CHART_MINUTES) -> Chart:
    """Per-minute counts of the last ``minutes`` (the current minute last) from
    (minute start, outcome, count) rows: succeeded, and everything that failed (an
    attempt that raised, timed out, crashed or lost its lease).

    Example:
        >>> c = chart([(120.0, "succeeded", 3), (60.0, "failed", 1)], now=150.0, minutes=3)
        >>> c.succeeded, c.failed, c.top
        ([0, 0, 3], [0, 1, 0], 3)
    """
    current = math.floor(now / 60)
    succeeded = [0] * minutes
    failed = [0] * minutes
    for start, outcome, count in buckets:
        index = minutes - 1 - (current - math.floor(start / 60))
        if not 0 <= index < minutes or outcome in ("cancelled", "interrupted"):
            continue
        (succeeded if outcome == "succeeded" else failed)[index] += count
    return Chart(succeeded, failed, max(1, *succeeded, *failed))


@dataclass(frozen=True, slots=True)
class Overview:
    stats: Stats
    chart: Chart
    priorities: list[int]
    ready: int
    running: int
    scheduled: int
    dead: int
    oldest_ready_age: float | None
    workers_alive: int
    due_soon: list[Schedule]
    now: float
    firing: list[AlertRule] = field(default_factory=list)
    alert_rules: int = 0


def overview(client: Client, *, stats: Stats | None = None,
             finished: list[tuple[float, str, int]] | None = None) -> Overview:
    """The overview of ``client``'s namespace; ``stats`` and ``finished`` (the chart's
    rows) when the caller read them already. The alerts firing are those the store's
    rules say are, as the alerter last judged them (longest firing first)."""
    stats = client.stats() if stats is None else stats
    now = client.store.now()
    buckets = finished if finished is not None else client.store.finished_per_minute(
        client.namespace, now - CHART_MINUTES * 60)
    totals: dict[str, int] = {}
    for queue in stats.queues:
        for status, count in queue.counts.items():
            totals[status] = totals.get(status, 0) + count
    ages = [q.oldest_ready_age for q in stats.queues if q.oldest_ready_age is not None]
    schedules = [s for s in client.list_schedules()
                 if not s.paused and s.next_fire_epoch is not None]
    schedules.sort(key=lambda s: s.next_fire_epoch or 0.0)
    rules = client.alerts()
    firing = sorted((r for r in rules if r.state is AlertState.FIRING),
                    key=lambda r: (r.changed_at is None, r.changed_at, r.name))
    return Overview(
        stats=stats,
        chart=chart(buckets, now),
        priorities=priorities_of(stats.queues),
        ready=totals.get("queued", 0), running=totals.get("running", 0),
        scheduled=totals.get("scheduled", 0) + totals.get("waiting", 0),
        dead=totals.get("dead", 0),
        oldest_ready_age=max(ages) if ages else None,
        workers_alive=sum(1 for w in stats.workers if w.alive),
        due_soon=schedules[:5],
        now=now,
        firing=firing,
        alert_rules=len(rules),
    )


def priorities_of(queues: Iterable[QueueStats]) -> list[int]:
    """Every priority with ready jobs in some queue, highest first."""
    return sorted({p for q in queues for p in q.ready_by_priority}, reverse=True)


# -- queues --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waits:
    """Waits to start (ready to started) of ``count`` jobs: their mean and longest."""

    count: int
    mean: float
    longest: float


@dataclass(frozen=True, slots=True)
class PriorityRow:
    priority: int
    counts: dict[str, int]
    waits: Waits | None


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue of the queues page: its jobs by state, its unfinished and dead ones by
    priority and state, how long its oldest ready job has been ready, the waits of its
    recent starts, and its pause (None when it is not paused)."""

    queue: str
    counts: dict[str, int]
    oldest_ready_age: float | None
    waits: Waits | None
    priorities: list[PriorityRow]
    pause: Pause | None


def queues(client: Client, *, stats: Stats | None = None,
           waits: list[StartWaits] | None = None) -> list[QueueRow]:
    """The queues page of ``client``'s namespace; ``stats`` and ``waits`` (the starts
    of the last `WAIT_MINUTES`) when the caller read them already."""
    stats = client.stats() if stats is None else stats
    if waits is None:
        waits = client.store.start_waits(client.namespace,
                                         client.store.now() - WAIT_MINUTES * 60)
    return queue_rows(stats, waits, client.pauses())


def merge_waits(groups: Iterable[StartWaits]) -> Waits | None:
    """One `Waits` for several groups (None for none).

    Example:
        >>> merge_waits([StartWaits("q", 1, 1, 4.0, 4.0), StartWaits("q", 0, 3, 2.0, 5.0)])
        Waits(count=4, mean=2.5, longest=5.0)
    """
    found = [g for g in groups if g.count]
    if not found:
        return None
    count = sum(g.count for g in found)
    return Waits(count, sum(g.mean * g.count for g in found) / count,
                 max(g.longest for g in found))


def queue_rows(stats: Stats, waits: Iterable[StartWaits], pauses: Iterable[Pause]
               ) -> list[QueueRow]:
    """The queues page's rows, by queue name: every queue with jobs, and every paused
    queue (with jobs or not, so that it can be resumed)."""
    by_queue: dict[str, list[StartWaits]] = {}
    for group in waits:
        by_queue.setdefault(group.queue, []).append(group)
    paused = {p.name: p for p in pauses if p.kind is GateKind.QUEUE}
    known = {q.queue: q for q in stats.queues}
    rows: list[QueueRow] = []
    for name in sorted({*known, *paused, *by_queue}):
        queue = known.get(name, QueueStats(name, {}, {}, None))
        started = by_queue.get(name, [])
        priorities = sorted({*queue.by_priority, *(g.priority for g in started)},
                            reverse=True)
        rows.append(QueueRow(
            queue=name, counts=queue.counts, oldest_ready_age=queue.oldest_ready_age,
            waits=merge_waits(started),
            priorities=[PriorityRow(p, queue.by_priority.get(p, {}),
                                    merge_waits(g for g in started if g.priority == p))
                        for p in priorities],
            pause=paused.get(name)))
    return rows


# -- dead-letter queue -----------------------------------------------------------------------


_NUMBERS = re.compile(r"\b(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F-]*\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def error_signature(error: str | None) -> str:
    """An error's first line with what varies between jobs (numbers, ids, quoted
    values) blotted out, so "declined for order 17" and "... order 18" group together.

    Example:
        >>> error_signature("KeyError: 'user-17' not found after 3 tries")
        'KeyError: … not found after N tries'
    """
    line = first_line(error, 200)
    if not line:
        return "(no error recorded)"
    return _NUMBERS.sub("N", _QUOTED.sub("…", line))


@dataclass(slots=True)
class DeadGroup:
    """Dead jobs of one task that died of the same kind of error (`error_signature`)."""

    task: str
    error: str
    ids: list[int] = field(default_factory=list)
    newest: datetime | None = None

    @property
    def count(self) -> int:
        return len(self.ids)


def group_dead(jobs: Iterable[Job]) -> list[DeadGroup]:
    """Dead jobs grouped by (task, `error_signature`), biggest group first.

    Example:
        >>> [(g.task, g.count) for g in group_dead(dead_jobs)]  # doctest: +SKIP
        [('send_email', 12), ('resize', 1)]
    """
    groups: dict[tuple[str, str], DeadGroup] = {}
    for job in jobs:
        error = error_signature(job.last_error)
        group = groups.setdefault((job.task, error), DeadGroup(job.task, error))
        group.ids.append(job.id)
        moment = job.finished_at or job.created_at
        if group.newest is None or moment > group.newest:
            group.newest = moment
    return sorted(groups.values(), key=lambda g: (-g.count, g.task, g.error))


# -- schedules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpcomingFire:
    at: str
    local: str
    dst: str  # "" for an ordinary fire


def next_fires(schedule: Schedule, now: float, count: int = 5) -> list[UpcomingFire]:
    """The schedule's next fire times, DST-shaped ones marked as `schedules preview`
    marks them (moved past a gap, first or second of a repeated hour)."""
    start = datetime.fromtimestamp(now, UTC)
    if schedule.next_fire_epoch is not None:
        start = datetime.fromtimestamp(schedule.next_fire_epoch - 1e-3, UTC)
    marks = {DstEffect.MOVED: "moved (DST gap)", DstEffect.FIRST_OF_TWO: "first of two",
             DstEffect.SECOND_OF_TWO: "second of two"}
    return [UpcomingFire(when(f.at), f.local.isoformat(timespec="seconds"),
                         marks.get(f.dst, ""))
            for f in upcoming(schedule.definition.trigger, start, count)]


def schedule_runs(client: Client, schedule: Schedule, limit: int = 5) -> list[WorkflowRun]:
    """The most recent runs a workflow schedule's fires created (none for a schedule of
    a task, whose fires create jobs): among the latest runs of its workflow."""
    workflow = schedule.definition.workflow
    if workflow is None:
        return []
    runs = client.list_workflow_runs(WorkflowRunFilter(name=workflow.name, limit=500))
    return [run for run in runs if run.schedule_id == schedule.id][:limit]


def schedule_of(client: Client, run: WorkflowRun) -> Schedule | None:
    """The schedule whose fire created ``run``, while it exists."""
    if run.schedule_id is None:
        return None
    return next((s for s in client.list_schedules() if s.id == run.schedule_id), None)


def trigger_text(schedule: Schedule) -> str:
    trigger = schedule.definition.trigger.to_dict()
    kind = trigger.get("kind")
    if kind == "cron":
        return f"cron {trigger.get('expression', '')} ({trigger.get('timezone', 'UTC')})"
    if kind == "interval":
        return f"every {age(float(trigger.get('seconds', 0)))}"
    return f"once at {trigger.get('at', '')}"


# -- workflows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    status: str
    job_id: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    node_width: float = 150
    node_height: float = 40


def layout_graph(steps: Mapping[str, Sequence[str]], statuses: Mapping[str, str],
                 job_ids: Mapping[str, int] | None = None) -> Graph:
    """Steps placed in columns by depth (the longest chain of dependencies before
    them), in their given order within a column; an edge from each dependency to its
    step, right side to left side.

    Example:
        >>> g = layout_graph({"a": [], "b": ["a"], "c": ["a"]}, {})
        >>> [(n.name, n.x, n.y) for n in g.nodes]
        [('a', 10.0, 10.0), ('b', 200.0, 10.0), ('c', 200.0, 70.0)]
    """
    depth: dict[str, int] = {}

    def depth_of(name: str, path: tuple[str, ...] = ()) -> int:
        if name not in depth:
            before = [d for d in steps.get(name, ()) if d in steps and d not in path]
            depth[name] = 1 + max((depth_of(d, (*path, name)) for d in before), default=-1)
        return depth[name]

    columns: dict[int, list[str]] = {}
    for name in steps:
        columns.setdefault(depth_of(name), []).append(name)
    node_width, node_height, gap_x, gap_y, margin = 150.0, 40.0, 40.0, 20.0, 10.0
    place: dict[str, tuple[float, float]] = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            place[name] = (margin + column * (node_width + gap_x),
                           margin + row * (node_height + gap_y))
    ids = job_ids or {}
    nodes = [Node(name, statuses.get(name, "waiting"), ids.get(name, 0), *place[name])
             for name in steps]
    edges = [Edge(place[d][0] + node_width, place[d][1] + node_height / 2,
                  place[name][0], place[name][1] + node_height / 2)
             for name, after in steps.items() for d in after if d in place]
    width = margin * 2 + max(len(columns), 1) * (node_width + gap_x) - gap_x
    height = margin * 2 + max((len(n) for n in columns.values()), default=1) * (
        node_height + gap_y) - gap_y
    return Graph(nodes, edges, width, height)


def run_graph(run: WorkflowRun) -> Graph:
    return layout_graph({s.name: s.after for s in run.steps},
                        {s.name: s.job.status.value for s in run.steps},
                        {s.name: s.job.id for s in run.steps})


# -- jobs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSearch:
    """The jobs page's filters: status, queue and task are the store's; ``text`` (in the
    arguments or the error) and the creation time range are applied to the newest
    ``scan`` jobs matching the others."""

    status: JobStatus | None = None
    queue: str | None = None
    task: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    before_id: int | None = None
    scan: int = 5000

    @property
    def narrows(self) -> bool:
        return bool(self.text) or self.since is not None or self.until is not None

    def matches(self, job: Job) -> bool:
        if self.since is not None and job.created_at < self.since:
            return False
        if self.until is not None and job.created_at > self.until:
            return False
        if self.text:
            needle = self.text.lower()
            haystack = json.dumps([job.args, job.kwargs], default=str).lower()
            if needle not in haystack and needle not in (job.last_error or "").lower():
                return False
        return True


def search_jobs(client: Client, search: JobSearch) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None at the end)."""
    where = JobFilter(status=search.status, queue=search.queue, task=search.task,
                      limit=search.scan if search.narrows else search.limit,
                      before_id=search.before_id)
    found = client.list_jobs(where)
    if not search.narrows:
        more = len(found) == search.limit
        return found, str(found[-1].id) if more and found else None
    page = [job for job in found if search.matches(job)][: search.limit]
    more = len(page) == search.limit
    return page, str(page[-1].id) if more and page else None


def running_by_worker(client: Client, limit: int = 200) -> dict[str, list[Job]]:
    """The running jobs (the newest ``limit``) of each worker."""
    running: dict[str, list[Job]] = {}
    for job in client.list_jobs(JobFilter(status=JobStatus.RUNNING, limit=limit)):
        if job.worker_id is not None:
            running.setdefault(job.worker_id, []).append(job)
    return running
