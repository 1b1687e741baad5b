"""Schedules: when to create jobs, and what to do when fire times were missed.

A `ScheduleDefinition` is what a user declares: a task with its arguments (the job
template), a trigger (cron, interval or once), and named policies. Stores keep it with
its next fire time in UTC; the scheduler asks `plan_fires` which jobs a due schedule
owes and hands the plan to the store, which applies it in one transaction. Two rules
keep a schedule from firing twice for one instant, whatever the schedulers do: the
store applies a plan only if the schedule's next fire time is still the one the plan
was made from, and every fired job carries (schedule, fire time) under a unique
constraint.

Misfire (fire times that passed while nobody fired them: scheduler down, schedule
paused, a clock jump), judged against ``misfire_grace``:

- late by at most the grace: on time, fired as usual;
- ``catch_up``: one job per missed time, oldest first, at most ``max_catch_up``; the
  rest are skipped;
- ``skip``: no job; on to the next future time;
- ``run_once`` (default): one job now (keyed by the first missed time), then on schedule.

Overlap (the schedule's previous job has not finished when the next fire comes):
``allow`` (default) fires anyway; ``skip`` fires nothing; ``queue_one`` creates the job
waiting, and it becomes ready when the previous one ends (at most one waits).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from taskwheel.clock import to_datetime
from taskwheel.durations import LONGEST_WAIT, DurationLike, aware_datetime, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.jobs import JobTemplate, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.validators import validate_choice, validate_name

if TYPE_CHECKING:
    from taskwheel.triggers import Fire, Trigger
    from taskwheel.workflows import WorkflowSpec

# A fire this late is still on time. It must cover a scheduler failover: when the
# holder of a partition dies, a standby fires its schedules once the partition's lease
# lapses (at most the scheduler's lease TTL, 1.5 s by default, plus its 0.1 s standby
# poll; measured 1.1-1.6 s), and under ``run_once`` an instant later than the grace
# would be folded into one job with the instants after it.
DEFAULT_MISFIRE_GRACE = 3.0


class Misfire(StrEnum):
    CATCH_UP = "catch_up"
    SKIP = "skip"
    RUN_ONCE = "run_once"


class Overlap(StrEnum):
    ALLOW = "allow"
    SKIP = "skip"
    QUEUE_ONE = "queue_one"


@dataclass(frozen=True, slots=True)
class ScheduleDefinition:
    """A validated schedule as declared; build with `ScheduleDefinition.build`.

    Each fire creates one job of ``job``, or one run of ``workflow`` (exactly one of the
    two is set).
    """

    name: str
    namespace: str
    trigger: Trigger
    job: JobTemplate | None
    misfire: Misfire = Misfire.RUN_ONCE
    max_catch_up: int = 10
    misfire_grace: float = DEFAULT_MISFIRE_GRACE
    overlap: Overlap = Overlap.ALLOW
    jitter: float = 0.0
    start: float | None = None  # epoch seconds; no fire before
    end: float | None = None  # epoch seconds; no fire after
    workflow: WorkflowSpec | None = None

    @property
    def target(self) -> str:
        """What each fire creates, for people: the task, or ``workflow <name>``."""
        if self.workflow is not None:
            return f"workflow {self.workflow.name}"
        assert self.job is not None
        return self.job.task

    @classmethod
    def build(
        cls,
        name: str,
        request: NewJob | WorkflowSpec,
        trigger: Trigger,
        *,
        misfire: Misfire | str = Misfire.RUN_ONCE,
        max_catch_up: int = 10,
        misfire_grace: DurationLike = DEFAULT_MISFIRE_GRACE,
        overlap: Overlap | str = Overlap.ALLOW,
        jitter: DurationLike = 0,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ScheduleDefinition:
        """Validate every field; errors name the field and nothing is written.
        ``request`` is a job request, or a compiled workflow (a run per fire)."""
        if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int) or not (
            1 <= max_catch_up <= 10_000
        ):
            raise InvalidInput("max_catch_up", f"must be an integer 1-10000, got {max_catch_up!r}")
        start_at = None if start is None else aware_datetime(start, "start").timestamp()
        end_at = None if end is None else aware_datetime(end, "end").timestamp()
        if start_at is not None and end_at is not None and end_at <= start_at:
            raise InvalidInput("end", f"must be after start ({end} <= {start})")
        is_job = isinstance(request, NewJob)
        if not is_job and overlap in (Overlap.QUEUE_ONE, Overlap.QUEUE_ONE.value):
            raise InvalidInput("overlap", "queue_one is not available for workflow "
                               "schedules (use allow or skip)")
        return cls(
            name=validate_name(name, "name"),
            namespace=request.namespace,
            trigger=trigger,
            job=JobTemplate.of(request) if isinstance(request, NewJob) else None,
            workflow=None if isinstance(request, NewJob) else request,
            misfire=validate_choice(Misfire, misfire, "misfire", noun="policy"),
            max_catch_up=max_catch_up,
            misfire_grace=parse_duration(misfire_grace, "misfire_grace"),
            overlap=validate_choice(Overlap, overlap, "overlap", noun="policy"),
            jitter=parse_duration(jitter, "jitter", longest=LONGEST_WAIT),
            start=start_at,
            end=end_at,
        )

    def spec(self) -> dict[str, Any]:
        """Everything but the name and namespace, JSON-ready: what stores keep."""
        # A task schedule's spec has no "workflow" key at all: the canonical JSON of the
        # schedules written before workflows existed stays the same.
        if self.job is not None:
            target = {"job": self.job.to_dict()}
        else:
            assert self.workflow is not None
            target = {"workflow": self.workflow.to_dict()}
        return {
            "trigger": self.trigger.to_dict(),
            **target,
            "misfire": self.misfire.value,
            "max_catch_up": self.max_catch_up,
            "misfire_grace": self.misfire_grace,
            "overlap": self.overlap.value,
            "jitter": self.jitter,
            "start": self.start,
            "end": self.end,
        }

    def spec_json(self) -> str:
        """Canonical JSON of `spec`: equal for equal definitions, so an upsert of an
        unchanged declaration changes nothing."""
        return json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_spec(cls, name: str, namespace: str, spec: Mapping[str, Any]) -> ScheduleDefinition:
        from taskwheel.triggers import trigger_from_dict
        from taskwheel.workflows import WorkflowSpec

        return cls(
            name=name,
            namespace=namespace,
            trigger=trigger_from_dict(spec["trigger"]),
            job=JobTemplate.from_dict(spec["job"]) if spec.get("job") else None,
            workflow=(WorkflowSpec.from_dict(spec["workflow"], namespace)
                      if spec.get("workflow") else None),
            misfire=Misfire(spec["misfire"]),
            max_catch_up=int(spec["max_catch_up"]),
            misfire_grace=float(spec["misfire_grace"]),
            overlap=Overlap(spec["overlap"]),
            jitter=float(spec["jitter"]),
            start=spec.get("start"),
            end=spec.get("end"),
        )

    # -- fire times -------------------------------------------------------------------

    def next_fire(self, after: float) -> float | None:
        """The first fire time strictly after ``after`` within start and end."""
        fire = self._next(after)
        return None if fire is None else fire.at.timestamp()

    def upcoming(self, after: datetime, count: int) -> list[Fire]:
        """The next ``count`` fires strictly after ``after`` (aware) within start and
        end; fewer when the schedule ends first. A stored schedule's paused or done state
        is `Schedule.upcoming`'s to honour.

        Example:
            >>> d = app.schedule("new-year", report, cron="0 9 * * *",
            ...                  start=datetime(2027, 1, 1, tzinfo=UTC),
            ...                  end=datetime(2027, 1, 2, 23, tzinfo=UTC))
            >>> [f.at.day for f in d.upcoming(datetime(2026, 12, 1, tzinfo=UTC), 10)]
            [1, 2]
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput("count", f"must be an integer >= 0, got {count!r}")
        cursor = aware_datetime(after, "after").timestamp()
        fires: list[Fire] = []
        while len(fires) < count and (fire := self._next(cursor)) is not None:
            fires.append(fire)
            cursor = fire.at.timestamp()
        return fires

    def _next(self, after: float) -> Fire | None:
        floor = after
        if self.start is not None and self.start > after:
            floor = self.start - 1e-6  # a fire exactly at start counts
        fire = self.trigger.next_fire(datetime.fromtimestamp(floor, UTC))
        if fire is None or (self.end is not None and fire.at.timestamp() > self.end):
            return None
        return fire

    def check_fires(self, now: float) -> None:
        """Refuse (`InvalidInput` naming ``end`` or ``at``) a schedule that can never fire
        again: its end, or its one time, is past (beyond the misfire grace). Used where a
        schedule is written on purpose (`App.add_schedule`, ``taskwheel schedules
        add``); schedules declared in code are written as they are and end ``done``.

        Example:
            >>> definition.check_fires(time.time())
        """
        if self.next_fire(now - self.misfire_grace) is not None:
            return
        if self.end is not None and self.end <= now:
            raise InvalidInput("end", f"{datetime.fromtimestamp(self.end, UTC).isoformat()} "
                               "has passed: the schedule would never fire")
        raise InvalidInput("at" if self.trigger.kind == "once" else "trigger",
                           "the schedule has no fire time left: it would never fire")

    def run_at(self, fire_at: float) -> float:
        """When the job of a fire is due: its fire time plus this schedule's jitter,
        the same in every process (derived from the name and the fire time)."""
        if not self.jitter:
            return fire_at
        digest = hashlib.blake2b(
            f"{self.namespace}/{self.name}/{fire_at!r}".encode(), digest_size=8
        ).digest()
        return fire_at + self.jitter * (int.from_bytes(digest, "big") / 2**64)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as the store holds it. Times are aware UTC datetimes.

    The next fire time is kept as the store holds it, in epoch seconds
    (``next_fire_epoch``): a plan is applied only if the stored time still equals the
    one it was made from, so the scheduler plans from the exact stored value rather
    than from a datetime rounded to the microsecond. ``next_fire_at`` is the same
    instant as a datetime.

    Example:
        >>> schedule = app.get_schedule("nightly")
        >>> schedule.next_fire_at
        datetime.datetime(2026, 1, 6, 2, 0, tzinfo=datetime.timezone.utc)
    """

    id: int
    definition: ScheduleDefinition
    paused: bool
    next_fire_epoch: float | None  # None: it will not fire again
    last_fire_at: datetime | None
    last_job_id: int | None
    last_job_status: str | None  # of the latest job it created, if that job still exists
    created_at: datetime
    updated_at: datetime
    # The app that declares it in code (`App.name`); None when it was written by hand.
    declared_by: str | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def next_fire_at(self) -> datetime | None:
        """When it fires next; None when it will not fire again."""
        return to_datetime(self.next_fire_epoch)

    def upcoming(self, after: datetime, count: int) -> list[Fire]:
        """The next ``count`` fires after ``after`` as the schedule stands: none while
        it is paused or once it is done, and never outside its start and end.

        Example:
            >>> app.get_schedule("nightly").upcoming(datetime.now(UTC), 3)
            [Fire(at=datetime.datetime(2026, 1, 6, 2, 0, ...), ...), ...]
        """
        if self.paused or self.next_fire_epoch is None:
            return []
        return self.definition.upcoming(after, count)

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "namespace": self.definition.namespace,
            "task": None if self.definition.job is None else self.definition.job.task,
            "target": self.definition.target,
            **self.definition.spec(),
            "paused": self.paused,
            "next_fire_at": iso(self.next_fire_at),
            "last_fire_at": iso(self.last_fire_at),
            "last_job_id": self.last_job_id,
            "last_job_status": self.last_job_status,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "declared_by": self.declared_by,
        }


@dataclass(frozen=True, slots=True)
class PlannedFire:
    """One job a plan creates: the instant it stands for (its unique key with the
    schedule) and when it is due."""

    fire_at: float
    run_at: float


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What firing a due schedule does, applied by the store in one transaction if
    the schedule's next fire time is still ``expected_next``."""

    schedule_id: int
    expected_next: float
    fires: tuple[PlannedFire, ...]
    next_fire_at: float | None
    overlap: Overlap


