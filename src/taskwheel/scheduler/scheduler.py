"""The scheduler: fires schedules on time, and maintains the store when its turn comes.

Any number of scheduler processes may run. Schedules are hashed into partitions, each a
lease; the living schedulers share the partitions and take over a dead one's when its
leases lapse (judged by the store's clock; see `partitions`).

Each scheduler keeps the next ``horizon`` of its partitions' fire times in a timing
wheel, built from the store when it takes a partition, then extended a thin slice at a
time (no step reads every schedule again) and corrected as schedules change (on a
notification, and by a periodic look at what changed); it sleeps until the wheel's next
expiry or a notification. Each expiry batch is planned (`plan_fires`, from the rows
as the firing transaction reads them) and applied by the store in one transaction per
partition that checks the partition's lease (`Store.fire_due`), so a
scheduler that lost a lease without noticing fires nothing of it.

Besides firing, each scheduler runs a `Maintenance` (promote due delayed jobs at the
instant the next one is due, rescue expired leases, expire missed deadlines, release
``queue_one`` jobs, prune) in the same loop, under the ``maintenance`` lease that
workers compete for too: whichever process holds it maintains, and a deployment without
a scheduler still recovers its crashed workers' jobs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from taskwheel.app import App
from taskwheel.errors import InvalidInput, LeaseLost
from taskwheel.events import Event, EventKind
from taskwheel.maintenance import Maintenance
from taskwheel.notify import SCHEDULING, due_of
from taskwheel.scheduler.partitions import Tenure, partition_lease, partition_of
from taskwheel.scheduler.settings import SchedulerSettings
from taskwheel.schedules import Fired, FirePlan, FireResult, Firing, Schedule
from taskwheel.validators import ALL_NAMESPACES
from taskwheel.wheel import Timer, TimingWheel

log = logging.getLogger("taskwheel.scheduler")

_RELOAD_DEBOUNCE = 0.2  # seconds between looks at changes prompted by notifications
# Changes are read again this far back: a change committed a little after the time it
# carries (a concurrent transaction) is still seen. Re-reading a few rows costs little.
_CHANGE_MARGIN = 5.0
_MAX_BACKOFF = 5.0  # seconds between attempts while the store cannot be reached
# Firing and loading are done in bounded pieces, and the partition leases are renewed
# between two pieces when the renewal is due: a burst of fires or a load of a million
# fire times never holds the renewal back past the lease's TTL (a piece takes well under
# the margin between ``renew`` and ``lease_ttl``). A piece holds one partition's
# schedules: one transaction, under that partition's lease, so a piece is also what a
# lost lease can cut short. (Pieces cut across partitions made a burst of 10,000 fires
# 640 transactions of 16 instead of 48 of up to 256, firing at 40 % of the rate.)
# A burst's first piece holds FIRE_BATCH schedules; each next one is up to twice or
# down to half as large, aiming at pieces of FIRE_PIECE seconds, between FIRE_LEAST and
# FIRE_MOST. (Pieces of a fixed 256 fired a burst of 10,000 in 48 transactions, each
# letting the workers' claims and reports take the write lock in between: the last
# fire came 1.3 times later than in one transaction.) FIRE_MOST keeps a piece within
# about eight of those old ones, so a store that slows down tenfold mid-piece still
# leaves the renewal time to spare.
FIRE_BATCH = 256
FIRE_PIECE = 0.05
FIRE_LEAST = 16
FIRE_MOST = 2048
# A load reads the horizon in slices of fire time: the first is 1/LOAD_SLICES of it, and
# each next one is up to twice or down to half as wide, aiming at pieces of LOAD_PIECE
# seconds: a sparse horizon is read in a few pieces, a dense one in many short ones.
LOAD_SLICES = 240
LOAD_PIECE = 0.05


class Scheduler:
    """Fires an app's schedules of the partitions it holds, and maintains the store
    while it holds the maintenance lease (for which workers compete too: see
    `taskwheel.maintenance`).

    `step` does everything due at the store clock's now and returns when to call
    it next: tests drive it with a `ManualClock`; `run` loops on it, sleeping until
    then or until a notification arrives.

    Example:
        >>> Scheduler(app).run()  # until SIGTERM / SIGINT, or `stop()` from a thread
    """

    def __init__(
        self, app: App, settings: SchedulerSettings | None = None, *, sync: bool = True
    ) -> None:
        self.app = app
        self.store = app.store
        self.settings = s = settings or SchedulerSettings()
        # The app's namespace, or every namespace: the store reads and fires the
        # schedules of all of them, and the leases live under that scope.
        self.namespace = ALL_NAMESPACES if s.all_namespaces else app.namespace
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sync = sync
        self._tenure = Tenure(self.store, self.namespace, self.id, s.partitions)
        self.maintenance = Maintenance(
            self.store, self.namespace, self.id, s.maintenance,
            lease_ttl=s.lease_ttl, renew=s.renew, standby_poll=s.standby_poll,
        )
        # Counted where the matching event is emitted (see `_count_fire`, `_elect`).
        self._counts = {"fired": 0, "duplicates": 0, "stale": 0, "overlap_skipped": 0,
                        "misfired": 0, "terms": 0}
        self._wheel = self._new_wheel(self.store.now())
        self._timers: dict[int, Timer[int]] = {}
        self._next_elect = 0.0  # a look at the membership
        self._next_renew = 0.0  # a renewal of the leases
        self._loaded_until = -math.inf  # every fire time up to here is on the wheel
        self._next_changes = math.inf
        self._changes_seen = -math.inf
        self._to_load: set[int] = set()  # partitions taken, their fire times not loaded yet
        self._loading = False
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @property
    def leader(self) -> bool:
        """Whether this scheduler holds the maintenance lease (and maintains)."""
        return self.maintenance.holding

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions whose schedules this scheduler fires."""
        return self._tenure.held

    @property
    def stats(self) -> dict[str, int]:
        """What this scheduler did: fires by result, misfires, terms (partitions taken),
        and what its maintenance did (promoted, rescued, expired, released, pruned)."""
        return {**self._counts, **self.maintenance.stats}

    def sync_schedules(self) -> list[Schedule]:
        """Write the app's declared schedules, then look for the ones it declared once
        and no longer does (`App.undeclared_schedules`): one warning each, and with
        ``prune_undeclared`` each is paused. Pausing, not removing: a resume undoes it
        (after a rollback, say) and the schedule keeps its history. Returns the
        undeclared schedules found."""
        now = self.app.store.now()
        for schedule, changed in self.app.sync_schedules():
            if changed:
                log.info("schedule %s: declared in code, written", schedule.name)
            try:
                schedule.definition.check_fires(now)
            except InvalidInput as refused:
                # Written as declared (a deploy does not fail over it), but said at
                # every start while the code still declares it.
                log.warning("schedule %s: declared in code but will never fire (%s): it "
                            "is done; remove it from the code or change its %s",
                            schedule.name, refused.reason, refused.field)
        undeclared = self.app.undeclared_schedules()
        for schedule in undeclared:
            if self.settings.prune_undeclared:
                self.app.client.pause_schedule(schedule.name)
                log.warning("schedule %s: declared by app %s no longer; paused "
                            "(prune_undeclared)", schedule.name, self.app.name)
            else:
                log.warning("schedule %s: declared by app %s no longer, and still fires; "
                            "remove or pause it (taskwheel schedules remove %s), or start "
                            "the scheduler with --prune-undeclared to pause it",
                            schedule.name, self.app.name, schedule.name)
        return undeclared

    def _new_wheel(self, now: float) -> TimingWheel[int]:
        return TimingWheel(tick=self.settings.tick, slots=256, levels=4, start=now)

    # -- running ------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stopped: the first SIGTERM/SIGINT stops after the current step
        and gives the leases back so a standby takes over at once."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        if self.sync:
            self.sync_schedules()
        listener = self.store.notifier.listen(hears=SCHEDULING)
        log.info("scheduler %s started (%s)", self.id,
                 "every namespace" if self.namespace == ALL_NAMESPACES
                 else f"namespace {self.namespace}")
        failures = 0
        watched = [self._wake_r] + ([listener.fileno()] if listener else [])
        try:
            while not self._stop.is_set():
                try:
                    next_step = self.step()  # before the clocks are read: it takes time
                    until = time.monotonic() + max(0.0, next_step - self.store.now())
                    failures = 0
                except Exception:  # the store is unreachable, most likely: wait, retry
                    failures += 1
                    timeout = min(_MAX_BACKOFF, 0.05 * 2**failures)
                    log.exception("scheduler %s: a step failed; standing down, trying again "
                                  "in %.2fs", self.id, timeout)
                    self._step_down()
                    until = time.monotonic() + timeout
                # Wait for the next step's time, a stop, or a notification that changes
                # something here: the others (jobs ready or finished, which workers
                # send by the hundred a second) cost a read, not a step.
                while not self._stop.is_set():
                    timeout = until - time.monotonic()
                    if timeout <= 0:
                        break
                    ready, _, _ = select.select(watched, [], [], timeout)
                    if self._wake_r in ready:
                        os.read(self._wake_r, 4096)
                        break
                    if listener is not None and listener.fileno() in ready and (
                        self.on_notifications(listener.read())
                    ):
                        break
        finally:
            if listener is not None:
                listener.close()
            self.resign()
            log.info("scheduler %s stopped: %s", self.id, self.stats)

    def stop(self) -> None:
        """Stop the loop (safe from a signal handler or another thread)."""
        self._stop.set()
        with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending
            os.write(self._wake_w, b"x")

    def resign(self) -> None:
        """Give every lease back so the others take over at once."""
        held = self._tenure.held
        try:
            self._tenure.resign_all()
            self._announce_leases(EventKind.LEASE_LOST, held, "resigned")
        except Exception:  # the leases lapse by themselves
            log.exception("could not give the partition leases back")
        try:
            self.maintenance.resign()
        except Exception:
            log.exception("could not give the maintenance lease back")
        self._step_down()

    def on_notifications(self, events: Sequence[tuple[str, str]]) -> bool:
        """Take notifications read from the store's notifier: a schedule change reloads
        the wheel soon (a burst of changes costs one reload); delayed jobs added make
        the promoter look now (and learn when the next one is due). Whether any of them
        moved the next step (the others are for workers and watchers)."""
        moved = False
        for namespace, event in events:
            if self.namespace not in (namespace, ALL_NAMESPACES):
                continue
            if event == "schedules":
                self._next_changes = min(
                    self._next_changes, self._changes_seen + _RELOAD_DEBOUNCE
                )
                moved = True
            elif due_of(event) is not None:
                self.maintenance.promoter.wake()
                moved = True
        return moved

    def close(self) -> None:
        """Close the pipe `stop` writes to (a scheduler driven by `step` alone, such as
        `taskwheel.testing`'s, never runs the loop that would)."""
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def reload_changes(self) -> None:
        """Look at the schedules changed since the last look at the next `step`, with no
        debounce: for a caller that steps a manual clock and has just changed them
        (`taskwheel.testing`)."""
        self._next_changes = -math.inf

    # -- one step -----------------------------------------------------------------------

    def step(self) -> float:
        """Do what is due now; return the store-clock time of the next step."""
        now = self.store.now()
        if now >= self._next_elect:
            self._elect(now)
        if now >= self.maintenance.next_step:
            self.maintenance.step(now)
        if not self._tenure.held:
            return min(self._next_elect, self.maintenance.next_step)
        if now >= self._next_changes:
            self._load_changes(now)
        if now + self.settings.horizon >= self._next_extension():
            self._extend(now)
        expired = self._wheel.advance(now)
        if expired:
            self._fire_pieces([timer.item for timer in expired], now)
        upcoming = self._wheel.next_expiry()
        return min(
            self._next_elect,
            self._next_changes,
            self._next_extension() - self.settings.horizon,
            self.maintenance.next_step,  # includes the instant the next delayed job is due
            math.inf if upcoming is None else upcoming,
        )

    def _elect(self, now: float) -> None:
        """Renew the partition leases when due, or at once when a member died or joined
        (looked at every ``standby_poll``: a dead member's partitions are taken as soon
        as its leases lapse)."""
        s = self.settings
        self._next_elect = now + s.standby_poll
        if now < self._next_renew and self._tenure.complete and not (
            self._tenure.members_changed()
        ):
            return
        self._renew(now)

    def _renew(self, now: float) -> None:
        """Renew the leases; drop the partitions lost, load the ones taken (unless a load
        is under way: it renewed between two of its pieces and takes them next)."""
        s = self.settings
        self._next_renew = now + s.renew
        change = self._tenure.renew(s.lease_ttl)
        if change.lost:
            log.warning("scheduler %s: partitions %s went to others", self.id,
                        sorted(change.lost))
            self._to_load -= change.lost
            self._drop(change.lost)
            self._announce_leases(EventKind.LEASE_LOST, change.lost, "taken")
        if not self._tenure.held:
            self._forget_partitions()
            return
        if change.acquired:
            self._counts["terms"] += 1
            log.info("scheduler %s holds partitions %s: loading them", self.id,
                     sorted(change.acquired))
            self._to_load |= change.acquired
            if not self._loading:
                self._load_taken(now)

    def _keep_leases(self) -> float:
        """Between two pieces of firing or loading: renew the leases if that is due
        (never later because of the work under way); the store clock's now."""
        now = self.store.now()
        if now >= self._next_renew:
            self._renew(now)
        return now

    def _load_taken(self, now: float) -> None:
        """Load the partitions taken, a set at a time (more may be taken meanwhile)."""
        self._loading = True
        try:
            while self._to_load:
                partitions = frozenset(self._to_load)
                self._to_load.clear()
                began = time.perf_counter()
                placed = self._take(partitions, now)
                log.info("scheduler %s loaded %d fire times of partitions %s in %.3fs",
                         self.id, placed, sorted(partitions), time.perf_counter() - began)
                self._announce_leases(EventKind.LEASE_WON, partitions & self._tenure.held)
        finally:
            self._loading = False

    def _step_down(self) -> None:
        """Forget everything held (the store is the truth; a new term reloads it)."""
        if self._tenure.held:
            self._announce_leases(EventKind.LEASE_LOST, self._tenure.held, "unreachable")
        self._tenure.forget()
        self.maintenance.forget()
        self._next_renew = 0.0
        self._forget_partitions()

    def _forget_partitions(self) -> None:
        self._timers.clear()
        self._to_load.clear()
        self._wheel = self._new_wheel(self._wheel.now)
        self._next_changes = math.inf
        self._loaded_until = -math.inf

    def _announce_leases(
        self, kind: EventKind, partitions: frozenset[int], reason: str | None = None
    ) -> None:
        events = self.store.events
        if not partitions or not events.wants(kind):
            return
        now = self.store.now()
        for k in sorted(partitions):
            metadata = {"lease": partition_lease(k)}
            if reason is not None:
                metadata["reason"] = reason
            events.emit(Event(kind, self.namespace, now, metadata=metadata, source=self.id))

    def _mine(self, schedule_id: int) -> bool:
        return partition_of(schedule_id, self.settings.partitions) in self._tenure.held

    def _share(self, partitions: frozenset[int]) -> tuple[int, frozenset[int]] | None:
        """The filter the store reads ``partitions``' rows with (None: all of them)."""
        count = self.settings.partitions
        return None if len(partitions) == count else (count, partitions)

    # -- firing ---------------------------------------------------------------------------

    def _take(self, partitions: frozenset[int], now: float) -> int:
        """Put the fire times of newly held partitions within what is loaded on the
        wheel (the store is the truth; the wheel only knows when to look); how many."""
        if self._loaded_until == -math.inf:  # a first term: start the horizon here
            self._loaded_until = now + self.settings.horizon
            self._changes_seen = now
            self._next_changes = now + self.settings.horizon / 2
        # What is overdue, then the horizon in slices: only these partitions' rows are
        # read (the store filters them), a slice at a time, and the leases are renewed
        # between two slices when due.
        step = self.settings.horizon / LOAD_SLICES
        after: float | None = None
        until = now
        placed = 0
        while True:
            until = min(until, self._loaded_until)
            began = self.store.now()
            for schedule_id, fire_at in self.store.schedules_due(
                self.namespace, until, after=after, partitions=self._share(partitions)
            ):
                self._place(schedule_id, fire_at)
                placed += 1
            if until >= self._loaded_until:
                return placed
            took = self._keep_leases() - began
            if after is not None:  # the overdue piece says nothing of the horizon's density
                step *= min(2.0, max(0.5, LOAD_PIECE / max(took, 1e-9)))
            after, until = until, until + max(step, self.settings.tick)
            partitions &= self._tenure.held  # one lost meanwhile is not loaded further
            if not partitions:
                return placed

    def _drop(self, partitions: frozenset[int]) -> None:
        count = self.settings.partitions
        for schedule_id in [i for i in self._timers if partition_of(i, count) in partitions]:
            timer = self._timers.pop(schedule_id)
            if timer.active:
                self._wheel.cancel(timer)

    def _next_extension(self) -> float:
        """When the horizon has moved a slice past what is loaded."""
        return self._loaded_until + max(self.settings.tick, self.settings.horizon / 120)

    def _extend(self, now: float) -> None:
        """Load the fire times that entered the horizon since the last extension: a
        slice of the schedules, never all of them."""
        horizon = now + self.settings.horizon
        for schedule_id, fire_at in self.store.schedules_due(
            self.namespace, horizon, after=self._loaded_until,
            partitions=self._share(self._tenure.held),
        ):
            self._place(schedule_id, fire_at)
        self._loaded_until = horizon

    def _load_changes(self, now: float) -> None:
        """Correct the wheel for schedules declared, changed, paused or resumed."""
        for schedule_id, fire_at in self.store.schedules_changed(
            self.namespace, self._changes_seen - _CHANGE_MARGIN
        ):
            self._correct(schedule_id, fire_at)
        self._changes_seen = now
        self._next_changes = now + self.settings.horizon / 2

    def _correct(self, schedule_id: int, fire_at: float | None) -> None:
        """Put a schedule at ``fire_at`` if that is within what is loaded, else take it
        off the wheel (an extension loads it when its time comes into view)."""
        if fire_at is not None and fire_at <= self._loaded_until and self._mine(schedule_id):
            self._place(schedule_id, fire_at)
            return
        timer = self._timers.pop(schedule_id, None)
        if timer is not None and timer.active:
            self._wheel.cancel(timer)

    def _place(self, schedule_id: int, fire_at: float) -> None:
        timer = self._timers.get(schedule_id)
        if timer is not None:
            if timer.active and timer.when == fire_at:
                return
            self._wheel.cancel(timer)
        self._timers[schedule_id] = self._wheel.insert(fire_at, schedule_id)

    def _fire_pieces(self, ids: list[int], now: float) -> None:
        """Fire the expired ``ids`` in the order they fell due, a piece at a time (sized
        as `FIRE_PIECE` says), each piece one transaction under the leases of every
        partition it has, the leases renewed between two pieces when due; a partition
        lost meanwhile fires nothing more (its new holder loads its schedules from the
        store). (A transaction per partition wrote a step of a few fires in each of
        many partitions as that many transactions, the last partition's fires waiting
        for all the others': 100,000 schedules every minute fired 17-28 ms late at the
        median, two fires a transaction.)"""
        count = self.settings.partitions
        size = FIRE_BATCH
        start = 0
        while start < len(ids):
            now = self._keep_leases()  # a long load or a slow step may have come first
            held = self._tenure.held
            piece = ids[start:start + size]
            start += len(piece)
            self._fire([i for i in piece if partition_of(i, count) in held], now)
            if len(piece) == size:  # the short last piece says nothing
                size = next_piece(size, self.store.now() - now)

    def _fire(self, ids: list[int], now: float) -> None:
        """Plan and fire expired schedules in the store (`Store.fire_due`: each planned
        from its row as the firing transaction reads it), then put each back on the
        wheel at its next fire time."""
        for schedule_id in ids:
            self._timers.pop(schedule_id, None)
        due_later: float | None = None
        stale: list[int] = []
        for firing in self._apply(ids, now):
            schedule, plan = firing.schedule, firing.plan
            if plan is None:  # changed or paused since it was loaded
                self._correct(schedule.id, None if schedule.paused else schedule.next_fire_epoch)
                continue
            for result in firing.fired:
                self._count_fire(result, schedule, now)
                if (result.run_at is not None and result.created_at is not None
                        and result.run_at > result.created_at):
                    run_at = result.run_at.timestamp()
                    due_later = run_at if due_later is None else min(due_later, run_at)
            if any(result.result is FireResult.STALE for result in firing.fired):
                stale.append(schedule.id)
                continue
            if misfired(schedule, plan, now):
                self._count_misfire(schedule, plan, now)
            if self._mine(schedule.id):
                self._correct(schedule.id, plan.next_fire_at)
        if stale:  # the store moved on without this plan: look at where it is now
            for schedule in self.store.get_schedules(self.namespace, stale):
                self._correct(schedule.id, None if schedule.paused else schedule.next_fire_epoch)
        if due_later is not None and self.leader:
            self.maintenance.promoter.due_at(due_later)

    def _count_fire(self, result: Fired, schedule: Schedule | None, now: float) -> None:
        self._counts[_STAT[result.result]] += 1
        events = self.store.events
        if events.wants(EventKind.SCHEDULE_FIRED):
            job = None if schedule is None else schedule.definition.job
            events.emit(Event(
                EventKind.SCHEDULE_FIRED, self.namespace, now, job_id=result.job_id,
                task=None if job is None else job.task,
                queue=None if job is None else job.queue,
                metadata={"schedule_id": result.schedule_id,
                          "schedule": None if schedule is None else schedule.name,
                          "fire_at": result.fire_at.timestamp(),
                          "result": result.result.value,
                          "run_at": None if result.run_at is None else result.run_at.timestamp(),
                          "workflow_run_id": result.workflow_run_id},
                source=self.id,
            ))

    def _count_misfire(self, schedule: Schedule, plan: FirePlan, now: float) -> None:
        self._counts["misfired"] += 1
        events = self.store.events
        if events.wants(EventKind.SCHEDULE_MISFIRED):
            d = schedule.definition
            events.emit(Event(
                EventKind.SCHEDULE_MISFIRED, self.namespace, now,
                measurements={"late": now - plan.expected_next, "fires": len(plan.fires)},
                metadata={"schedule_id": schedule.id, "schedule": schedule.name,
                          "policy": d.misfire.value, "missed_from": plan.expected_next,
                          "next_fire_at": plan.next_fire_at},
                source=self.id,
            ))

    def _apply(self, ids: list[int], now: float) -> list[Firing]:
        """Fire the schedules ``ids`` under the leases of their partitions (the store
        checks each): a scheduler that lost one without noticing fires nothing of it,
        and the others' schedules are fired without it."""
        count = self.settings.partitions
        while ids:
            leases = {partition_lease(p): p for p in {partition_of(i, count) for i in ids}}
            try:  # (the store takes the leases in name order, as elect_many does)
                return self.store.fire_due(self.namespace, ids, now,
                                           leases=[(name, self.id) for name in leases])
            except LeaseLost as lost:
                partition = leases[lost.name]
                log.warning("scheduler %s: partition %d was lost while firing", self.id,
                            partition)
                self._tenure.lose(partition)
                self._drop(frozenset({partition}))
                self._announce_leases(EventKind.LEASE_LOST, frozenset({partition}), "taken")
                self._next_elect = self.store.now()
                ids = [i for i in ids if partition_of(i, count) != partition]
        return []

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"id": self.id, "leader": self.leader, "partitions": sorted(self.partitions),
                "partition_count": s.partitions, "lease_ttl": s.lease_ttl,
                "renew": s.renew, "standby_poll": s.standby_poll, "horizon": s.horizon,
                "tick": s.tick, "timers": len(self._wheel)}


