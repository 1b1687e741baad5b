"""The worker: claims jobs in batches, runs them, heartbeats, reports outcomes in batches.

One asyncio loop runs four small loops: fetch (claim up to the free capacity when
woken), report (flush finished attempts in one transaction), heartbeat (extend every
lease in one statement, pick up cancel requests) and maintenance (a `Maintenance`, the
same one schedulers run, under the same ``maintenance`` lease: while this worker holds
it, it rescues the jobs of vanished workers, promotes, expires and prunes; so workers
alone, with no scheduler, recover from a crashed worker). Store calls go through one
database thread so the loop never blocks on a lock; a task's checkpoints and lease
extensions through a writer thread (see `writes`), maintenance through a thread of its
own.

What happens is announced on the store's event hook (`taskwheel.events`): job claimed,
started, finished, retried, dead, report rejected. Events are built only when a handler
wants their kind; ``stats`` is counted at the same places.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from taskwheel.app import App
from taskwheel.errors import StoreUnavailable
from taskwheel.events import EventKind, job_event
from taskwheel.jobs import AttemptOutcome, Claim, Job, Outcome, job_origin
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance import Maintenance
from taskwheel.notify import CANCEL, CLAIMING, JOBS, due_of
from taskwheel.stores.base import WorkerRegistration
from taskwheel.stores.claims import ClaimRequest
from taskwheel.tasks import Pool, Task, render_command
from taskwheel.validators import ALL_NAMESPACES
from taskwheel.worker.context import Context
from taskwheel.worker.execution import (
    ChildPool,
    Execution,
    Running,
    call_in_thread,
    decide_for,
    run_coroutine,
    run_on_daemon_thread,
    run_shell,
    timed_out,
)
from taskwheel.worker.heartbeat import Heartbeat
from taskwheel.worker.settings import WorkerSettings
from taskwheel.worker.writes import AttemptWriter, WriterThread

log = logging.getLogger("taskwheel.worker")
_MAX_BACKOFF = 5.0  # seconds between retries while the store cannot be reached
# A worker serving every namespace looks up which have work every this many poll
# intervals (a wake-up from a namespace it does not know adds that one at once).
_NAMESPACES_REFRESH = 10
# A burst worker waits for the delayed jobs of its queues due within this many seconds
# (retries backing off, jobs enqueued with a short delay), and no longer.
BURST_HORIZON = 60.0
_ALARM_MARGIN = 0.0001  # seconds past a due time the worker wakes (see _sleep_until_alarm)
# How long before a delayed job falls due the worker claims it, on a store that claims
# ahead (`Store.claims_ahead`); it holds the job and starts its code at the due time. A
# claim and its commit take 1-3 ms on PostgreSQL, up to a few on SQLite behind another
# writer, more with workers racing for one job: claimed when due, the job started that
# much late.
CLAIM_AHEAD = 0.010
T = TypeVar("T")


class _Bell:
    """What the fetch loop sleeps on: `set` (work to claim; it stays set until
    `clear`) or `stir` (the alarm moved: a sleeper wakes, to sleep again until the new
    alarm). Each sleeper awaits a future of its own, which a wake-up resolves: it
    resumes at the loop's next turn (waiting on two events at once, through a task
    each, took three turns and two more for their cancellation). On the loop only."""

    def __init__(self) -> None:
        self._set = False
        self._sleepers: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._set = True
        self.stir()

    def stir(self) -> None:
        for sleeper in self._sleepers:
            if not sleeper.done():
                sleeper.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        """Until it is set or stirred (at once when it is set)."""
        if self._set:
            return
        sleeper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append(sleeper)
        try:
            await sleeper
        finally:
            self._sleepers.remove(sleeper)


def _report_metadata(kind: EventKind, outcome: Outcome, job: Job) -> dict[str, Any]:
    if kind is EventKind.REPORT_REJECTED:
        return {"fence": outcome.fence, "outcome": outcome.outcome.value}
    metadata: dict[str, Any] = {"error": outcome.error, "attempt": job.attempt}
    if kind is EventKind.JOB_RETRIED:
        metadata["delay"] = outcome.retry_delay
    return metadata


class Worker:
    """Runs jobs of an app's tasks from the given queues until stopped, and maintains
    the store while it holds the maintenance lease (see `taskwheel.maintenance`).

    Example:
        >>> worker = Worker(app, WorkerSettings.build(queues=["emails"], concurrency=8))
        >>> worker.run()  # until SIGTERM / SIGINT, or `worker.stop()` from another thread
    """

    # The signals that stop it gracefully (a second one at once) when it installs its
    # handlers; a supervised worker process leaves SIGINT (Ctrl-C) to its supervisor.
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self, app: App, settings: WorkerSettings | None = None, *, worker_id: str | None = None
    ) -> None:
        self.app = app
        self.store = app.store
        self.settings = s = settings or WorkerSettings.build()
        # A supervisor names the worker processes it starts (see `supervisor`).
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        served = s.namespaces or (app.namespace,)
        self.serves_all = served == (ALL_NAMESPACES,)
        # Where its registration and its maintenance lease live: its one namespace, or
        # every namespace when it serves several (maintenance is then every namespace's).
        self.namespace = served[0] if len(served) == 1 else ALL_NAMESPACES
        # The namespaces claims name: fixed, or (serving all) those that have work,
        # refreshed now and then and on a wake-up from one not yet known.
        self._serving: tuple[str, ...] = () if self.serves_all else served
        self._serving_seen = -math.inf
        self.maintenance = Maintenance(
            self.store, self.namespace, self.id, s.maintenance,
            lease_ttl=s.lease_ttl, renew=s.heartbeat_interval, standby_poll=s.heartbeat_interval,
        )
        self._running: dict[int, Running] = {}
        # Newer attempts of jobs whose older attempt still runs here (this worker's lease
        # lapsed, the job was rescued and this worker claimed it again): each starts when
        # the older one ends, so no job ever runs twice at once in one worker. The older
        # attempt is stopped and reports nothing (its token is stale); the newer one's
        # lease is renewed meanwhile.
        self._deferred: dict[int, Job] = {}
        self._tasks: tuple[str, ...] = ()  # the tasks it claims jobs of (run_async)
        # The most jobs it claims in its life (None: no end); a supervised process with
        # --max-tasks-per-child claims no more than it may run, then retires.
        self.claim_limit: int | None = None
        # Called once the limit is spent and nothing of it runs any more (a job given
        # back unfinished never counts as ended): the owner of the limit retires it.
        self.on_claims_spent: Callable[[], None] | None = None
        self.stopped_by: int | None = None  # the signal that stopped it, if one did
        self._alarm: float | None = None  # when the earliest delayed job it knows of is due
        self._due_heard: float | None = None  # due wake-ups heard since the last claim began
        self._ahead = CLAIM_AHEAD if self.store.claims_ahead else 0.0  # see CLAIM_AHEAD
        # How far ahead the last claim looked: a job due by then that it left (of another
        # queue, behind a gate) is claimed at its due time, not looked at again and again.
        self._looked_to: float | None = None
        # Jobs claimed ahead of their due time: when (time.monotonic()) their code may start.
        self._not_before: dict[int, float] = {}
        self._heartbeat: Heartbeat | None = None
        self._pending: list[tuple[Outcome, Job]] = []
        # {job id: fence} of the attempts that ended here and whose outcome is not
        # written yet (pending or on its way): their leases are renewed until it is.
        self._unwritten: dict[int, int] = {}
        self._stopping = False
        self._hard_stop = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="taskwheel-db")
        self._db_calls = 0  # calls on the claims' thread not yet answered (on the loop)
        # A report is written as soon as the previous one committed (group commit) and
        # is never queued behind a claim, so the window between a body's end and its
        # outcome being durable (what a crash runs twice) is about one commit. It runs
        # on the claims' thread when that is idle, on a thread of its own otherwise:
        # the claim its end calls for (a workflow's next step, a freed slot) then
        # follows it on the same thread instead of waking another (a workflow chain's
        # processes switched context 16 % more often with every report on its own).
        self._reports = ThreadPoolExecutor(1, thread_name_prefix="taskwheel-reports")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="taskwheel-writes")
        # The loop's thread is known once it runs (run_async).
        self._writes = WriterThread(self.store, self._writer, loop_thread=0)
        self._upkeep = ThreadPoolExecutor(1, thread_name_prefix="taskwheel-maintenance")
        self._events = self.store.events
        self._children = ChildPool({"sys_path": sys.path, "app": app.import_path})
        self._saturated = False
        self._unreported = 0  # outcomes not yet written to the store
        # Counted where the matching event is emitted (`_claimed`, `_finished`, `_reported`).
        self._counts = {"claimed": 0, "succeeded": 0, "failed": 0, "interrupted": 0,
                        "retried": 0, "dead": 0, "rejected": 0}

    @property
    def stats(self) -> dict[str, int]:
        """What this worker did: jobs claimed, attempts that succeeded, failed or were
        interrupted, retries, dead jobs, reports rejected; and what its maintenance did
        (promoted, rescued, expired, released, pruned)."""
        return {**self._counts, **self.maintenance.stats}

    # -- lifecycle --------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stopped (blocking). SIGTERM/SIGINT stop gracefully; a second one
        stops at once."""
        asyncio.run(self.run_async(install_signal_handlers=install_signal_handlers))

    @property
    def stopping(self) -> bool:
        """Whether it was asked to stop: it claims nothing more."""
        return self._stopping

    def stop(self, *, hard: bool = False) -> None:
        """Stop claiming and shut down (safe from any thread)."""
        loop = self._loop
        if loop is None:
            self._stopping = True
            return
        loop.call_soon_threadsafe(self._begin_stop, hard)

    def _on_signal(self, sig: int) -> None:
        self.stopped_by = self.stopped_by or sig
        self._begin_stop()

    def _begin_stop(self, hard: bool = False) -> None:
        if self._stopping:
            hard = True
        self._stopping = True
        self._hard_stop = self._hard_stop or hard
        self._wake.set()
        self._stop_event.set()

    async def run_async(self, *, install_signal_handlers: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._writes.loop_thread = threading.get_ident()
        self._wake = _Bell()
        self._alarm_moved = False  # since the fetch loop last went to sleep
        self._report_ready = asyncio.Event()
        self._handed = _Bell()  # stirred when the report loop takes a batch
        self._stop_event = asyncio.Event()
        self._idle = asyncio.Event()
        if self._stopping:
            self._stop_event.set()
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in self.stop_signals:
                loop.add_signal_handler(sig, self._on_signal, sig)
        listener = self.store.notifier.listen(hears=CLAIMING)
        if listener is not None:
            loop.add_reader(listener.fileno(), self._on_notification, listener)
        s = self.settings
        registration = WorkerRegistration(
            id=self.id, namespace=self.namespace, hostname=socket.gethostname(),
            pid=os.getpid(), queues=s.queues, concurrency=s.concurrency, pool=s.pool.value,
            heartbeat_interval=s.heartbeat_interval,
        )
        try:
            await self._register(registration)
        except BaseException:  # refused for good (or stopped meanwhile): nothing to undo
            if listener is not None:
                loop.remove_reader(listener.fileno())
                listener.close()
            for pool in (self._db, self._reports, self._upkeep, self._writer):
                pool.shutdown(wait=False)
            self._loop = None
            raise
        # It claims only jobs of the tasks it has: in a rolling deploy, a worker of the
        # older code leaves a new task's jobs to the workers that have it.
        self._tasks = tuple(sorted(self.app.tasks))
        if not self._tasks:
            log.warning("worker %s has no tasks registered (is --app right?): it claims "
                        "nothing", self.id)
        log.info("worker %s serving %s in %s (pool=%s, c=%d)", self.id, ",".join(s.queues),
                 "every namespace" if self.serves_all else ",".join(self._serving),
                 s.pool.value, s.concurrency)
        reporter = asyncio.create_task(self._report_loop())
        background = [asyncio.create_task(self._maintenance_loop())]
        self._heartbeat = Heartbeat(
            self.store, self.id, interval=s.heartbeat_interval, lease_ttl=s.lease_ttl,
            leases=self._leases, on_held=self._held, loop=loop,
        )
        self._heartbeat.start()
        try:
            await self._fetch_loop()
            await self._drain_running()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await loop.run_in_executor(None, self._heartbeat.stop)
            self._report_ready.set()
            self._reporting_done = True
            await reporter
            if listener is not None:
                loop.remove_reader(listener.fileno())
                listener.close()
            await self._children.close()
            try:
                await loop.run_in_executor(self._upkeep, self.maintenance.resign)
            except Exception:  # it lapses by itself
                log.exception("could not give the maintenance lease back")
            with contextlib.suppress(Exception):
                await self._call(self.store.unregister_worker, self.id)
            self._db.shutdown(wait=True)
            self._reports.shutdown(wait=True)
            self._upkeep.shutdown(wait=True)
            self._writer.shutdown(wait=False, cancel_futures=True)
            self._loop = None
            log.info("worker %s stopped: %s", self.id, self.stats)

    async def _register(self, registration: WorkerRegistration) -> None:
        """Register with the store; a worker started while the database is down waits
        for it (an outage), one the store refuses for good (a permission, a read-only
        file) stops with the store's reason."""
        failures = 0
        while True:
            try:
                await self._call(self.store.register_worker, registration)
                return
            except StoreUnavailable:
                if self._stopping:
                    raise
                failures += 1
                delay = min(_MAX_BACKOFF, self.settings.poll_interval * 2**failures)
                log.exception("cannot register with the store; trying again in %.1fs", delay)
                await self._pause(delay)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        self._db_calls += 1
        try:
            return await loop.run_in_executor(self._db, functools.partial(fn, *args))
        finally:
            self._db_calls -= 1

    def _on_notification(self, listener: Any) -> None:
        for namespace, event in listener.read():
            if namespace not in self._serving:
                if not self.serves_all:
                    continue
                if event == JOBS:  # work in a namespace it did not know of yet
                    self._serving = (*self._serving, namespace)
            if event == CANCEL:
                if self._heartbeat is not None:
                    self._heartbeat.beat_now()
            elif (due := due_of(event)) is not None:
                # Delayed jobs were added: move the alarm if they fall due before it.
                if self._due_heard is None or due < self._due_heard:
                    self._due_heard = due
                if self._looked_to is not None and due <= self._looked_to:
                    # Added after the last claim looked that far, most likely: that
                    # claim did not see them, so the alarm rings ahead for them again
                    # (one claim more at most, if it had seen and left them).
                    self._looked_to = None
                if self._alarm is None or due < self._alarm:
                    self._alarm = due
                    self._alarm_moved = True
                    self._wake.stir()
            elif event == JOBS:
                self._wake.set()

    async def _namespaces(self) -> tuple[str, ...]:
        """The namespaces to claim from: (serving all) looked up again every
        ``_NAMESPACES_REFRESH`` poll intervals, a cheap read of the store's index."""
        if self.serves_all:
            now = time.monotonic()
            if now - self._serving_seen >= _NAMESPACES_REFRESH * self.settings.poll_interval:
                self._serving = tuple(await self._call(self.store.namespaces))
                self._serving_seen = now
        return self._serving

    # -- fetch ------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        s = self.settings
        while not self._stopping:
            # Cleared before looking, so a wake-up that arrives meanwhile is not lost; and
            # a set event would return from wait() without yielding to the running jobs.
            self._wake.clear()
            free = s.concurrency - len(self._running) - len(self._deferred)
            if self.claim_limit is not None:
                free = min(free, self.claim_limit - self._counts["claimed"])
            if free > 0:
                want = min(free, s.batch_size)
                try:
                    namespaces = await self._namespaces()
                    if self._pending and self.store.one_writer:
                        await self._outcomes_first()
                    # The alarm rang for a delayed job: the claim makes it ready first.
                    now = self.store.now()
                    due = self._alarm is not None and self._alarm <= now + self._ahead
                    self._due_heard = None
                    # Only a claim for a rung alarm looks ahead: without it, each
                    # store claims ready jobs alone (`ClaimRequest.alarm`), and a delayed
                    # job it reports must ring the alarm ahead of its due time.
                    self._looked_to = now + self._ahead if self._ahead and due else None
                    claim = Claim(jobs=[], next_due=None) if not (
                        namespaces and self._tasks) else await self._claim(
                        ClaimRequest(self.id, namespaces, s.queues, want, s.lease_ttl,
                                     tasks=self._tasks, due=due, ahead=self._ahead,
                                     alarm=True))
                except Exception:
                    log.exception("claim failed; retrying")
                    await self._pause(s.poll_interval)
                    continue
                # The earliest due time known now: the claim's answer, or a delayed job
                # whose wake-up arrived while the claim was on its way (the claim may
                # not have seen it).
                heard = self._due_heard
                self._alarm = claim.next_due if heard is None else (
                    heard if claim.next_due is None else min(heard, claim.next_due))
                self._claimed(claim.jobs)
                received = time.monotonic()
                for job in claim.jobs:
                    # Due ahead of the claim by the store's clock: held that long from
                    # now, which is after the claim ran (never longer than asked for).
                    if claim.at is not None and (
                        early := min(job.run_at.timestamp() - claim.at, self._ahead)
                    ) > 0:
                        self._not_before[job.id] = received + early
                    self._start(job)
                self._saturated = len(claim.jobs) == want
                if self._saturated:
                    continue
                if (s.burst and not claim.jobs and not self._running and not self._deferred
                        and not self._unreported and await self._burst_done(namespaces)):
                    return
            else:  # no free capacity (or no claims left): a job that ends wakes it
                if (self.claim_limit is not None and self.on_claims_spent is not None
                        and not self._running and not self._deferred):
                    self.on_claims_spent()
                self._saturated = True
                await self._pause(s.poll_interval)
                continue
            # Idle: sleep until woken, the poll interval, or the alarm (set above, moved
            # earlier by "due" wake-ups since).
            while await self._sleep_until_alarm():
                pass

    async def _claim(self, request: ClaimRequest) -> Claim:
        """The claim: on the loop when nothing runs here, every outcome is written
        and the store can answer at once (`Store.try_claim`: a hop to the claims'
        thread and back was a quarter of an idle SQLite worker's time from an enqueue
        to the job's start), else on the claims' thread, behind the outcomes on their
        way there (`_outcomes_first`)."""
        if not self._running and not self._deferred and not self._unreported:
            claim = self.store.try_claim(request)
            if claim is not None:
                return claim
        return await self._call(self.store.claim, request)

    async def _outcomes_first(self) -> None:
        """Until the report loop has taken the outcomes waiting now. On a store whose
        writes take turns, a claim started first would hold the lock while they wait
        (the window in which a crash runs their jobs again: in a two-node drain of
        jobs of 50 ms on SQLite, the jobs inside it at a random instant went from 6.5-8.6
        on average to 4.1-5.6 per node). The claim then follows their report on the
        claims' thread. Waits for one batch at most: outcomes that keep coming never
        hold claims back for longer."""
        waiting = self._pending  # the report loop puts a new list in its place
        while self._pending is waiting and waiting and not self._reporting_done:
            await self._handed.wait()

    async def _burst_done(self, namespaces: tuple[str, ...]) -> bool:
        """Whether a burst worker's queues are drained: nothing ready (the last claim
        found nothing), nothing running here, and no delayed job of its queues due
        within `BURST_HORIZON` (jobs of other queues, or due later, are not its)."""
        if not namespaces:
            return True
        s = self.settings
        served = await self._call(self.store.claim, ClaimRequest(
            self.id, namespaces, s.queues, 0, s.lease_ttl))
        due = served.next_due
        return due is None or due > self.store.now() + BURST_HORIZON

    async def _pause(self, timeout: float) -> None:
        """Until woken (a moved alarm does not end it) or ``timeout`` passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self._wake.is_set():
                    await self._wake.wait()

    async def _sleep_until_alarm(self) -> bool:
        """Wait for a wake-up, the poll interval or the alarm; True when the alarm moved
        meanwhile (sleep again, to the new alarm), False when it is time to claim."""
        self._alarm_moved = False
        timeout = self.settings.poll_interval
        if self._alarm is not None:
            # The loop's selector rounds a timeout up to the next millisecond, so the
            # wake-up is never early by this host's clock; the margin only covers the
            # error of `Store.now` against the database's clock (half a round trip on
            # PostgreSQL). Waking a little early costs one claim that finds the job
            # not yet due and sleeps again; every margin beyond that is lateness. On a
            # store that claims ahead, the alarm rings that much before the due time,
            # unless the last claim looked that far already.
            lead = self._ahead if self._looked_to is None or self._alarm > self._looked_to \
                else 0.0
            timeout = min(timeout, max(0.0, self._alarm - lead - self.store.now())
                          + _ALARM_MARGIN)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        return self._alarm_moved and not self._wake.is_set()

    def _start(self, job: Job) -> None:
        older = self._running.get(job.id)
        if older is not None:
            log.warning("job %d claimed again (fencing token %d) while its attempt with "
                        "token %d still runs here: stopping that one (its lease lapsed); the "
                        "new attempt starts when it ends", job.id, job.fence, older.job.fence)
            self._deferred[job.id] = job
            self._stop_stale(older)
            return
        writer = AttemptWriter(self._writes, job.id, job.fence)
        ctx = Context(
            job_id=job.id, attempt=job.attempt, max_attempts=job.max_attempts,
            fencing_token=job.fence, task=job.task, queue=job.queue, namespace=job.namespace,
            last_checkpoint=job.checkpoint, writes=writer,
            workflow_run_id=job.workflow_run_id, step=job.step,
        )
        running = Running(job=job, ctx=ctx, writer=writer, started=time.monotonic())
        self._running[job.id] = running
        task = asyncio.get_running_loop().create_task(self._run(running))

        def stop(hard: bool) -> None:
            if hard:  # a coroutine is cancelled; a thread only sees ctx.cancelled
                task.cancel()

        if running.stop is None:
            running.stop = stop

    async def _run(self, running: Running) -> None:
        job = running.job
        task = self.app.tasks.get(job.task)
        not_before = self._not_before.pop(job.id, None)
        if not_before is not None and (early := not_before - time.monotonic()) > 0:
            # Claimed ahead of its due time (`CLAIM_AHEAD`): its code starts then, unless
            # a cancel came meanwhile (it never starts, as a job still waiting would not).
            try:
                await asyncio.sleep(early)
                cancelled = running.cancel_signalled
            except asyncio.CancelledError:
                cancelled = True
            if cancelled:
                execution = Execution(AttemptOutcome.CANCELLED,
                                      error="cancelled before it fell due")
                self._ended(running, task, execution, 0.0)
                return
        events = self._events
        if events.wants(EventKind.JOB_STARTED):
            events.emit(job_event(EventKind.JOB_STARTED, job, self.store.now(), source=self.id,
                                  metadata={"attempt": job.attempt,
                                            "trace_parent": job.trace_parent,
                                            "origin": job_origin(job).value}))
        timed = events.wants(EventKind.JOB_FINISHED)  # a duration only for someone to read
        began = time.perf_counter() if timed else 0.0
        try:
            execution = await self._execute(task, running)
            if running.writer.busy:  # its checkpoints are written before its outcome
                await running.writer.settle()
        except asyncio.CancelledError:
            execution = Execution(AttemptOutcome.CANCELLED, error="cancelled; coroutine stopped")
        except Exception as exc:
            log.exception("job %s: unexpected error running it", job.id)
            execution = Execution(AttemptOutcome.FAILED, error=f"worker error: {exc}")
        self._ended(running, task, execution,
                    time.perf_counter() - began if timed else 0.0)

    def _ended(self, running: Running, task: Task[Any, Any] | None, execution: Execution,
               duration: float) -> None:
        """What follows an attempt's end here: its outcome decided and queued for the
        report, and the next attempt of the job or the next claim let in."""
        job = running.job
        del self._running[job.id]
        newer = self._deferred.pop(job.id, None) if not self._stopping else None
        if newer is not None:
            self._start(newer)
        if not self._running:
            self._idle.set()
            if self.settings.burst:
                self._wake.set()
        if self._saturated:
            self._wake.set()
        if running.released:  # given back at shutdown: the store recorded it interrupted
            self._finished(job, AttemptOutcome.INTERRUPTED, None, execution.error, duration)
            return
        if running.lease_lost:  # taken back by the store, which recorded the attempt's end
            self._finished(job, AttemptOutcome.LEASE_EXPIRED, None, execution.error, duration)
            return
        outcome = decide_for(job, task, execution,
                             running.ctx.cancelled and running.cancel_signalled)
        if outcome.status is not JobStatus.SUCCEEDED:
            log.warning("job %d (%s) attempt %d/%d %s: %s -> %s", job.id, job.task, job.attempt,
                        job.max_attempts, execution.outcome.value, execution.error,
                        outcome.status.value)
        self._finished(job, outcome.outcome, outcome.status, outcome.error, duration)
        self._pending.append((outcome, job))
        self._unwritten[job.id] = job.fence
        self._unreported += 1
        self._report_ready.set()

    # -- what happened: counted, and announced when someone listens -------------------------

    def _claimed(self, jobs: list[Job]) -> None:
        self._counts["claimed"] += len(jobs)
        events = self._events
        if jobs and events.wants(EventKind.JOB_CLAIMED):
            now = self.store.now()
            for job in jobs:
                wait = (job.started_at or job.run_at).timestamp() - job.run_at.timestamp()
                events.emit(job_event(EventKind.JOB_CLAIMED, job, now, source=self.id,
                                      measurements={"wait": wait},
                                      metadata={"priority": job.priority}))

    def _finished(self, job: Job, outcome: AttemptOutcome, status: JobStatus | None,
                  error: str | None, duration: float) -> None:
        key = ("interrupted" if status is None
               else "succeeded" if status is JobStatus.SUCCEEDED else "failed")
        self._counts[key] += 1
        events = self._events
        if events.wants(EventKind.JOB_FINISHED):
            wait = (job.started_at or job.run_at).timestamp() - job.run_at.timestamp()
            events.emit(job_event(
                EventKind.JOB_FINISHED, job, self.store.now(), source=self.id,
                measurements={"duration": duration, "wait": wait},
                metadata={"outcome": outcome.value, "error": error,
                          "status": None if status is None else status.value,
                          "attempt": job.attempt},
            ))

    def _written(self, batch: list[tuple[Outcome, Job]]) -> None:
        """The batch's outcomes are in the store (or given up): their leases are no
        longer this worker's to renew (a newer attempt of the same job keeps its own)."""
        unwritten = self._unwritten
        for outcome, _ in batch:
            if unwritten.get(outcome.job_id) == outcome.fence:
                del unwritten[outcome.job_id]

    def _reported(self, batch: list[tuple[Outcome, Job]], rejected: list[int]) -> None:
        """What the store made of a batch of outcomes: retries, dead jobs, refusals."""
        refused = set(rejected)
        events = self._events
        for outcome, job in batch:
            if outcome.status is JobStatus.SUCCEEDED and not refused:
                continue  # most of every batch: nothing more to count or announce
            if outcome.job_id in refused:
                kind, key = EventKind.REPORT_REJECTED, "rejected"
            elif outcome.status is JobStatus.DEAD:
                kind, key = EventKind.JOB_DEAD, "dead"
            elif outcome.status in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                kind, key = EventKind.JOB_RETRIED, "retried"
            else:
                continue
            self._counts[key] += 1
            if events.wants(kind):
                events.emit(job_event(kind, job, self.store.now(), source=self.id,
                                      metadata=_report_metadata(kind, outcome, job)))

    async def _execute(self, task: Task[Any, Any] | None, running: Running) -> Execution:
        job = running.job
        if task is None:
            return Execution(
                AttemptOutcome.FAILED, error=f"unknown task {job.task!r} in this worker"
            )
        if job.workflow_run_id is not None and task.options.pass_context:
            # Read only for tasks that can see them: a step without a context costs no read.
            outcomes = await self._call(self.store.upstream_outcomes, job.namespace, job.id)
            running.ctx.upstream = {outcome.step: outcome for outcome in outcomes}
        timeout = job.timeout
        if task.command is not None:
            command = render_command(task.command, job.args, job.kwargs, task.name)
            return await run_shell(command, timeout, running)
        assert task.fn is not None
        args = [running.ctx, *job.args] if task.options.pass_context else list(job.args)
        pool = task.options.pool or self.settings.pool
        if pool is Pool.PROCESS:
            return await self._run_in_child(task, running, args)
        if task.is_async and pool is Pool.ASYNC:
            fn = task.fn
            return await run_coroutine(lambda: fn(*args, **job.kwargs), timeout)
        future = run_on_daemon_thread(call_in_thread, task.fn, args, job.kwargs)
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            # A thread cannot be killed: tell the task to stop and move on without it.
            running.ctx.request_cancel()
            assert timeout is not None
            return timed_out(timeout, " (the thread cannot be killed and may still be running)")
        return future.result()

    async def _run_in_child(self, task: Task[Any, Any], running: Running,
                            args: list[Any]) -> Execution:
        job = running.job
        assert task.fn is not None
        context = None
        if task.options.pass_context:
            args = args[1:]
            ctx = running.ctx
            context = {
                "job_id": ctx.job_id, "attempt": ctx.attempt, "max_attempts": ctx.max_attempts,
                "fencing_token": ctx.fencing_token, "task": ctx.task, "queue": ctx.queue,
                "namespace": ctx.namespace, "last_checkpoint": ctx.last_checkpoint,
                "workflow_run_id": ctx.workflow_run_id, "step": ctx.step,
                "upstream": [dataclasses.asdict(o) for o in ctx.upstream.values()],
            }
        request = {
            "task": task.name,
            "fn": f"{task.fn.__module__}:{task.fn.__qualname__}",
            "args": args,
            "kwargs": job.kwargs,
            "context": context,
        }
        child = await self._children.acquire()

        def stop(hard: bool) -> None:
            child.signal(signal.SIGKILL if hard else signal.SIGTERM)

        running.stop = stop

        def on_message(message: dict[str, Any]) -> None:  # on the loop: handed over
            if "checkpoint" in message:
                running.writer.checkpoint(message["checkpoint"])
            elif "extend" in message:
                running.writer.extend_lease(float(message["extend"]))

        try:
            return await child.run(request, job.timeout, on_message, lambda: running.ctx.cancelled)
        finally:
            self._children.release(child)

    # -- report -----------------------------------------------------------------------------

    _reporting_done = False

    async def _report_loop(self) -> None:
        while True:
            await self._report_ready.wait()
            self._report_ready.clear()
            batch, self._pending = self._pending, []
            if batch:
                self._handed.stir()  # a claim waiting for these goes once they are on their way
                await self._flush(batch)
                self._unreported -= len(batch)
            if self._reporting_done and not self._pending:
                return

    async def _flush(self, batch: list[tuple[Outcome, Job]]) -> None:
        outcomes = [outcome for outcome, _ in batch]
        failures = 0
        while True:
            try:
                rejected = await asyncio.get_running_loop().run_in_executor(
                    self._reports if self._db_calls else self._db,
                    self.store.finish_attempts, outcomes)
                break
            except Exception:
                failures += 1
                if self._hard_stop:
                    # Asked twice to stop while the store is unreachable: the leases of
                    # these jobs lapse and they are rescued and run again (at-least-once).
                    log.exception("stopping: %d outcomes not reported; their jobs will be "
                                  "rescued", len(batch))
                    self._written(batch)
                    return
                log.exception("reporting %d outcomes failed; retrying", len(batch))
                await asyncio.sleep(min(_MAX_BACKOFF, self.settings.poll_interval * failures))
        self._written(batch)
        self._reported(batch, rejected)
        if rejected:
            log.warning("outcomes of jobs %s refused: their lease had passed to another attempt",
                        rejected)
        # A retry changes what is ready or when the next delayed job is due.
        if self.settings.burst or any(
            o.status in (JobStatus.QUEUED, JobStatus.SCHEDULED) for o in outcomes
        ):
            self._wake.set()

    # -- heartbeat, cancel, rescue ------------------------------------------------------------

    def _leases(self) -> dict[int, int]:
        """The attempts this worker executes, {job id: fence}, and those that ended here
        with their outcome not written yet (the job is this worker's until it is: a
        report slower than a lease, in a stall or a lock wait, must not get it rescued
        and run again): what its heartbeat renews. Called on the heartbeat thread
        (copies, then reads). An attempt past its timeout by more than a lease is left
        out: stuck on a blocked event loop, it must not hold its job for as long as the
        worker lives."""
        leases = dict(self._unwritten)
        running, deferred = dict(self._running), dict(self._deferred)
        now, ttl = time.monotonic(), self.settings.lease_ttl
        leases.update((job_id, r.job.fence) for job_id, r in running.items()
                      if r.job.timeout is None or now - r.started <= r.job.timeout + ttl)
        leases.update((job_id, job.fence) for job_id, job in deferred.items())
        return leases

    def _held(self, sent: Mapping[int, int], held: dict[int, bool]) -> None:
        """The heartbeat's answer, on the loop: signal the cancels asked for, and stop
        each attempt it named that the store no longer holds for this worker."""
        for job_id, cancel_requested in held.items():
            running = self._running.get(job_id)
            if (cancel_requested and running is not None and job_id not in self._deferred
                    and not running.cancel_signalled):
                self._signal_cancel(running)
        for job_id, fence in sent.items():
            if job_id not in held:
                self._lease_lost(job_id, fence)

    def _lease_lost(self, job_id: int, fence: int) -> None:
        """The store no longer holds ``job_id``'s lease with ``fence`` for this worker:
        it lapsed (the worker was stopped or cut off past it) and the job was rescued,
        or the job ended or went elsewhere. Whatever the attempt would report is refused
        as stale, so it stops: an attempt waiting to start never starts, one running is
        cancelled as a cancel request would cancel it (a coroutine after the grace, a
        thread by its context, a child process by its signal). Nothing of it is
        reported; the store recorded its end when it took the lease back."""
        deferred = self._deferred.get(job_id)
        if deferred is not None and deferred.fence == fence:
            del self._deferred[job_id]
            log.warning("job %d: its lease (fencing token %d) is no longer this worker's; "
                        "the claim waiting here will not start", job_id, fence)
            if self._saturated:  # its place is free: claim again now, not at the poll
                self._wake.set()
            return
        running = self._running.get(job_id)
        if running is None or running.job.fence != fence or running.lease_lost:
            return  # it ended meanwhile (its outcome written), another attempt runs, or
            # it is being stopped already
        log.warning("job %d: its lease (fencing token %d) is no longer this worker's (it "
                    "lapsed and the job was rescued, or the job ended elsewhere): stopping "
                    "the attempt", job_id, fence)
        self._stop_stale(running)

    def _stop_stale(self, running: Running) -> None:
        """Stop an attempt whose token is stale, and report nothing of it (`_ended`)."""
        if running.lease_lost:
            return
        running.lease_lost = True
        if not running.cancel_signalled:
            self._signal_cancel(running)

    def _signal_cancel(self, running: Running) -> None:
        running.cancel_signalled = True
        running.ctx.request_cancel()
        if running.stop is None:
            return
        running.stop(False)
        loop = asyncio.get_running_loop()
        stop = running.stop
        loop.call_later(self.settings.cancel_grace,  # unless it ended (a newer one may run)
                        lambda: stop(True) if self._running.get(running.job.id) is running
                        else None)

    async def _maintenance_loop(self) -> None:
        """Step the maintenance on a thread of its own (a long prune delays no claim);
        it does the duties only while this worker holds the maintenance lease."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            before = sum(self.maintenance.stats.values())
            try:
                next_step = await loop.run_in_executor(self._upkeep, self._maintain)
                delay = max(0.0, next_step - self.store.now())
                failures = 0
            except Exception:  # keeping the lease failed: the store is unreachable
                failures += 1
                delay = min(_MAX_BACKOFF, self.settings.poll_interval * 2**failures)
                log.exception("maintenance failed; trying again in %.1fs", delay)
                self.maintenance.forget()
            if sum(self.maintenance.stats.values()) != before:
                self._wake.set()  # jobs may have become ready (rescued, promoted, released)
            await asyncio.sleep(delay)

    def _maintain(self) -> float:
        return self.maintenance.step(self.store.now())

    # -- shutdown ---------------------------------------------------------------------------

    async def _drain_running(self) -> None:
        """Let running jobs finish within the grace period, then give their leases back."""
        if self._running and not self._hard_stop:
            log.info("waiting up to %ss for %d running jobs", self.settings.grace,
                     len(self._running))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.grace):
                    while self._running and not self._hard_stop:
                        self._stop_event.clear()
                        self._idle.clear()
                        waiters = {asyncio.ensure_future(self._stop_event.wait()),
                                   asyncio.ensure_future(self._idle.wait())}
                        try:
                            await asyncio.wait(waiters, return_when="FIRST_COMPLETED")
                        finally:
                            for waiter in waiters:
                                waiter.cancel()
        leftovers = dict(self._running)
        deferred, self._deferred = self._deferred, {}
        if not leftovers and not deferred:
            return
        for running in leftovers.values():
            running.released = True
        # A job claimed again while its older attempt ran is given back under the newer
        # attempt's token (the older one's is stale).
        fences = {job_id: r.job.fence for job_id, r in leftovers.items()}
        fences.update((job_id, job.fence) for job_id, job in deferred.items())
        try:
            released = await self._call(self.store.release_jobs, self.id, fences)
            log.warning("gave back the leases of %d unfinished jobs: %s", len(released),
                        released)
        except Exception:  # their leases lapse instead, and they are rescued
            log.exception("could not give back the leases of %d unfinished jobs", len(fences))
        for running in leftovers.values():
            running.ctx.request_cancel()
            if running.stop is not None:
                running.stop(True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while self._running:
                    self._idle.clear()
                    await self._idle.wait()
