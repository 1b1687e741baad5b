"""How a scheduler behaves: `SchedulerSettings`, validated however it is built."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.maintenance import MaintenanceSettings


@dataclass(frozen=True)
class SchedulerSettings:
    """How a scheduler behaves. Durations accept ``"30s"`` and the like (in `build`).

    ``lease_ttl``: how long a lease (a partition's, the maintenance lease) lasts without
    renewal; a standby takes over at most this long after the holder dies. ``renew``:
    how often the holder renews (`build`'s default: a third of the TTL). ``standby_poll``:
    how often a standby looks whether a lease is free. ``horizon``: how far ahead fire
    times are held in memory. ``tick``: the wheel's resolution. ``partitions``: how many
    shares the schedules are hashed into, to spread the firing over several schedulers
    (every scheduler of a namespace should use the same number). ``maintenance``: the
    duties' intervals and the retention of finished jobs, run while this scheduler holds
    the maintenance lease (see `taskwheel.maintenance`). ``all_namespaces``: fire and
    maintain every namespace (under one set of leases, shared with the other schedulers
    that serve every namespace) instead of the app's own. ``prune_undeclared``: pause
    the schedules the app declared once and declares no longer (found at start, see
    `Scheduler.sync_schedules`); without it they are only reported.

    Validated on construction, like `build`: a bad value raises `InvalidInput` naming
    its field.
    """

    lease_ttl: float = 1.5
    renew: float = 0.5
    standby_poll: float = 0.1
    horizon: float = 60.0
    tick: float = 0.001
    partitions: int = 16
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    all_namespaces: bool = False
    prune_undeclared: bool = False

    def __post_init__(self) -> None:
        for flag in ("all_namespaces", "prune_undeclared"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(flag, f"must be True or False, got {getattr(self, flag)!r}")
        for name in ("lease_ttl", "renew", "standby_poll", "horizon", "tick"):
            object.__setattr__(
                self, name, parse_duration(getattr(self, name), name, allow_zero=False)
            )
        if self.renew >= self.lease_ttl:
            raise InvalidInput(
                "renew", f"must be shorter than the lease ({self.renew}s >= {self.lease_ttl}s)"
            )
        if self.horizon < 10 * self.tick:
            raise InvalidInput("horizon", f"must be at least ten ticks ({10 * self.tick:g}s), "
                               f"got {self.horizon:g}s")
        partitions = self.partitions
        if isinstance(partitions, bool) or not isinstance(partitions, int) or not (
            1 <= partitions <= 4096
        ):
            raise InvalidInput(
                "partitions", f"must be an integer from 1 to 4096, got {partitions!r}"
            )
        if not isinstance(self.maintenance, MaintenanceSettings):
            raise InvalidInput("maintenance", f"expected MaintenanceSettings, got "
                               f"{self.maintenance!r}")

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
        all_namespaces: bool = False,
        prune_undeclared: bool = False,
    ) -> SchedulerSettings:
        """Settings from durations; every error names its option. ``maintenance`` is
        the interval of the frequent duties (promote, rescue, expire, release)."""
        ttl = parse_duration(lease_ttl, "lease_ttl", allow_zero=False)
        return cls(
            lease_ttl=ttl,
            renew=ttl / 3 if renew is None else parse_duration(renew, "renew", allow_zero=False),
            standby_poll=parse_duration(standby_poll, "standby_poll", allow_zero=False),
            horizon=parse_duration(horizon, "horizon", allow_zero=False),
            tick=parse_duration(tick, "tick", allow_zero=False),
            partitions=partitions,
            maintenance=MaintenanceSettings.build(
                every=parse_duration(maintenance, "maintenance", allow_zero=False),
                retention=retention, prune_every=prune_every,
            ),
            all_namespaces=all_namespaces,
            prune_undeclared=prune_undeclared,
        )