class FireResult(StrEnum):
    CREATED = "created"  # a job was created
    WAITING = "waiting"  # created waiting for the previous job (queue_one)
    OVERLAP_SKIPPED = "overlap_skipped"  # the previous job was unfinished (skip, queue_one)
    DUPLICATE = "duplicate"  # a job for this instant already existed
    STALE = "stale"  # the schedule had moved on (fired elsewhere, changed, paused, removed)


@dataclass(frozen=True, slots=True)
class Fired:
    """What one fire of a schedule did. Times are aware UTC datetimes, as in every
    public record: the instant fired, when its job is due, and when it was created
    (None where nothing was created)."""

    schedule_id: int
    fire_at: datetime
    result: FireResult
    job_id: int | None = None
    run_at: datetime | None = None
    created_at: datetime | None = None
    workflow_run_id: int | None = None  # the run created, for a workflow schedule

    @classmethod
    def at(
        cls,
        schedule_id: int,
        fire_at: float,
        result: FireResult,
        *,
        job_id: int | None = None,
        run_at: float | None = None,
        created_at: float | None = None,
        workflow_run_id: int | None = None,
    ) -> Fired:
        """A fire from the store's epoch seconds."""
        return cls(schedule_id, datetime.fromtimestamp(fire_at, UTC), result, job_id,
                   to_datetime(run_at), to_datetime(created_at), workflow_run_id)


