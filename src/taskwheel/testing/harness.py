"""The in-process test mode: an application's jobs run when the test says, in the
test's own thread (or event loop), on a real store whose clock the test moves.

`InProcess` points an `App` at a fresh store judged by a `ManualClock`: a SQLite file in
a temporary directory (or ``:memory:``), by default, whatever store the app is
configured with -- a test's database made and thrown away at once, no server
needed, each test alone; or, given a PostgreSQL URL, a schema of that database made for
the harness and dropped by `close`, for code that needs PostgreSQL under its jobs (an
enqueue in the application's own transaction on its psycopg connection: the store puts
its schema on that connection's path, so the job lands in the harness's schema).

Nothing runs on its own: no worker, no thread, no sleep. `drain` runs every ready job,
one claim at a time in dispatch order, through the worker's own steps: the store's claim
(which promotes due jobs and expires missed deadlines), the task called with the
arguments read back from the store (so a non-JSON argument fails at enqueue, as in
production), the worker's `decide` (retry with backoff, dead, cancelled), and the
store's `finish_attempts` (workflow steps released or blocked). `advance` moves the
clock, stopping at each instant something falls due (a delayed job, a retry's backoff, a
schedule's fire) to fire and run it on time, through a real `Scheduler` stepped by hand
-- cron in its timezone across DST nights, misfire and overlap policies included.

What differs from a worker, on purpose: one job at a time; a sync task's ``timeout``
is not enforced (it runs in the test's thread, which nothing may kill), an async
task's is; a task of the ``process`` pool runs in the test's thread too (its
arguments still went through JSON); no events are emitted for jobs run here.

Example:
    >>> tw = InProcess(app, directory=tmp_path)
    >>> send.enqueue("a@b.c", delay="1h")
    >>> tw.drain()                      # nothing is due yet
    []
    >>> [job.status.value for job in tw.advance("1h")]
    ['succeeded']
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskwheel.app import App
from taskwheel.clock import ManualClock
from taskwheel.durations import DurationLike, aware_datetime, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.handles import WorkflowRunHandle
from taskwheel.jobs import AttemptOutcome, Job, JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.scheduler import Scheduler, SchedulerSettings
from taskwheel.stores import POSTGRES_SCHEMES, Store
from taskwheel.stores.claims import ClaimRequest
from taskwheel.stores.sqlite.store import SQLiteStore
from taskwheel.tasks import Task, render_command
from taskwheel.worker.context import Context
from taskwheel.worker.execution import (
    Execution,
    call_in_thread,
    decide_for,
    run_coroutine,
    success,
)
from taskwheel.workflows import RunStatus, WorkflowRun

WORKER_ID = "taskwheel-testing"
# Leases nothing here ever lets lapse: the test's clock may jump days at once.
_FOREVER = "3650d"
_LEASE_TTL = 10 * 365 * 86_400.0
# A schedule's fire is taken by the scheduler's wheel once its tick has passed.
_PAST_FIRE = 0.002
_MOST_JOBS = 10_000


class InProcess:
    """An app's jobs, schedules and workflow runs driven by the test (see the module).

    Args:
        app: the application; its store is replaced until `close` (its tasks, its
            namespace and its declared schedules stay).
        directory: where the SQLite file goes (pytest's ``tmp_path``); None keeps the
            database in memory.
        start: the clock's first instant (an aware datetime or epoch seconds); now,
            by default.
        database_url: a PostgreSQL URL to run on a new schema of that database
            (dropped by `close`) instead of SQLite; None for SQLite.
    """

    def __init__(
        self, app: App, *, directory: str | Path | None = None,
        start: datetime | float | None = None, database_url: str | None = None,
    ) -> None:
        if start is None:
            first = float(int(time.time()))
        elif isinstance(start, float | int):
            first = float(start)
        else:
            first = aware_datetime(start, "start").timestamp()
        self.app = app
        self.clock = ManualClock(first)
        self.store: Store = _fresh_store(database_url, directory, self.clock)
        self.store.migrate()
        # The app's own store, given back by `close`.
        self._saved = (app._store, app._client, app.database_url)
        app._store, app._client = self.store, None
        if isinstance(self.store, SQLiteStore):
            # Code that opens its own connection to the app's database (an enqueue in
            # its own transaction) finds this file. A PostgreSQL URL stays: the same
            # database, whose store puts the harness's schema on such connections.
            path = self.store.path
            app.database_url = "sqlite://:memory:" if path == ":memory:" else f"sqlite:///{path}"
        self.scheduler = Scheduler(app, SchedulerSettings.build(
            lease_ttl=_FOREVER, standby_poll="1d", retention=_FOREVER, partitions=1),
            sync=False)
        self._declared: dict[str, Any] = {}
        self._sync_declared()

    def close(self) -> None:
        """Give the app its own store back and close this one."""
        self.scheduler.close()
        self.app._store, self.app._client, self.app.database_url = self._saved
        drop_schema = getattr(self.store, "drop_schema", None)  # a PostgreSQL schema's
        if drop_schema is not None:
            drop_schema()
        else:
            self.store.close()

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- time --------------------------------------------------------------------------

    def now(self) -> datetime:
        """The test's clock, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def advance(self, duration: DurationLike, *, run: bool = True) -> list[Job]:
        """Move the clock ``duration`` ahead (``"1h"``, ``90``), running on the way
        everything that falls due, each at its own instant: delayed jobs, retries after
        their backoff, schedules' fires (and the jobs they make). The jobs run, as they
        ended. With ``run=False`` the clock jumps and nothing runs, as if every process
        were down: the next `drain` or `advance` finds the missed fires (misfire
        policies) and the passed deadlines."""
        target = self.clock.now() + parse_duration(duration, "duration")
        if not run:
            self.clock.set(target)
            return []
        ran = self.drain()
        while (upcoming := self._next_event()) is not None and upcoming <= target:
            self.clock.set(upcoming)
            ran += self.drain()
        self.clock.set(max(target, self.clock.now()))
        return ran + self.drain()

    def advance_to(self, moment: datetime, *, run: bool = True) -> list[Job]:
        """`advance` up to ``moment`` (an aware datetime, not in the past)."""
        seconds = aware_datetime(moment, "moment").timestamp() - self.clock.now()
        return self.advance(max(0.0, seconds), run=run)

    def _next_event(self) -> float | None:
        """The earliest instant after now at which something falls due (what fell due
        and did not run here -- a job of a task this app lacks -- is not waited for)."""
        self._sync_declared()
        namespace = self.app.namespace
        now = self.clock.now()
        _promoted, due = self.store.promote_due_jobs(namespace)
        # A schedule fires once the scheduler's wheel tick has passed its instant.
        fires = [s.next_fire_epoch + _PAST_FIRE for s in self.store.list_schedules(namespace)
                 if not s.paused and s.next_fire_epoch is not None]
        later = [t for t in [due, *fires] if t is not None and t > now]
        return min(later) if later else None

    # -- running jobs ------------------------------------------------------------------

    def run_next(self) -> Job | None:
        """Fire what is due, then claim the next ready job in dispatch order and run
        it; the job as it ended (or went back to wait for a retry), None when nothing
        is ready."""
        if any(task.is_async for task in self.app.tasks.values()) and _loop_running():
            raise RuntimeError("drain() in a running event loop, whose async tasks it could "
                               "not await: use `await tw.drain_async()`")
        job = self._claim()
        if job is None:
            return None
        return self._finish(job, self._execute(job))

    def drain(self, *, most: int = _MOST_JOBS) -> list[Job]:
        """Run ready jobs until none is (jobs they enqueue included), without moving
        the clock; the jobs run, in order. An async task runs in an event loop of its
        own: in an async test, ``await tw.drain_async()`` instead. `RuntimeError` after
        ``most`` jobs (a job that enqueues itself forever)."""
        ran: list[Job] = []
        while (job := self.run_next()) is not None:
            ran.append(job)
            if len(ran) >= most:
                raise RuntimeError(f"drain ran {most} jobs and more are ready: does a job "
                                   "enqueue itself forever?")
        return ran

    async def drain_async(self, *, most: int = _MOST_JOBS) -> list[Job]:
        """`drain` on the running event loop: async tasks are awaited here, sync ones
        called in this thread."""
        ran: list[Job] = []
        while (job := self._claim()) is not None:
            ran.append(self._finish(job, await self._execute_async(job)))
            if len(ran) >= most:
                raise RuntimeError(f"drain ran {most} jobs and more are ready: does a job "
                                   "enqueue itself forever?")
        return ran

    def run_workflow(
        self, run: WorkflowRunHandle | int, *, most: int = _MOST_JOBS
    ) -> WorkflowRun:
        """Run ``run`` to its end, step by step (other ready jobs run too, in dispatch
        order), moving the clock to each retry's backoff as it comes; the run as it
        ended (still ``running`` if it waits for something no time can bring)."""
        handle = run if isinstance(run, WorkflowRunHandle) else self.app.workflow_run(run)
        for _ in range(most):
            if handle.refresh().status is not RunStatus.RUNNING:
                break
            if self.run_next() is None:
                upcoming = self._next_event()
                if upcoming is None:
                    break
                self.clock.set(upcoming)
        return handle.refresh().record

    def _sync_declared(self) -> None:
        """Write the app's declared schedules, as a scheduler does when it starts, and
        again when the test declares more (or changes one) after the harness began."""
        declared = dict(self.app.schedules)
        if declared != self._declared:
            self.scheduler.sync_schedules()
            self._declared = declared

    def _claim(self) -> Job | None:
        self._sync_declared()
        self.scheduler.reload_changes()
        self.scheduler.step()
        namespace = self.app.namespace
        tasks = tuple(sorted(self.app.tasks))
        queues = tuple(q.queue for q in self.store.stats(namespace).queues)
        if not tasks or not queues:
            return None
        claim = self.store.claim(ClaimRequest(WORKER_ID, (namespace,), queues, 1, _LEASE_TTL,
                                              tasks=tasks))
        return claim.jobs[0] if claim.jobs else None

    def _prepare(self, job: Job) -> tuple[Task[Any, Any] | None, Context, list[Any]]:
        task = self.app.tasks.get(job.task)
        ctx = Context(job_id=job.id, attempt=job.attempt, max_attempts=job.max_attempts,
                      fencing_token=job.fence, task=job.task, queue=job.queue,
                      namespace=job.namespace, last_checkpoint=job.checkpoint,
                      writes=_StoreWrites(self.store, job), workflow_run_id=job.workflow_run_id,
                      step=job.step)
        if task is not None and job.workflow_run_id is not None and task.options.pass_context:
            ctx.upstream = {o.step: o for o in self.store.upstream_outcomes(job.namespace,
                                                                            job.id)}
        args = [ctx, *job.args] if task is not None and task.options.pass_context else list(
            job.args)
        return task, ctx, args

    def _execute(self, job: Job) -> tuple[Execution, Context]:
        task, ctx, args = self._prepare(job)
        if task is not None and task.fn is not None and task.is_async:
            fn = task.fn
            return asyncio.run(run_coroutine(lambda: fn(*args, **job.kwargs),
                                             job.timeout)), ctx
        return _call(task, job, args), ctx

    async def _execute_async(self, job: Job) -> tuple[Execution, Context]:
        task, ctx, args = self._prepare(job)
        if task is not None and task.fn is not None and task.is_async:
            fn = task.fn
            return await run_coroutine(lambda: fn(*args, **job.kwargs), job.timeout), ctx
        return _call(task, job, args), ctx

    def _finish(self, job: Job, ran: tuple[Execution, Context]) -> Job:
        execution, _ctx = ran
        outcome = decide_for(job, self.app.tasks.get(job.task), execution, False)
        self.store.finish_attempts([outcome])
        return self.store.get_job(job.namespace, job.id)

    # -- what was enqueued -------------------------------------------------------------

    def jobs(
        self, task: Task[Any, Any] | str | None = None, *, status: JobStatus | None = None
    ) -> list[Job]:
        """The namespace's jobs (of ``task``, in ``status``), oldest first."""
        name = task.name if isinstance(task, Task) else task
        found = self.store.list_jobs(self.app.namespace,
                                     JobFilter(task=name, status=status, limit=_MOST_JOBS))
        return sorted(found, key=lambda job: job.id)

    def assert_enqueued(
        self, task: Task[Any, Any] | str, *, args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None, count: int | None = None,
        status: JobStatus | None = None,
    ) -> list[Job]:
        """The jobs of ``task`` created in this test with these ``args`` and
        ``kwargs`` (any, when not given) and in ``status`` (any, when not given); an
        `AssertionError` saying what was enqueued unless there are ``count`` of them
        (at least one, when ``count`` is not given)."""
        found = self._matching(task, args, kwargs, status)
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "at least one" if count is None else str(count)
            raise AssertionError(
                f"expected {wanted} job(s) of {_name(task)!r}{_described(args, kwargs, status)}"
                f", found {len(found)}; enqueued: {self._summary()}")
        return found

    def assert_not_enqueued(
        self, task: Task[Any, Any] | str, *, args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """An `AssertionError` if a job of ``task`` (with these arguments) exists."""
        self.assert_enqueued(task, args=args, kwargs=kwargs, count=0)

    def _matching(
        self, task: Task[Any, Any] | str, args: Sequence[Any] | None,
        kwargs: Mapping[str, Any] | None, status: JobStatus | None,
    ) -> list[Job]:
        return [job for job in self.jobs(task, status=status)
                if (args is None or job.args == list(args))
                and (kwargs is None or job.kwargs == dict(kwargs))]

    def _summary(self) -> str:
        jobs = self.jobs()
        shown = ", ".join(f"{job.task}(args={job.args}, kwargs={job.kwargs}) {job.status.value}"
                          for job in jobs[:20])
        more = f" and {len(jobs) - 20} more" if len(jobs) > 20 else ""
        return f"[{shown}]{more}" if jobs else "nothing"


class _StoreWrites:
    """A context's checkpoints and lease extensions, written at once."""

    def __init__(self, store: Store, job: Job) -> None:
        self._store = store
        self._job = job

    def checkpoint(self, state_json: str) -> bool:
        return self._store.save_checkpoint(self._job.id, self._job.fence, state_json)

    def extend_lease(self, seconds: float) -> bool:
        return self._store.extend_lease(self._job.id, self._job.fence, seconds)

    async def checkpoint_async(self, state_json: str) -> bool:
        return self.checkpoint(state_json)

    async def extend_lease_async(self, seconds: float) -> bool:
        return self.extend_lease(seconds)


def _fresh_store(database_url: str | None, directory: str | Path | None,
                 clock: ManualClock) -> Store:
    if database_url is None:
        path = ":memory:" if directory is None else str(Path(directory) / "taskwheel.db")
        return SQLiteStore(path, clock=clock)
    if not database_url.startswith(POSTGRES_SCHEMES):
        raise InvalidInput("database_url", "the in-process mode takes a PostgreSQL URL "
                           f"(a new schema of it is used) or None for SQLite, got "
                           f"{database_url!r}")
    from taskwheel.stores.postgres.store import PostgresStore

    return PostgresStore(database_url, schema=f"taskwheel_test_{secrets.token_hex(6)}",
                         clock=clock)


def _call(task: Task[Any, Any] | None, job: Job, args: list[Any]) -> Execution:
    """A sync task, or a shell command, called here."""
    if task is None:
        return Execution(AttemptOutcome.FAILED, error=f"unknown task {job.task!r} in this worker")
    if task.command is not None:
        command = render_command(task.command, job.args, job.kwargs, task.name)
        try:
            done = subprocess.run(command, shell=True, capture_output=True, text=True,
                                  timeout=job.timeout, check=False)
        except subprocess.TimeoutExpired:
            return Execution(AttemptOutcome.TIMED_OUT, error=f"timed out after {job.timeout:g}s")
        if done.returncode != 0:
            return Execution(AttemptOutcome.FAILED, error=f"exit status {done.returncode}: "
                             f"{done.stderr.strip()[-500:]}")
        return success(done.stdout)
    assert task.fn is not None
    return call_in_thread(task.fn, args, job.kwargs)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _name(task: Task[Any, Any] | str) -> str:
    return task.name if isinstance(task, Task) else task


def _described(args: Iterable[Any] | None, kwargs: Mapping[str, Any] | None,
               status: JobStatus | None) -> str:
    parts = [f"args={list(args)!r}" if args is not None else "",
             f"kwargs={dict(kwargs)!r}" if kwargs is not None else "",
             f"status={status.value}" if status is not None else ""]
    shown = ", ".join(part for part in parts if part)
    return f" with {shown}" if shown else ""

