"""Events: one hook through which the worker, the scheduler and the store say what happened.

Metrics, traces, alerts, the dashboard's live updates and user middleware all attach
here instead of keeping private counters. A handler is a callable taking an `Event`;
it is attached for some kinds or for all. Two rules make the hook safe to put on the
hot paths:

- A failing handler never fails the work: its exception is logged and the other
  handlers still run (as Dramatiq isolates each middleware).
- An event nobody listens to costs a dictionary lookup: emitters ask `Events.wants`
  before building one.

Events come in pairs where a duration matters (``job.started`` then ``job.finished``):
handlers of an *after* kind run in the reverse order of attachment, so a handler
attached first wraps the others (a tracing span opened first is closed last).

Example:
    >>> events = Events()
    >>> seen = []
    >>> detach = events.attach(lambda event: seen.append(event.kind), [EventKind.JOB_DEAD])
    >>> events.emit(Event(EventKind.JOB_DEAD, namespace="default", at=0.0, job_id=7))
    >>> seen
    [<EventKind.JOB_DEAD: 'job.dead'>]
    >>> detach()

Who emits what (``source`` is the emitter's id):

- the worker: ``job.claimed`` (wait: due -> claimed), ``job.started`` (before the task's
  code runs), ``job.finished`` (after: outcome, status; duration, wait), ``job.retried``
  (delay), ``job.dead`` and ``job.report_rejected`` (once the store answered the report);
- the scheduler: ``schedule.fired`` (one per fire applied: its result),
  ``schedule.misfired`` (a plan that skips or catches up missed times), ``lease.won`` /
  ``lease.lost`` for its partitions;
- maintenance (`taskwheel.maintenance`, run by a scheduler or a worker): ``lease.won`` /
  ``lease.lost`` for the maintenance lease, ``job.rescued`` (requeued or failed) and
  ``maintenance.ran`` (one pass of a duty: how many jobs it touched);
- a worker's supervisor (`taskwheel.worker.supervisor`): ``job.rescued`` for each job
  of a worker process that died (metadata: outcome, status, error, worker);
- the store: ``job.enqueued``, and ``gate.closed`` / ``gate.opened`` when a queue or a
  task is paused (not when it was paused already) or resumed (`taskwheel.gates`).

A `Middleware` groups before/after methods for the job kinds, as Dramatiq's middleware.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger("taskwheel.events")


class EventKind(StrEnum):
    """What happened. Job events carry the job's id, task and queue."""

    JOB_ENQUEUED = "job.enqueued"
    JOB_CLAIMED = "job.claimed"  # measurements: wait (due -> claimed); metadata: priority
    # before the task's code runs; metadata: attempt, trace_parent, origin (`job_origin`)
    JOB_STARTED = "job.started"
    JOB_FINISHED = "job.finished"  # after: outcome; measurements: duration, wait
    JOB_RETRIED = "job.retried"  # after: metadata: delay
    JOB_DEAD = "job.dead"  # after: retries exhausted (the dead-letter queue)
    JOB_RESCUED = "job.rescued"  # its worker vanished: requeued or failed
    REPORT_REJECTED = "job.report_rejected"  # a stale fencing token
    SCHEDULE_FIRED = "schedule.fired"
    SCHEDULE_MISFIRED = "schedule.misfired"
    LEASE_WON = "lease.won"  # metadata: lease
    LEASE_LOST = "lease.lost"  # metadata: lease, reason
    MAINTENANCE_RAN = "maintenance.ran"  # metadata: duty; measurements: count, duration
    GATE_CLOSED = "gate.closed"  # a queue, task or key paused: metadata: kind, name; held
    GATE_OPENED = "gate.opened"  # resumed: metadata: kind, name; measurements: released
    BREAKER_OPENED = "breaker.opened"  # metadata: key, until (epoch seconds or None), by
    BREAKER_HALF_OPEN = "breaker.half_open"  # cooled down: metadata: key
    BREAKER_CLOSED = "breaker.closed"  # a probe succeeded, or closed by hand: metadata: key
    RATE_ADMITTED = "rate.admitted"  # jobs admitted from a key's bucket: metadata: key;
    # measurements: admitted


