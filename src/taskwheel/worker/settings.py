"""How a worker behaves: `WorkerSettings`, validated however it is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.maintenance import MaintenanceSettings
from taskwheel.tasks import Pool
from taskwheel.validators import validate_name, validate_namespaces


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker behaves. Durations accept ``"30s"`` and the like (in `build`).

    ``lease_ttl``: how long a claim holds a job without a heartbeat; a worker that
    vanishes loses its jobs this long after its last heartbeat (4 s by default: with
    rescue looking every second, a dead machine's jobs run again within about 5 s).
    ``heartbeat``: how often leases are extended (None: a quarter of the TTL, so a
    lease survives three lost heartbeats; one UPDATE of the worker's running rows per
    beat). ``grace``: how long a
    stopping worker lets running jobs finish before giving their leases back.
    ``cancel_grace``: how long a cancelled process or coroutine has to stop by itself
    before it is killed. ``burst``: exit once its queues are drained (nothing ready or
    running, nothing due within `BURST_HORIZON`).
    ``maintenance``: the duties this worker runs while it holds the maintenance lease
    (it holds that lease for ``lease_ttl``, renewed at each ``heartbeat``).
    ``namespaces``: the namespaces whose jobs it runs; empty for its app's own, and
    ``("*",)`` (`ALL_NAMESPACES`) for every namespace (an operator's fleet).

    Validated on construction, like `build`: a bad value raises `InvalidInput` naming
    its field.
    """

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 8
    pool: Pool = Pool.ASYNC
    lease_ttl: float = 4.0
    heartbeat: float | None = None
    poll_interval: float = 1.0
    grace: float = 30.0
    cancel_grace: float = 5.0
    batch_size: int = 100
    burst: bool = False
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespaces", validate_namespaces(self.namespaces))
        queues = self.queues
        if isinstance(queues, str) or not queues:
            raise InvalidInput("queues", f"serve at least one queue (a sequence of names), "
                               f"got {queues!r}")
        object.__setattr__(self, "queues", tuple(validate_name(q, "queue") for q in queues))
        for option in ("concurrency", "batch_size"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(option, f"must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "pool", _pool(self.pool))
        ttl = parse_duration(self.lease_ttl, "lease_ttl", allow_zero=False)
        object.__setattr__(self, "lease_ttl", ttl)
        if self.heartbeat is not None:
            beat = parse_duration(self.heartbeat, "heartbeat", allow_zero=False)
            if beat >= ttl:
                raise InvalidInput(
                    "heartbeat", f"must be shorter than the lease ({beat}s >= {ttl}s)"
                )
            object.__setattr__(self, "heartbeat", beat)
        for name, allow_zero in (("poll_interval", False), ("grace", True),
                                 ("cancel_grace", True)):
            object.__setattr__(
                self, name, parse_duration(getattr(self, name), name, allow_zero=allow_zero)
            )
        if not isinstance(self.burst, bool):
            raise InvalidInput("burst", f"must be True or False, got {self.burst!r}")
        if not isinstance(self.maintenance, MaintenanceSettings):
            raise InvalidInput("maintenance", f"expected MaintenanceSettings, got "
                               f"{self.maintenance!r}")

    @classmethod
    def build(
        cls,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 8,
        pool: Pool | str = Pool.ASYNC,
        lease_ttl: DurationLike = "4s",
        heartbeat: DurationLike | None = None,
        poll_interval: DurationLike = "1s",
        grace: DurationLike = "30s",
        cancel_grace: DurationLike = "5s",
        batch_size: int = 100,
        burst: bool = False,
        maintenance: MaintenanceSettings | None = None,
        namespaces: Sequence[str] = (),
    ) -> WorkerSettings:
        """Settings from durations and names; every error names its option."""
        ttl = parse_duration(lease_ttl, "lease_ttl", allow_zero=False)
        return cls(
            # A lone string is refused by the constructor, not split into letters.
            queues=cast(tuple[str, ...], queues) if isinstance(queues, str) else tuple(queues),
            concurrency=concurrency,
            pool=_pool(pool),
            lease_ttl=ttl,
            heartbeat=ttl / 3 if heartbeat is None else parse_duration(
                heartbeat, "heartbeat", allow_zero=False),
            poll_interval=parse_duration(poll_interval, "poll_interval", allow_zero=False),
            grace=parse_duration(grace, "grace"),
            cancel_grace=parse_duration(cancel_grace, "cancel_grace"),
            batch_size=batch_size,
            burst=burst,
            maintenance=maintenance or MaintenanceSettings(),
            namespaces=cast(tuple[str, ...], namespaces) if isinstance(namespaces, str)
            else tuple(namespaces),
        )

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat if self.heartbeat is not None else self.lease_ttl / 4


def _pool(value: Pool | str) -> Pool:
    try:
        return Pool(value)
    except ValueError:
        raise InvalidInput(
            "pool", f"unknown pool {value!r} (use async, thread, process)"
        ) from None
