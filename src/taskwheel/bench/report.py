"""What every benchmark reports alike: percentiles of a sample, times read off job rows,
duplicated fires, and what a run was measured on (the machine and the store).

Example:
    >>> Percentiles.of([3.0, 1.0, 2.0, 10.0]).p50
    2.0
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from taskwheel.bench.app import BenchmarkError
from taskwheel.bench.settings import FleetSettings
from taskwheel.jobs import Job, JobFilter
from taskwheel.scheduler import SchedulerSettings
from taskwheel.stores import Store

Progress = Callable[[str], None]
"""Receives one line per phase of a benchmark."""

MICRO = 1_000_000


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of a sample, in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    count: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Percentiles:
        ordered = sorted(samples_ms)
        if not ordered:
            raise ValueError("no samples")

        def rank(p: float) -> float:
            return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

        return cls(
            p50=rank(50), p95=rank(95), p99=rank(99), max=ordered[-1],
            mean=sum(ordered) / len(ordered), count=len(ordered),
        )

    def to_dict(self) -> dict[str, Any]:
        """Every figure, the milliseconds rounded to the microsecond."""
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def epoch(moment: datetime | None) -> float:
    """A timestamp of a finished job's row, in seconds since the epoch."""
    if moment is None:
        raise BenchmarkError("a finished job has no start or finish time")
    return moment.timestamp()


def micros(moment: datetime | None) -> int:
    """The same in whole microseconds: exact, for comparing fire times."""
    return round(epoch(moment) * MICRO)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def all_jobs(store: Store, namespace: str) -> list[Job]:
    """Every job of a namespace (the run's own, so every job the run made)."""
    return store.list_jobs(namespace, JobFilter(limit=2**31))


def count_duplicates(jobs: Sequence[Job]) -> int:
    """(schedule, fire time) pairs that more than one job stands for."""
    pairs = Counter((job.schedule_id, micros(job.fire_at)) for job in jobs)
    return sum(1 for seen in pairs.values() if seen > 1)


def ratio(value: float, base: float) -> float | None:
    """``value / base`` to three decimals; None when ``base`` is 0 (a CPU time below
    the clock's tick, at tiny sizes).

    Example:
        >>> ratio(3.0, 4.0), ratio(1.0, 0.0)
        (0.75, None)
    """
    return round(value / base, 3) if base else None


def spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Median, min and max of the values that could be read (None if none could)."""
    known = [value for value in values if value is not None]
    if not known:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(known), 3), "min": min(known),
            "max": max(known)}


# -- what was measured on what ------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The CPUs (all, and those this process may use), the platform and Python."""
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable_cpus = os.cpu_count() or 0
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def store_facts(
    store: Store, *, database_url: str, namespace: str, schema_dropped: bool = False
) -> dict[str, Any]:
    """The database as the report shows it (``database_url`` without a password),
    the run's namespace (or namespace prefix) and the store's settings in force."""
    return {
        "database_url": database_url,
        "namespace_prefix": namespace,
        **({"schema_dropped_afterwards": True} if schema_dropped else {}),
        **store.describe(),
    }


def scheduler_run_facts(store: Store, namespace: str, workers: int) -> dict[str, Any]:
    """The machine, the store, the scheduler settings every scheduler process ran with
    and, when there were any, the worker processes."""
    where = ("a schema of its own (dropped)" if store.describe().get("kind") == "postgres"
             else "temporary file (deleted)")
    fleet = FleetSettings(workers=workers)
    return {
        "machine": machine(),
        "store": store_facts(store, database_url=where, namespace=namespace),
        "scheduler": asdict(SchedulerSettings.build()),
        **({"workers": workers, "worker_concurrency": fleet.concurrency,
            "worker_pool": fleet.pool.value} if workers else {}),
    }