@dataclass(frozen=True, slots=True)
class Firing:
    """What `Store.fire_due` did with one schedule: the schedule as it was read in the
    firing transaction, the plan made of it (None: nothing was due, it was paused or
    changed since its fire time was loaded) and what the plan's fires did."""

    schedule: Schedule
    plan: FirePlan | None
    fired: tuple[Fired, ...]


# Small on purpose: it pays off for specs that many schedules share and for deployments
# with few schedules; thousands of distinct specs fired in turn would miss an LRU of any
# size below their number and only cost memory.
@functools.lru_cache(maxsize=256)
def _parsed_spec(spec_json: str) -> ScheduleDefinition:
    return ScheduleDefinition.from_spec("-", "-", json.loads(spec_json))


def definition_from_spec(name: str, namespace: str, spec_json: str) -> ScheduleDefinition:
    """A stored schedule's definition. Parsing (the trigger above all) is cached by spec,
    so schedules that share one, and every fire of one schedule, parse it once."""
    p = _parsed_spec(spec_json)
    workflow = p.workflow
    if workflow is not None:
        workflow = dataclasses.replace(workflow, namespace=namespace)
    # Field by field, not `dataclasses.replace` (twice the cost, paid at most fires);
    # a unit test holds this to every field.
    return ScheduleDefinition(name, namespace, p.trigger, p.job, p.misfire, p.max_catch_up,
                              p.misfire_grace, p.overlap, p.jitter, p.start, p.end, workflow)


