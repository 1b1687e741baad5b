"""The maintenance lease and the duties its holder runs.

One lease, ``maintenance``, per namespace. Every scheduler and every worker runs a
`Maintenance` and competes for it; the one holding it runs the duties (promote, rescue,
expire, release, prune), the others look again now and then and take over when the
holder's lease lapses (judged by the store's clock). So exactly one process maintains
at a time, and a deployment of workers only, with no scheduler, still rescues the jobs
of a worker that died.

One duty runs in the standbys too: the rescue of expired leases. When the process that
dies holds the maintenance lease as well as jobs, waiting for the maintenance lease to
lapse before rescuing would add a second wait to the jobs' own, up to a whole lease
TTL. The rescue needs no lease: it moves only jobs whose lease expired (store clock),
each in one statement that a concurrent rescue cannot repeat (the second finds the job
no longer running), so several processes rescuing at once rescue each job once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.events import Event, EventKind
from taskwheel.maintenance.admitter import Admitter
from taskwheel.maintenance.alerter import Alerter
from taskwheel.maintenance.duty import Duty
from taskwheel.maintenance.expirer import Expirer
from taskwheel.maintenance.promoter import Promoter
from taskwheel.maintenance.pruner import Pruner
from taskwheel.maintenance.releaser import Releaser
from taskwheel.maintenance.reopener import Reopener
from taskwheel.maintenance.rescuer import Rescuer
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.maintenance")

LEASE = "maintenance"


@dataclass(frozen=True)
class MaintenanceSettings:
    """How often each duty runs (seconds) and how long finished jobs are kept.

    ``promote_every``: a look for due delayed jobs besides the one at the instant the
    next is due. ``rescue_every``, ``expire_every``, ``release_every``: the other
    frequent duties. ``prune_every``: the pruner's (slower) interval; ``retention``:
    finished jobs older than this are deleted (dead jobs are kept until purged).
    ``rescue_grace``: after the store was out of reach, how long it must be back before
    expired leases are rescued again, at least (twice the slowest heartbeat of the
    registered workers if that is longer): live workers renew theirs first.
    Validated on construction; `build` also accepts durations such as ``"30s"``.
    """

    promote_every: float = 1.0
    rescue_every: float = 1.0
    expire_every: float = 1.0
    release_every: float = 1.0
    prune_every: float = 60.0
    retention: float = 7 * 86_400.0
    alert_every: float = 15.0  # how often alert rules are judged and deliveries sent
    rescue_grace: float = 5.0

    def __post_init__(self) -> None:
        for name in ("promote_every", "rescue_every", "expire_every", "release_every",
                     "prune_every", "retention", "alert_every"):
            object.__setattr__(
                self, name, parse_duration(getattr(self, name), name, allow_zero=False)
            )
        object.__setattr__(self, "rescue_grace",
                           parse_duration(self.rescue_grace, "rescue_grace"))

    @classmethod
    def build(
        cls,
        *,
        every: DurationLike = "1s",
        promote_every: DurationLike | None = None,
        rescue_every: DurationLike | None = None,
        expire_every: DurationLike | None = None,
        release_every: DurationLike | None = None,
        prune_every: DurationLike = "60s",
        retention: DurationLike = "7d",
        alert_every: DurationLike = "15s",
        rescue_grace: DurationLike = "5s",
    ) -> MaintenanceSettings:
        """Settings from durations; ``every`` is the interval of each frequent duty not
        given its own. Every error names its option.

        Example:
            >>> MaintenanceSettings.build(every="5s", retention="1d").rescue_every
            5.0
        """
        base = parse_duration(every, "every", allow_zero=False)
        return cls(
            promote_every=base if promote_every is None else _positive(promote_every,
                                                                       "promote_every"),
            rescue_every=base if rescue_every is None else _positive(rescue_every,
                                                                     "rescue_every"),
            expire_every=base if expire_every is None else _positive(expire_every,
                                                                     "expire_every"),
            release_every=base if release_every is None else _positive(release_every,
                                                                       "release_every"),
            prune_every=_positive(prune_every, "prune_every"),
            retention=_positive(retention, "retention"),
            alert_every=_positive(alert_every, "alert_every"),
            rescue_grace=parse_duration(rescue_grace, "rescue_grace"),
        )


def _positive(value: DurationLike, name: str) -> float:
    return parse_duration(value, name, allow_zero=False)


class Maintenance:
    """The duties, run while ``holder`` holds the maintenance lease.

    `step` renews the lease when due (or, standing by, looks whether it is free: a read,
    not a write), runs every duty that is due (standing by, the rescue alone), and
    returns when to call it next (store clock): the owner sleeps until then. A
    scheduler calls it from its own `step`; a worker from a thread of its own. The
    lease lasts ``lease_ttl`` and is renewed every ``renew``; a process standing by
    looks every ``standby_poll``.

    Example:
        >>> maintenance = Maintenance(store, "default", "host:42:ab12", MaintenanceSettings(),
        ...                           lease_ttl=15, renew=5, standby_poll=5)
        >>> next_step = maintenance.step(store.now())
    """

    def __init__(
        self,
        store: Store,
        namespace: str,
        holder: str,
        settings: MaintenanceSettings | None = None,
        *,
        lease_ttl: float,
        renew: float,
        standby_poll: float,
    ) -> None:
        if not 0 < renew < lease_ttl:
            raise InvalidInput("renew", f"must be shorter than the lease ({renew}s >= "
                               f"{lease_ttl}s)")
        s = settings or MaintenanceSettings()
        self.store = store
        self.namespace = namespace
        self.holder = holder
        self.settings = s
        self.lease_ttl = lease_ttl
        self.renew = renew
        self.standby_poll = standby_poll
        self.promoter = Promoter(store, namespace, s.promote_every, source=holder)
        self.rescuer = Rescuer(store, namespace, s.rescue_every, source=holder,
                               grace=s.rescue_grace)
        self.duties: tuple[Duty, ...] = (
            self.promoter,
            self.rescuer,
            Expirer(store, namespace, s.expire_every, source=holder),
            Releaser(store, namespace, s.release_every, source=holder),
            Pruner(store, namespace, s.prune_every, retention=s.retention, source=holder),
            Alerter(store, namespace, s.alert_every, source=holder),
            Reopener(store, namespace, s.release_every, source=holder),
            Admitter(store, namespace, s.promote_every, source=holder),
        )
        self.holding = False
        self.resigned = False
        self._next_lease = 0.0  # when to renew (holding) or look again (standing by)

    @property
    def running(self) -> tuple[Duty, ...]:
        """The duties this process runs now: all of them while it holds the lease, the
        rescue alone while it stands by (none once it resigned)."""
        if self.holding:
            return self.duties
        return () if self.resigned else (self.rescuer,)

    @property
    def next_step(self) -> float:
        """When `step` has something to do (store clock). Asked twice per scheduler
        step: a plain loop of comparisons (a call of min() each costs four times more, a
        min() of a list three times)."""
        at = self._next_lease
        for duty in self.running:
            if duty.next_at < at:  # noqa: PLR1730 (a call of min() costs more)
                at = duty.next_at
        return at

    @property
    def stats(self) -> dict[str, int]:
        """What the duties did in this process (the rescue also while standing by):
        jobs promoted, rescued, expired, released and pruned."""
        return {duty.counts: duty.done for duty in self.duties}

    def step(self, now: float) -> float:
        """Keep the lease, run the duties that are due; return when to step next.
        A store error while keeping the lease propagates (the owner backs off); a duty
        that fails is logged and tried again after its interval."""
        if now >= self._next_lease:
            self._keep_lease(now)
        for duty in self.running:
            if now >= duty.next_at:
                duty.step(now)
        return self.next_step

    def _keep_lease(self, now: float) -> None:
        if not self.holding:
            current = self.store.lease_holder(self.namespace, LEASE)
            if current is not None and current != self.holder:
                self._next_lease = now + self.standby_poll
                return
        held = self.store.elect(self.namespace, LEASE, self.holder, self.lease_ttl)
        self._next_lease = now + (self.renew if held else self.standby_poll)
        if held and not self.holding:
            log.info("%s holds the maintenance lease: maintaining %s", self.holder,
                     self.namespace)
            for duty in self.duties:
                duty.next_at = now  # a new term starts with a pass of every duty
            self._announce(EventKind.LEASE_WON, now)
        elif self.holding and not held:
            log.warning("%s lost the maintenance lease", self.holder)
            self._announce(EventKind.LEASE_LOST, now, "taken")
        self.holding = held

    def forget(self) -> None:
        """Hold nothing, without telling the store (which may be unreachable); the lease
        lapses by itself or is kept by the next `step`. The rescue waits its grace once
        the store is back."""
        self.rescuer.out_of_reach()
        if self.holding:
            self._announce(EventKind.LEASE_LOST, self.store.now(), "unreachable")
        self.holding = False
        self._next_lease = 0.0

    def resign(self) -> None:
        """Give the lease back so another process takes over at once, and stand aside
        (a later `step` does not take it again): for an owner that is stopping."""
        was_holding = self.holding
        self.holding = False
        self.resigned = True
        self._next_lease = math.inf
        self.store.resign(self.namespace, LEASE, self.holder)
        if was_holding:
            self._announce(EventKind.LEASE_LOST, self.store.now(), "resigned")

    def _announce(self, kind: EventKind, now: float, reason: str | None = None) -> None:
        events = self.store.events
        if events.wants(kind):
            metadata = {"lease": LEASE} if reason is None else {"lease": LEASE, "reason": reason}
            events.emit(Event(kind, self.namespace, now, metadata=metadata, source=self.holder))
