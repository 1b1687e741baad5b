"""The context a running task can read: who it is, whether to stop, where it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.jobs import dumps_json
from taskwheel.workflows import StepOutcome


class AttemptWrites(Protocol):
    """Where a context's writes go: the worker's `AttemptWriter`, or a child process's
    messages to its worker."""

    def checkpoint(self, state_json: str) -> bool: ...
    def extend_lease(self, seconds: float) -> bool: ...
    async def checkpoint_async(self, state_json: str) -> bool: ...
    async def extend_lease_async(self, seconds: float) -> bool: ...


class Context:
    """Passed as the first argument to tasks registered with ``pass_context=True``.

    Attributes:
        job_id: the job's id.
        attempt: 1 for the first attempt, 2 for the first retry, ...
        fencing_token: grows at every claim of this job; an outcome or checkpoint
            carrying an older token is refused, so a worker presumed dead cannot
            overwrite the attempt that replaced it. Pass it on to external systems
            that accept fencing tokens.
        last_checkpoint: what the previous attempt saved with `checkpoint`, or None.
        workflow_run_id, step: the workflow run and step this job is, or None.
        upstream: how each direct dependency of a workflow step ended, by step name
            (`StepOutcome`: status, result, error); empty for a plain job. Under the
            ``continue`` policy a step runs after failed dependencies and finds them here.

    Example:
        >>> @app.task(pass_context=True)
        ... def crunch(ctx: Context, rows: int) -> int:
        ...     start = ctx.last_checkpoint or 0
        ...     for row in range(start, rows):
        ...         if ctx.cancelled:
        ...             raise taskwheel.Cancelled()
        ...         ctx.checkpoint(row)
        ...     return rows
        >>> @app.task(pass_context=True)
        ... def load(ctx: Context) -> int:
        ...     rows = ctx.results["transform"]  # the return value of step "transform"
        ...     return len(rows)
    """

    def __init__(
        self,
        *,
        job_id: int,
        attempt: int,
        max_attempts: int,
        fencing_token: int,
        task: str,
        queue: str,
        namespace: str,
        last_checkpoint: Any,
        writes: AttemptWrites,
        workflow_run_id: int | None = None,
        step: str | None = None,
        upstream: Mapping[str, StepOutcome] | None = None,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.fencing_token = fencing_token
        self.task = task
        self.queue = queue
        self.namespace = namespace
        self.last_checkpoint = last_checkpoint
        self._writes = writes
        self._cancelled = False
        self.workflow_run_id = workflow_run_id
        self.step = step
        self.upstream: dict[str, StepOutcome] = dict(upstream or {})

    @property
    def results(self) -> dict[str, Any]:
        """The return values of the dependencies that succeeded, by step name."""
        return {name: out.result for name, out in self.upstream.items() if out.succeeded}

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job (or its time ran out)."""
        return self._cancelled

    def request_cancel(self) -> None:
        self._cancelled = True

    def checkpoint(self, state: Any) -> bool:
        """Save progress (JSON); a retry of this job starts with it as `last_checkpoint`.

        Returns False when this attempt no longer holds the job (a stale token). Never
        blocks the worker's event loop: called there (from an async task), the write is
        handed to a worker thread and this returns at once, True unless an earlier
        write of this attempt was refused; `checkpoint_async` waits for the store's
        answer. The attempt's outcome is reported after its checkpoints are written.
        """
        return self._writes.checkpoint(dumps_json(state, "checkpoint"))

    async def checkpoint_async(self, state: Any) -> bool:
        """`checkpoint`, awaiting the store's answer without blocking the event loop.

        Example:
            >>> @app.task(pass_context=True)
            ... async def crawl(ctx: Context, pages: int) -> int:
            ...     for page in range(ctx.last_checkpoint or 0, pages):
            ...         await fetch(page)
            ...         if not await ctx.checkpoint_async(page + 1):
            ...             return page  # another attempt holds the job now
            ...     return pages
        """
        return await self._writes.checkpoint_async(dumps_json(state, "checkpoint"))

    def extend_lease(self, duration: DurationLike) -> bool:
        """Ask for the lease to last at least ``duration`` from now. Like `checkpoint`,
        it returns at once when called on the worker's event loop."""
        return self._writes.extend_lease(parse_duration(duration, "duration", allow_zero=False))

    async def extend_lease_async(self, duration: DurationLike) -> bool:
        """`extend_lease`, awaiting the store's answer without blocking the event loop."""
        seconds = parse_duration(duration, "duration", allow_zero=False)
        return await self._writes.extend_lease_async(seconds)
