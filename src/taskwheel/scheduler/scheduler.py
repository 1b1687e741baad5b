"""The scheduler: fires schedules on time and does the store's maintenance.

Any number of scheduler processes may run. Schedules are hashed into partitions, each a
lease; the living schedulers share the partitions and take over a dead one's when its
leases lapse (judged by the store's clock; see `partitions`). The holder of the
``scheduler`` lease also does the maintenance.

Each scheduler keeps the next ``horizon`` of its partitions' fire times in a timing
wheel, built from the store when it takes a partition, then extended a thin slice at a
time (no step reads every schedule again) and corrected as schedules change (on a
notification, and by a periodic look at what changed); it sleeps until the wheel's next
expiry or a notification. Each expiry batch is planned (`plan_fires`) and applied by
the store in one transaction per partition that checks the partition's lease, so a
scheduler that lost a lease without noticing fires nothing of it.

Duties besides firing, each a small timer in the same loop: make due delayed and
backed-off jobs ready and wake the workers at that instant; rescue expired leases;
expire missed deadlines; release ``queue_one`` jobs whose predecessor ended; prune
finished jobs past the retention period.
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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskwheel.app import App
from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput, LeaseLost
from taskwheel.scheduler.partitions import Tenure, partition_lease, partition_of
from taskwheel.schedules import Fired, FirePlan, FireResult, plan_fires
from taskwheel.wheel import Timer, TimingWheel

log = logging.getLogger("taskwheel.scheduler")

_PROMOTE = -1  # the wheel item that stands for "delayed jobs fall due"
_RELOAD_DEBOUNCE = 0.2  # seconds between looks at changes prompted by notifications
# Changes are read again this far back: a change committed a little after the time it
# carries (a concurrent transaction) is still seen. Re-reading a few rows costs little.
_CHANGE_MARGIN = 5.0
_MAX_BACKOFF = 5.0  # seconds between attempts while the store cannot be reached


@dataclass(frozen=True)
class SchedulerSettings:
    """How a scheduler behaves. Durations accept ``"30s"`` and the like.

    ``lease_ttl``: how long the lease lasts without renewal; a standby takes over
    at most this long after the holder dies. ``renew``: how often the holder renews
    (default a third of the TTL). ``standby_poll``: how often a standby tries to take
    the lease. ``horizon``: how far ahead fire times are held in memory. ``tick``:
    the wheel's resolution. ``maintenance``: how often rescue, expiry and queue_one
    release run. ``retention``: finished jobs older than this are pruned (dead jobs
    are kept until purged). ``partitions``: how many shares the schedules are hashed
    into, to spread the firing over several schedulers (every scheduler of a namespace
    should use the same number).
    """

    lease_ttl: float = 1.5
    renew: float = 0.5
    standby_poll: float = 0.1
    horizon: float = 60.0
    tick: float = 0.001
    maintenance: float = 1.0
    retention: float = 7 * 86_400.0
    prune_every: float = 60.0
    partitions: int = 16

    @classmethod
    def build(
        cls,
        *,
        lease_ttl: DurationLike = "1.5s",
        renew: DurationLike | None = None,
        standby_poll: DurationLike = "100ms",
        horizon: DurationLike = "60s",
        tick: DurationLike = "1ms",
        maintenance: DurationLike = "1s",
        retention: DurationLike = "7d",
        prune_every: DurationLike = "60s",
        partitions: int = 16,
    ) -> SchedulerSettings:
        """Validated settings; every error names its option."""
        ttl = parse_duration(lease_ttl, "lease_ttl", allow_zero=False)
        beat = ttl / 3 if renew is None else parse_duration(renew, "renew", allow_zero=False)
        if beat >= ttl:
            raise InvalidInput("renew", f"must be shorter than the lease ({beat}s >= {ttl}s)")
        tick_s = parse_duration(tick, "tick", allow_zero=False)
        horizon_s = parse_duration(horizon, "horizon", allow_zero=False)
        if horizon_s < 10 * tick_s:
            raise InvalidInput("horizon", f"must be at least ten ticks ({horizon_s}s)")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or not (
            1 <= partitions <= 4096
        ):
            raise InvalidInput(
                "partitions", f"must be an integer from 1 to 4096, got {partitions!r}"
            )
        return cls(
            lease_ttl=ttl,
            renew=beat,
            standby_poll=parse_duration(standby_poll, "standby_poll", allow_zero=False),
            horizon=horizon_s,
            tick=tick_s,
            maintenance=parse_duration(maintenance, "maintenance", allow_zero=False),
            retention=parse_duration(retention, "retention", allow_zero=False),
            prune_every=parse_duration(prune_every, "prune_every", allow_zero=False),
            partitions=partitions,
        )


class Scheduler:
    """Fires an app's schedules of the partitions it holds, and maintains the store
    while it holds the ``scheduler`` lease.

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
        self.namespace = app.namespace
        self.settings = settings or SchedulerSettings()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sync = sync
        self._tenure = Tenure(self.store, self.namespace, self.id, self.settings.partitions)
        self.stats = {"fired": 0, "duplicates": 0, "stale": 0, "overlap_skipped": 0,
                      "promoted": 0, "rescued": 0, "expired": 0, "pruned": 0, "terms": 0}
        self._wheel = self._new_wheel(self.store.now())
        self._timers: dict[int, Timer[int]] = {}
        self._promote_timer: Timer[int] | None = None
        self._next_elect = 0.0  # a look at the membership
        self._next_renew = 0.0  # a renewal of the leases
        self._loaded_until = -math.inf  # every fire time up to here is on the wheel
        self._next_changes = math.inf
        self._changes_seen = -math.inf
        self._next_maintenance = 0.0
        self._next_prune = 0.0
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @property
    def leader(self) -> bool:
        """Whether this scheduler holds the ``scheduler`` lease (and maintains)."""
        return self._tenure.maintainer

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions whose schedules this scheduler fires."""
        return self._tenure.held

    @property
    def active(self) -> bool:
        return self._tenure.maintainer or bool(self._tenure.held)

    def _new_wheel(self, now: float) -> TimingWheel[int]:
        return TimingWheel(tick=self.settings.tick, slots=256, levels=4, start=now)

    # -- running ------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stopped: the first SIGTERM/SIGINT stops after the current step
        and gives the lease back so a standby takes over at once."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        if self.sync and self.app.schedules:
            for schedule, changed in self.app.sync_schedules():
                if changed:
                    log.info("schedule %s: declared in code, written", schedule.name)
        listener = self.store.notifier.listen()
        log.info("scheduler %s started (namespace %s)", self.id, self.namespace)
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    timeout = max(0.0, self.step() - self.store.now())
                    failures = 0
                except Exception:  # the store is unreachable, most likely: wait, retry
                    failures += 1
                    timeout = min(_MAX_BACKOFF, 0.05 * 2**failures)
                    log.exception("scheduler %s: a step failed; standing down, trying again "
                                  "in %.2fs", self.id, timeout)
                    self._step_down()
                watched = [self._wake_r] + ([listener.fileno()] if listener else [])
                ready, _, _ = select.select(watched, [], [], timeout)
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                if listener is not None and listener.fileno() in ready:
                    self.on_notifications(listener.read())
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
        """Give every lease back so the other schedulers take over at once."""
        try:
            self._tenure.resign_all()
        except Exception:  # the leases lapse by themselves
            log.exception("could not give the scheduler leases back")
        self._step_down()

    def on_notifications(self, events: Sequence[tuple[str, str]]) -> None:
        """Take notifications read from the store's notifier: a schedule change reloads
        the wheel soon (a burst of changes costs one reload); due jobs promote now."""
        for namespace, event in events:
            if namespace != self.namespace:
                continue
            if event == "schedules":
                self._next_changes = min(
                    self._next_changes, self._changes_seen + _RELOAD_DEBOUNCE
                )
            elif event == "due":
                self._next_maintenance = 0.0

    # -- one step -----------------------------------------------------------------------

    def step(self) -> float:
        """Do what is due now; return the store-clock time of the next step."""
        now = self.store.now()
        if now >= self._next_elect:
            self._elect(now)
        if not self.active:
            return self._next_elect
        if now >= self._next_changes:
            self._load_changes(now)
        if now + self.settings.horizon >= self._next_extension():
            self._extend(now)
        expired = self._wheel.advance(now)
        if expired:
            self._fire([timer.item for timer in expired], now)
        if self.leader and now >= self._next_maintenance:
            self._maintain(now)
        upcoming = self._wheel.next_expiry()
        return min(
            self._next_elect,
            self._next_changes,
            self._next_extension() - self.settings.horizon,
            self._next_maintenance if self.leader else math.inf,
            math.inf if upcoming is None else upcoming,
        )

    def _elect(self, now: float) -> None:
        """Renew the leases when due, or at once when a member died or joined (looked at
        every ``standby_poll``: a dead member's partitions are taken as soon as its
        leases lapse)."""
        s = self.settings
        self._next_elect = now + s.standby_poll
        if now < self._next_renew and self._tenure.complete and not (
            self._tenure.members_changed()
        ):
            return
        self._next_renew = now + s.renew
        was_leader = self.leader
        change = self._tenure.renew(s.lease_ttl)
        if change.lost:
            log.warning("scheduler %s: partitions %s went to others", self.id,
                        sorted(change.lost))
            self._drop(change.lost)
        if change.acquired:
            self.stats["terms"] += 1
            log.info("scheduler %s holds partitions %s: loading them", self.id,
                     sorted(change.acquired))
            self._take(change.acquired, now)
        if self.leader and not was_leader:
            log.info("scheduler %s holds the scheduler lease: maintaining", self.id)
            self._next_maintenance = 0.0
        if not self.active:
            self._step_down()

    def _step_down(self) -> None:
        """Forget everything held (the store is the truth; a new term reloads it)."""
        self._tenure.forget()
        self._next_renew = 0.0
        self._timers.clear()
        self._promote_timer = None
        self._wheel = self._new_wheel(self._wheel.now)
        self._next_changes = math.inf
        self._loaded_until = -math.inf

    def _mine(self, schedule_id: int) -> bool:
        return partition_of(schedule_id, self.settings.partitions) in self._tenure.held

    # -- firing ---------------------------------------------------------------------------

    def _take(self, partitions: frozenset[int], now: float) -> None:
        """Put the fire times of newly held partitions within what is loaded on the
        wheel (the store is the truth; the wheel only knows when to look)."""
        if self._loaded_until == -math.inf:  # a first term: start the horizon here
            self._loaded_until = now + self.settings.horizon
            self._changes_seen = now
            self._next_changes = now + self.settings.horizon / 2
        count = self.settings.partitions
        for schedule_id, fire_at in self.store.schedules_due(self.namespace, self._loaded_until):
            if partition_of(schedule_id, count) in partitions:
                self._place(schedule_id, fire_at)

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
            self.namespace, horizon, after=self._loaded_until
        ):
            if self._mine(schedule_id):
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

    def _fire(self, items: list[int], now: float) -> None:
        if _PROMOTE in items:
            self._promote_timer = None
            self._promote()
        ids = [item for item in items if item != _PROMOTE]
        for schedule_id in ids:
            self._timers.pop(schedule_id, None)
        if not ids:
            return
        schedules = self.store.get_schedules(self.namespace, ids)
        plans = []
        for schedule in schedules:
            plan = plan_fires(schedule, now)
            if plan is None:  # changed or paused since it was loaded
                self._correct(schedule.id, None if schedule.paused else schedule.next_fire_epoch)
                continue
            plans.append(plan)
        fired = self._apply(plans)
        due_later: float | None = None
        stale: set[int] = set()
        for result in fired:
            self.stats[_STAT[result.result]] += 1
            if result.result is FireResult.STALE:
                stale.add(result.schedule_id)
            if (result.run_at is not None and result.created_at is not None
                    and result.run_at > result.created_at):
                due_later = result.run_at if due_later is None else min(due_later, result.run_at)
        for plan in plans:
            if plan.schedule_id not in stale and self._mine(plan.schedule_id):
                self._correct(plan.schedule_id, plan.next_fire_at)
        if stale:  # the store moved on without this plan: look at where it is now
            for schedule in self.store.get_schedules(self.namespace, sorted(stale)):
                self._correct(schedule.id, None if schedule.paused else schedule.next_fire_epoch)
        if due_later is not None:
            self._arm_promotion(due_later)

    def _apply(self, plans: list[FirePlan]) -> list[Fired]:
        """Apply plans partition by partition, each under its partition's lease: a
        scheduler that lost one without noticing fires nothing of it."""
        count = self.settings.partitions
        by_partition: dict[int, list[FirePlan]] = {}
        for plan in plans:
            by_partition.setdefault(partition_of(plan.schedule_id, count), []).append(plan)
        fired: list[Fired] = []
        for partition, group in sorted(by_partition.items()):
            try:
                fired += self.store.fire_schedules(
                    self.namespace, group, (partition_lease(partition), self.id)
                )
            except LeaseLost:
                log.warning("scheduler %s: partition %d was lost while firing", self.id,
                            partition)
                self._tenure.lose(partition)
                self._drop(frozenset({partition}))
                self._next_elect = self.store.now()
        return fired

    # -- maintenance ------------------------------------------------------------------------

    def _maintain(self, now: float) -> None:
        store, ns = self.store, self.namespace
        try:
            self._promote()
            rescue = store.rescue_expired_leases(ns)
            self.stats["rescued"] += len(rescue.requeued) + len(rescue.failed)
            self.stats["expired"] += store.expire_missed_deadlines(ns)
            store.release_waiting(ns)
            if now >= self._next_prune:
                self.stats["pruned"] += store.prune_finished(ns, now - self.settings.retention)
                self._next_prune = now + self.settings.prune_every
        except Exception:
            log.exception("scheduler maintenance failed; trying again")
        self._next_maintenance = now + self.settings.maintenance

    def _promote(self) -> None:
        promoted, next_due = self.store.promote_due_jobs(self.namespace)
        self.stats["promoted"] += promoted
        if next_due is not None:
            self._arm_promotion(next_due)

    def _arm_promotion(self, when: float) -> None:
        """One wheel timer for the earliest delayed job (within the horizon)."""
        if when > self._wheel.now + self.settings.horizon:
            return
        current = self._promote_timer
        if current is not None and current.active:
            if current.when <= when:
                return
            self._wheel.cancel(current)
        self._promote_timer = self._wheel.insert(when, _PROMOTE)

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"id": self.id, "leader": self.leader, "partitions": sorted(self.partitions),
                "partition_count": s.partitions, "lease_ttl": s.lease_ttl,
                "renew": s.renew, "standby_poll": s.standby_poll, "horizon": s.horizon,
                "tick": s.tick, "timers": len(self._wheel)}


_STAT = {
    FireResult.CREATED: "fired",
    FireResult.WAITING: "fired",
    FireResult.OVERLAP_SKIPPED: "overlap_skipped",
    FireResult.DUPLICATE: "duplicates",
    FireResult.STALE: "stale",
}