def misfired(schedule: Schedule, plan: FirePlan, now: float) -> bool:
    """Whether ``plan`` skips or catches up fire times missed beyond the schedule's
    grace (the judgement `plan_fires` made, read back from the plan).

    Example:
        every 60 s, next fire 10:00:00: planned at 10:00:00.2, no; at 10:05:30 (any
        misfire policy), yes.
    """
    d = schedule.definition
    if now - plan.expected_next > d.misfire_grace:
        return True
    # Within the grace, instants are dropped only when the catch-up bound was reached.
    return len(plan.fires) >= d.max_catch_up and (
        d.next_fire(plan.fires[-1].fire_at) != plan.next_fire_at
    )


_STAT = {
    FireResult.CREATED: "fired",
    FireResult.WAITING: "fired",
    FireResult.OVERLAP_SKIPPED: "overlap_skipped",
    FireResult.DUPLICATE: "duplicates",
    FireResult.STALE: "stale",
}


def next_piece(size: int, took: float) -> int:
    """How many schedules a burst's next piece holds after one of ``size`` took
    ``took`` seconds (see `FIRE_PIECE`)."""
    scaled = size * min(2.0, max(0.5, FIRE_PIECE / max(took, 1e-9)))
    return max(FIRE_LEAST, min(FIRE_MOST, int(scaled)))