def plan_fires(schedule: Schedule, now: float) -> FirePlan | None:
    """What a schedule owes at ``now``; None when nothing is due (or it is paused).

    Example:
        a schedule every 60 s whose next fire was 10:00:00, at 10:00:00.003 → one fire
        of 10:00:00, next 10:01:00; at 10:05:30 with ``run_once`` → one fire keyed
        10:00:00 due now, next 10:06:00 (the other missed times dropped).
    """
    due = schedule.next_fire_epoch
    if schedule.paused or due is None or due > now:
        return None
    d = schedule.definition
    if now - due <= d.misfire_grace:
        fires = [PlannedFire(due, d.run_at(due))]
        following = d.next_fire(due)
        # Further fire times already due inside the grace (sub-second intervals).
        while following is not None and following <= now and len(fires) < d.max_catch_up:
            if now - following > d.misfire_grace:
                break
            fires.append(PlannedFire(following, d.run_at(following)))
            following = d.next_fire(following)
        if following is not None and following <= now:
            return _misfired(schedule, now, start=following, fired=fires)
        return FirePlan(schedule.id, due, tuple(fires), following, d.overlap)
    return _misfired(schedule, now, start=due, fired=[])


def _misfired(
    schedule: Schedule, now: float, *, start: float, fired: list[PlannedFire]
) -> FirePlan:
    """``start`` (and maybe later fire times) passed beyond the grace. Costs at most
    ``max_catch_up`` trigger steps, however long the schedule went unfired."""
    d = schedule.definition
    assert schedule.next_fire_epoch is not None
    fires = list(fired)
    if d.misfire is Misfire.CATCH_UP:
        cursor: float | None = start
        while cursor is not None and cursor <= now and len(fires) < d.max_catch_up:
            fires.append(PlannedFire(cursor, max(now, d.run_at(cursor))))
            cursor = d.next_fire(cursor)
    elif d.misfire is Misfire.RUN_ONCE:
        # Keyed by the first missed time: every scheduler reads the same one.
        fires.append(PlannedFire(start, max(now, d.run_at(start))))
    return FirePlan(
        schedule.id, schedule.next_fire_epoch, tuple(fires), d.next_fire(now), d.overlap
    )


def fired_status(
    overlap: Overlap, unfinished: Collection[str], run_at: float, now: float
) -> JobStatus | None:
    """The status a fired job starts in, given the statuses of its schedule's unfinished
    jobs; None when the overlap policy skips the fire. ``queue_one`` lets one job wait
    behind the unfinished ones, and skips once one is waiting."""
    if unfinished and overlap is not Overlap.ALLOW:
        if overlap is Overlap.SKIP or JobStatus.WAITING.value in unfinished:
            return None
        return JobStatus.WAITING
    return ready_or_due(run_at, now)


def ready_or_due(run_at: float, now: float) -> JobStatus:
    """The status of a fired job that waits for nothing but its time."""
    return JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED


def build_trigger(
    *,
    cron: str | None = None,
    every: DurationLike | None = None,
    at: datetime | None = None,
    timezone: str | None = None,
    dst_gap: str = "run_after_gap",
    dst_fold: str = "first",
    start: datetime | None = None,
) -> Trigger:
    """The trigger of exactly one of ``cron``, ``every`` and ``at``."""
    from taskwheel.triggers import CronTrigger, IntervalTrigger, OnceTrigger

    given = [name for name, value in (("cron", cron), ("every", every), ("at", at))
             if value is not None]
    if len(given) != 1:
        raise InvalidInput(
            "trigger", "give exactly one of cron, every and at"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if cron is not None:
        return CronTrigger.build(cron, "UTC" if timezone is None else timezone,
                                 dst_gap=dst_gap, dst_fold=dst_fold)
    if timezone is not None:
        raise InvalidInput("timezone", f"applies to cron schedules only, not {given[0]}")
    if every is not None:
        anchor = datetime.fromtimestamp(0, UTC) if start is None else start
        return IntervalTrigger.build(every, anchor)
    assert at is not None
    return OnceTrigger(at)
