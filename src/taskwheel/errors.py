"""Errors raised by taskwheel. Every one names what is wrong."""

from __future__ import annotations


class TaskwheelError(Exception):
    """Base class of every error taskwheel raises on purpose."""


class InvalidInput(TaskwheelError, ValueError):
    """Bad input at an entry point; nothing was written.

    Attributes:
        field: the name of the offending field, as the user spelled it.
        reason: why the value was refused.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UnknownTask(InvalidInput):
    """A job names a task the app does not define."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__("task", f"unknown task {name!r}{hint}")
        self.name = name


class JobNotFound(TaskwheelError, LookupError):
    """No job with that id exists in the namespace."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class ScheduleNotFound(TaskwheelError, LookupError):
    """No schedule by that name exists in the namespace."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} not found")
        self.name = name


class WorkflowRunNotFound(TaskwheelError, LookupError):
    """No workflow run with that id exists in the namespace."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"workflow run {run_id} not found")
        self.run_id = run_id


class IllegalTransition(TaskwheelError):
    """A state change the job lifecycle does not allow."""

    def __init__(
        self, job_id: int | None, source: str, target: str, why: str | None = None
    ) -> None:
        subject = f"job {job_id}" if job_id is not None else "job"
        super().__init__(f"{subject} is {source}: {why}" if why else
                         f"{subject} cannot go from {source} to {target}")
        self.job_id = job_id
        self.source = source
        self.target = target


class WorkflowRunEnded(TaskwheelError):
    """The workflow run has already ended, so there is nothing to cancel."""

    def __init__(self, run_id: int, status: str) -> None:
        super().__init__(f"workflow run {run_id} already ended {status}: nothing to cancel")
        self.run_id = run_id
        self.status = status


class JobFailed(TaskwheelError):
    """Raised by `JobHandle.result()` when the job ended without succeeding."""

    def __init__(self, job_id: int, status: str, error: str | None) -> None:
        detail = f": {error}" if error else ""
        super().__init__(f"job {job_id} ended {status}{detail}")
        self.job_id = job_id
        self.status = status
        self.error = error


class WorkflowFailed(TaskwheelError):
    """Raised by `WorkflowRunHandle.result()` when the run ended without succeeding."""

    def __init__(self, run_id: int, status: str, failed_steps: dict[str, str]) -> None:
        detail = ", ".join(f"{step} {state}" for step, state in failed_steps.items())
        super().__init__(f"workflow run {run_id} ended {status}" + (f": {detail}" if detail
                                                                     else ""))
        self.run_id = run_id
        self.status = status
        self.failed_steps = failed_steps


class Cancelled(TaskwheelError):
    """Raise from a task to end it as cancelled (after seeing `ctx.cancelled`)."""


class LeaseLost(TaskwheelError):
    """The caller no longer holds the lease it acted under; it must stand down."""

    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f"{holder} does not hold the {name} lease")
        self.name = name
        self.holder = holder


class StoreError(TaskwheelError):
    """The database refused an operation (a permission it lacks, say); nothing of the
    operation was written.

    Attributes:
        operation: the store operation that failed, e.g. ``"migrate"``.
        reason: the database's words.
    """

    def __init__(self, operation: str, reason: str, store: str = "PostgreSQL") -> None:
        super().__init__(f"{store} store: {operation} failed: {reason}")
        self.operation = operation
        self.reason = reason


class StoreUnavailable(StoreError):
    """The database could not be reached, or gave up on an operation (connection lost,
    server shutting down, deadlock, serialisation failure). Safe to retry: the
    operation's transaction was rolled back, unless the connection broke while it was
    committing, in which case it may have been applied.
    """


class SchemaOutdated(StoreError):
    """The database's schema is not the one this taskwheel was written for: behind it
    (run ``taskwheel migrate``) or ahead of it (upgrade taskwheel). Nothing migrates
    implicitly: a store is migrated by ``taskwheel migrate``, `Store.migrate`,
    `App.migrate`, an ``App(..., migrate=True)`` when it opens its store, or the laptop
    commands ``taskwheel dev`` and ``taskwheel demo``."""

    def __init__(self, found: int, expected: int, store: str) -> None:
        if found < expected:
            advice = ("the database has no taskwheel schema yet" if found == 0 else
                      f"the database schema is at version {found}, this taskwheel needs "
                      f"{expected}")
            reason = f"{advice}: run `taskwheel migrate`"
        else:
            reason = (f"the database schema is at version {found}, newer than this "
                      f"taskwheel's {expected}: upgrade taskwheel")
        super().__init__("open", reason, store)
        self.found = found
        self.expected = expected


class QuotaExceeded(TaskwheelError):
    """A namespace's quota refused a request; nothing was written.

    Attributes:
        namespace: the namespace whose quota it is.
        limit: which limit: ``max_queued``, ``max_enqueue_rate`` or
            ``max_active_schedules``.
        retry_after: seconds after which the same request may pass (None when only a
            change elsewhere, such as jobs finishing, can make room).
    """

    def __init__(
        self, namespace: str, limit: str, reason: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"namespace {namespace!r}: {limit}: {reason}")
        self.namespace = namespace
        self.limit = limit
        self.reason = reason
        self.retry_after = retry_after


class WebhookNotFound(TaskwheelError, LookupError):
    """No webhook of that name exists in the namespace."""

    def __init__(self, name: str) -> None:
        super().__init__(f"webhook {name!r} not found")
        self.name = name


class AlertNotFound(TaskwheelError, LookupError):
    """No alert rule of that name exists in the namespace."""

    def __init__(self, name: str) -> None:
        super().__init__(f"alert {name!r} not found")
        self.name = name


class ApiKeyNotFound(TaskwheelError, LookupError):
    """No API key with that prefix exists."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"API key {prefix!r} not found")
        self.prefix = prefix