# Kinds that close what an earlier kind opened: their handlers run in reverse order.
AFTER_KINDS = frozenset({EventKind.JOB_FINISHED, EventKind.JOB_RETRIED, EventKind.JOB_DEAD})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. ``at`` is epoch seconds (the emitter's store clock);
    ``measurements`` are numbers (durations in seconds, counts); ``metadata`` is
    anything else worth knowing (an outcome, an error, a lease's name)."""

    kind: EventKind
    namespace: str | None
    at: float
    job_id: int | None = None
    task: str | None = None
    queue: str | None = None
    measurements: Mapping[str, float] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the id of the worker or scheduler that emitted it


class JobLike(Protocol):
    """What a job event is built from (a `taskwheel.jobs.Job` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def namespace(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def queue(self) -> str: ...


def job_event(
    kind: EventKind,
    job: JobLike,
    at: float,
    *,
    source: str | None = None,
    measurements: Mapping[str, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Event:
    """An event about ``job``. Build it only when `Events.wants` its kind."""
    return Event(kind, job.namespace, at, job.id, job.task, job.queue,
                 measurements or {}, metadata or {}, source)


Handler = Callable[[Event], None]


class Events:
    """The hook: handlers attached by kind, called in order (after-kinds in reverse),
    each failure isolated. Safe to attach and emit from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Rebuilt on every attach/detach, read without the lock (a dict swap is atomic).
        self._by_kind: dict[EventKind, tuple[Handler, ...]] = {}
        self._attached: list[tuple[int, Handler, frozenset[EventKind]]] = []
        self._next_id = 0

    def attach(
        self, handler: Handler, kinds: Iterable[EventKind | str] | None = None
    ) -> Callable[[], None]:
        """Call ``handler`` for each event of ``kinds`` (all kinds when None); returns
        a function that detaches it. An unknown kind is refused (`ValueError`)."""
        chosen = frozenset(EventKind) if kinds is None else frozenset(
            EventKind(kind) for kind in kinds
        )
        with self._lock:
            token = self._next_id
            self._next_id += 1
            self._attached.append((token, handler, chosen))
            self._rebuild()

        def detach() -> None:
            with self._lock:
                self._attached = [entry for entry in self._attached if entry[0] != token]
                self._rebuild()

        return detach

    def _rebuild(self) -> None:
        by_kind: dict[EventKind, tuple[Handler, ...]] = {}
        for kind in EventKind:
            handlers = tuple(handler for _, handler, kinds in self._attached if kind in kinds)
            if handlers:
                by_kind[kind] = handlers[::-1] if kind in AFTER_KINDS else handlers
        self._by_kind = by_kind

    def use(self, middleware: Middleware) -> Callable[[], None]:
        """Attach ``middleware``'s overridden hooks (only their kinds are listened to);
        returns a function that detaches it."""
        hooks = {
            kind: getattr(middleware, name)
            for kind, name in _MIDDLEWARE_HOOKS.items()
            if getattr(type(middleware), name) is not getattr(Middleware, name)
        }
        if not hooks:
            return lambda: None

        def dispatch(event: Event) -> None:
            hooks[event.kind](event)

        return self.attach(dispatch, hooks)

    def wants(self, kind: EventKind) -> bool:
        """Whether any handler listens to ``kind`` (emitters skip building events
        nobody reads)."""
        return kind in self._by_kind

    def emit(self, event: Event) -> None:
        """Call the handlers of ``event.kind``; a handler that raises is logged and the
        rest still run."""
        for handler in self._by_kind.get(event.kind, ()):
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, event.kind.value)


class Middleware:
    """Hooks around a job's run, attached with `Events.use`: override those you need.

    The worker calls ``before_job`` just before a task's code runs and ``after_job``
    just after (outcome, duration), then ``after_retry`` or ``after_dead`` once the store
    took the outcome. After-hooks of several middlewares run in reverse order of
    attachment; a hook that raises is logged and never fails the job.

    Example:
        >>> class Timing(Middleware):
        ...     def after_job(self, event: Event) -> None:
        ...         print(event.task, event.metadata["outcome"], event.measurements["duration"])
        >>> detach = app.store.events.use(Timing())
    """

    def before_job(self, event: Event) -> None:
        """``job.started``: the task's code is about to run."""

    def after_job(self, event: Event) -> None:
        """``job.finished``: the task's code ran (``metadata["outcome"]``)."""

    def after_retry(self, event: Event) -> None:
        """``job.retried``: the job runs again after ``metadata["delay"]`` seconds."""

    def after_dead(self, event: Event) -> None:
        """``job.dead``: retries exhausted; the job is in the dead-letter queue."""


_MIDDLEWARE_HOOKS = {
    EventKind.JOB_STARTED: "before_job",
    EventKind.JOB_FINISHED: "after_job",
    EventKind.JOB_RETRIED: "after_retry",
    EventKind.JOB_DEAD: "after_dead",
}