class QueueFull(TaskwheelError):
    """An enqueue would pass a queue's maximum depth; nothing was written.

    Attributes:
        namespace: the queue's namespace.
        queue: the queue that is full.
        max_depth: its maximum depth (jobs waiting to run: queued, scheduled, waiting).
        depth: the jobs waiting to run when the enqueue was refused.
    """

    def __init__(self, namespace: str, queue: str, max_depth: int, depth: int,
                 count: int) -> None:
        super().__init__(f"queue {queue!r} of namespace {namespace!r} is full: {depth} jobs "
                         f"waiting to run, {count} more would pass its maximum depth of "
                         f"{max_depth}")
        self.namespace = namespace
        self.queue = queue
        self.max_depth = max_depth
        self.depth = depth


class NotPaused(TaskwheelError, LookupError):
    """A resume named a queue or task that is not paused; nothing was written."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} is not paused")
        self.kind = kind
        self.name = name


class AgingNotFound(TaskwheelError, LookupError):
    """The queue does not age."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} has no aging")
        self.queue = queue


class ReserveNotFound(TaskwheelError, LookupError):
    """The queue keeps no reserve."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} has no reserve")
        self.queue = queue


class NamespaceWeightNotFound(TaskwheelError, LookupError):
    """The namespace has no weight."""

    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace {namespace!r} has no weight")
        self.namespace = namespace


class QueueLimitNotFound(TaskwheelError, LookupError):
    """The queue has no maximum depth to remove."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} has no maximum depth")
        self.queue = queue


class LimitNotFound(TaskwheelError, LookupError):
    """A command named a key the namespace has no gate for (no job of it was ever
    enqueued, and no limit was set for it); nothing was written."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} has no limit, pause or breaker: no job with it was "
                         "enqueued and none was set")
        self.key = key


class RateNotFound(LimitNotFound):
    """A command named a key the namespace has no rate limit for; nothing was written."""

    def __init__(self, key: str) -> None:
        TaskwheelError.__init__(self, f"key {key!r} has no rate limit: no job with one was "
                                "enqueued and none was set")
        self.key = key


class BreakerNotOpen(TaskwheelError, LookupError):
    """A close named a key whose breaker is closed; nothing was written."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the breaker of key {key!r} is not open")
        self.key = key
