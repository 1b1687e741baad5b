"""The dispatch-control benchmark: what fair shares cost the drain, how fair they are,
and how long aging lets a low priority wait behind a flood.

Every drain runs in the same database as the plain one it is compared with, each in a
namespace of its own, with idle ``taskwheel worker`` processes started for it: the
plain drain (no fairness, no aging: today's order), then the same number of jobs
spread over fairness keys of weights 1:2:4 (`DispatchBenchSettings.weights`).
Then the limited drain: the same number of jobs spread evenly over ``limited_keys``
keys of ``key_limit`` slot(s) each (`taskwheel.limits`), so most of them wait blocked
and each finished job admits the next of its key. The rate-limited drain spreads them
over ``rate_keys`` keys, each with a rate limit (`taskwheel.bench.app.rated_noop`: 1,000
starts a second per key, a burst of 100) high enough not to bound the drain: what it
measures is the cost of waiting for admission and of the admission passes the
maintenance lease holder (one of the workers) runs. The reserved drain gives half the
jobs priority 9 and half 0, in a queue that keeps 10 % of its claims for the jobs
below 5 (`fairness.QueueReserve`): its claims run in steps, the reserve's share first.

Fairness: the fair drain's jobs are all ready before the workers claim (saturation);
the claims taken while every key still had jobs waiting (the first half, in claim
order) give each key's share, divided by its weight; Jain's index of those is 1 when
they are equal.

Starvation: a simulated clock (`ManualClock`) drives the store; each second workers
claim ``claims_per_second`` jobs, a flood of priority 9 adds as many and keeps
``flood_backlog`` waiting, and a priority-0 job arrives every ``trickle_every``
seconds, in a queue aging at ``aging_rate`` levels a second. The waits are seconds of
that clock, compared with the bound the configuration gives.

Example:
    >>> result = run_dispatch_benchmark(DispatchBenchSettings.build(jobs=2_000))
    >>> result.jain_index > 0.9
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from taskwheel.bench.app import QUEUE, app, keyed_noop, noop, rated_noop
from taskwheel.bench.core import Cpu, CpuMeter
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.namespace_claims import measure_namespace_claims
from taskwheel.bench.processes import WorkerFleet
from taskwheel.bench.report import Percentiles, Progress, epoch, machine, store_facts
from taskwheel.bench.settings import BenchStore, FleetSettings, _count, _positive
from taskwheel.clock import ManualClock
from taskwheel.fairness import FairWeight, QueueAging, QueueReserve
from taskwheel.jobs import Job, NewJob
from taskwheel.stores import Store, open_store
from taskwheel.tasks import Task

TOP, BOTTOM = 9, 0  # the flood's priority and the trickle's
# The reserved drain's queue keeps 10 % of its claims for its jobs below priority 5.
RESERVE = QueueReserve("bench", QUEUE, 0.1, below=5)


@dataclass(frozen=True)
class DispatchBenchSettings:
    """``jobs`` per drain; ``workers`` processes with ``concurrency`` each; ``timeout``
    seconds per drain at most; ``weights`` of the fairness keys; the starvation case's
    ``aging_rate`` (levels per second), ``seconds`` of simulated time,
    ``claims_per_second``, ``flood_backlog`` and ``trickle_every``; the limited drain's
    ``limited_keys`` of ``key_limit`` slots each."""

    jobs: int = 20_000
    workers: int = 2
    concurrency: int = 100
    timeout: float = 300.0
    weights: tuple[float, ...] = (1.0, 2.0, 4.0)
    aging_rate: float = 0.1
    seconds: int = 600
    claims_per_second: int = 10
    flood_backlog: int = 100
    trickle_every: int = 5
    rate_keys: int = 100
    limited_keys: int = 1_000
    key_limit: int = 1
    fair_first: bool = False  # the fair drain before the plain one (alternate runs)

    @classmethod
    def build(cls, *, jobs: int = 20_000, workers: int = 2, concurrency: int = 100,
              timeout: float = 300.0, fair_first: bool = False) -> DispatchBenchSettings:
        """Validated settings.

        Example:
            >>> DispatchBenchSettings.build(jobs=1_000).weights
            (1.0, 2.0, 4.0)
        """
        return cls(jobs=_count("jobs", jobs, 70), workers=_count("workers", workers, 1),
                   concurrency=_count("concurrency", concurrency, 1),
                   timeout=_positive("timeout", timeout), fair_first=fair_first)

    @property
    def fleet(self) -> FleetSettings:
        return FleetSettings(workers=self.workers, concurrency=self.concurrency)

    @property
    def wait_bound(self) -> float:
        """The longest a trickle job may wait: flood jobs due up to (9 - 0 + 1) / rate
        after it come first, then the backlog ahead of it drains, then one claim."""
        return ((TOP - BOTTOM + 1) / self.aging_rate
                + self.flood_backlog / self.claims_per_second + 1)


@dataclass(frozen=True)
class DrainFigure:
    """One drain: ``jobs`` from the first claim to the last finish (job rows)."""

    jobs: int
    seconds: float
    enqueue_seconds: float  # the enqueue_many call that made them ready
    claims: int  # claim statements that took jobs (distinct worker and started_at)
    cpu: Cpu  # the workers' (and PostgreSQL's) from the enqueue's commit to the last end

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "seconds": round(self.seconds, 4),
                "per_s": round(self.per_s, 1),
                "enqueue_per_s": round(self.jobs / self.enqueue_seconds, 1),
                "claims": self.claims, "cpu_us_per_job": self.cpu.per_job_us(self.jobs)}


@dataclass(frozen=True)
class KeyShare:
    key: str
    weight: float
    claims: int


@dataclass(frozen=True)
class DispatchBenchResult:
    drains: dict[str, DrainFigure]  # "plain" first; the others compared with it
    shares: list[KeyShare]
    trickle_wait_s: Percentiles | None  # None: no trickle job was claimed
    trickle_jobs: int
    unaged_trickle_claimed: int  # the same case without aging: 0 means it starves
    settings: dict[str, Any]
    namespace_shares: dict[str, Any] | None = None  # `bench.namespace_claims`

    @property
    def jain_index(self) -> float:
        """Jain's index of the keys' claims divided by their weights."""
        normalised = [share.claims / share.weight for share in self.shares]
        total = sum(normalised)
        squares = sum(x * x for x in normalised)
        return total * total / (len(normalised) * squares) if squares else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench dispatch --format json`` prints."""
        plain = self.drains["plain"]
        return {
            "drain": {name: figure.to_dict() for name, figure in self.drains.items()},
            "ratio_to_plain": {name: round(figure.per_s / plain.per_s, 4)
                               for name, figure in self.drains.items() if name != "plain"},
            "workers_cpu_ratio_to_plain": {
                name: round(figure.cpu.client / plain.cpu.client, 4)
                for name, figure in self.drains.items()
                if name != "plain" and plain.cpu.client > 0},
            "fairness": {
                "jain_index": round(self.jain_index, 4),
                "keys": [{"key": s.key, "weight": s.weight, "claims": s.claims,
                          "claims_per_weight": round(s.claims / s.weight, 2)}
                         for s in self.shares],
            },
            "starvation": {
                "trickle_jobs": self.trickle_jobs,
                "trickle_wait_s": (None if self.trickle_wait_s is None
                                   else self.trickle_wait_s.to_dict()),
                "bound_s": self.settings["starvation"]["bound_s"],
                "claimed_without_aging": self.unaged_trickle_claimed,
            },
            "namespace_shares": self.namespace_shares,
            "settings": self.settings,
        }


METHODS = {
    "drain": "jobs / (last finished_at - first started_at) from the job rows; idle worker "
             "processes started for each drain, the jobs made ready by one enqueue_many "
             "call; plain: no fairness key, no aging; fair: the same jobs spread evenly "
             "over keys of weights 1:2:4, in a namespace with those weights; limited: "
             "the same jobs spread evenly over 1,000 keys with a concurrency limit of 1 "
             "each (most wait blocked; each finished job admits the next of its key); "
             "rate_limited: the same jobs spread evenly over rate_keys keys with a rate "
             "limit each (1,000/s, burst 100: not a bound on the drain), admitted by the "
             "maintenance lease holder among the workers (every promote_every, 1 s, and "
             "every 0.1 s while it admits); the wait for the first admission is before "
             "the first start, so outside the timed span; reserved: half the jobs of "
             "priority 9 and half 0 in a queue that keeps 10 % of its claims for those "
             "below 5 (its claims run in steps, the reserve's share first)",
    "ratio_to_plain": "a drain's rate / the plain drain's rate, in the same run",
    "cpu_us_per_job": "CPU (user + system) per job from the enqueue's commit to the last "
                      "job seen finished: client, the worker processes and their children; "
                      "server, PostgreSQL's processes on this host (all of its clients)",
    "workers_cpu_ratio_to_plain": "the workers' CPU for a drain / for the plain drain: "
                                  "steadier than the rates on a shared machine",
    "enqueue_per_s": "jobs / the wall time of the enqueue_many call",
    "jain_index": "(sum x)^2 / (n * sum x^2), x = a key's claims / its weight, over the "
                  "first half of the fair drain's jobs by started_at (every key still had "
                  "jobs waiting)",
    "starvation": "a simulated clock: each second claims of claims_per_second jobs, as many "
                  "new priority-9 jobs (flood_backlog kept waiting), a priority-0 job every "
                  "trickle_every seconds; the queue ages at aging_rate levels/s; waits of "
                  "the priority-0 jobs claimed, in seconds of that clock (nearest rank)",
    "namespace_shares": "in the benchmark's process, no workers: --jobs ready jobs in each "
                        "of four namespaces; claims of 100 jobs (fewer for small --jobs) "
                        "over two namespaces with weights 1:3 (the stride claim) and over "
                        "two without weights (the merged claim), one pair then the other, "
                        "20 claims each a round, 5 rounds; rates = jobs claimed / wall "
                        "seconds of the claims, CPU of this process per job; ratios per "
                        "round, median [min-max] over the rounds",
}


def run_dispatch_benchmark(
    settings: DispatchBenchSettings, progress: Progress | None = None,
    postgres_url: str | None = None,
) -> DispatchBenchResult:
    """The plain drain, the fair drain and the starvation case, on one fresh database
    (a SQLite file, or a schema of ``postgres_url``'s server)."""
    say = progress or (lambda _line: None)
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_workdir())
        url, prefix, throwaway = fresh_database(workdir, "dispatch", postgres_url)
        store = open_app(stack, url, f"{prefix}-plain", throwaway)
        drains: dict[str, DrainFigure] = {}
        keys = [f"key-{weight:g}" for weight in settings.weights]
        jobs: list[Job] = []
        for drain in (("fair", "plain") if settings.fair_first else ("plain", "fair")):
            if drain == "plain":
                say(f"plain drain: {settings.jobs} no-op jobs, {settings.workers} workers")
                app.configure(namespace=f"{prefix}-plain")
                drains["plain"], _ = _drain(
                    stack, settings, store, url=url, namespace=f"{prefix}-plain",
                    requests=[noop.prepare() for _ in range(settings.jobs)])
            else:
                drains["fair"], jobs = _fair_drain(stack, settings, store, url=url,
                                                   namespace=f"{prefix}-fair", keys=keys,
                                                   say=say)
        drains = {"plain": drains["plain"], **drains}
        shares = _shares(jobs, keys, settings.weights)
        drains["limited"] = _limited_drain(stack, settings, store, url=url,
                                           namespace=f"{prefix}-limited", say=say)
        drains["rate_limited"] = _rate_limited_drain(stack, settings, store, url=url,
                                                     namespace=f"{prefix}-rated", say=say)
        drains["reserved"] = _reserved_drain(stack, settings, store, url=url,
                                             namespace=f"{prefix}-reserved", say=say)
        say(f"starvation: {settings.seconds} simulated seconds, with and without aging")
        waits, trickled = _starvation(url, f"{prefix}-aged", settings, aging=True)
        unaged, _ = _starvation(url, f"{prefix}-unaged", settings, aging=False)
        say("claims over two namespaces, weighted 1:3 and without weights")
        namespace_shares = measure_namespace_claims(
            url, f"{prefix}-ns", jobs=settings.jobs, batch=max(1, min(100, settings.jobs // 80)))
        return DispatchBenchResult(
            drains=drains, shares=shares,
            trickle_wait_s=Percentiles.of(waits) if waits else None,
            trickle_jobs=trickled, unaged_trickle_claimed=len(unaged),
            namespace_shares=namespace_shares,
            settings={
                "machine": machine(),
                "store": store_facts(store, database_url=_shown(url), namespace=prefix,
                                     schema_dropped=throwaway),
                "workers": settings.workers, "concurrency": settings.concurrency,
                "claim_batch_size": settings.fleet.claim_batch, "jobs": settings.jobs,
                "first_drain": "fair" if settings.fair_first else "plain",
                "weights": list(settings.weights),
                "limited_keys": settings.limited_keys, "key_limit": settings.key_limit,
                "rate_limited": {"keys": settings.rate_keys, "rate_per_key_s": 1000.0,
                                 "burst": 100},
                "reserved": {"share": RESERVE.share, "below": RESERVE.below,
                             "priorities": [TOP, BOTTOM]},
                "starvation": {"aging_rate": settings.aging_rate,
                               "seconds": settings.seconds,
                               "claims_per_second": settings.claims_per_second,
                               "flood_backlog": settings.flood_backlog,
                               "trickle_every": settings.trickle_every,
                               "bound_s": settings.wait_bound},
                "methods": METHODS,
            })
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, requests: list[NewJob],
) -> tuple[DrainFigure, list[Job]]:
    workdir = stack.enter_context(temporary_workdir())
    meter = CpuMeter(BenchStore.SQLITE if url.startswith("sqlite") else BenchStore.POSTGRES)
    with WorkerFleet(settings.fleet, url=url, namespace=namespace, logs=workdir) as fleet:
        fleet.wait_registered(store)
        started = time.perf_counter()
        handles = app.enqueue_many(requests)
        enqueue_seconds = time.perf_counter() - started
        with meter.trees(fleet.pids) as cpu:
            jobs = fleet.wait_finished(store, [h.id for h in handles], settings.timeout)
    first = min(epoch(job.started_at) for job in jobs)
    last = max(epoch(job.finished_at) for job in jobs)
    claims = len({(job.worker_id, job.started_at) for job in jobs})
    return DrainFigure(len(jobs), last - first, enqueue_seconds, claims, cpu[0]), jobs


def _limited_drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, say: Progress,
) -> DrainFigure:
    """The drain of ``jobs`` no-op jobs over ``limited_keys`` keys of ``key_limit``
    slots each, in a namespace of its own."""
    say(f"limited drain: {settings.jobs} jobs over {settings.limited_keys} keys of "
        f"{settings.key_limit} slot(s)")
    if settings.key_limit != 1:  # keyed_noop declares 1: its enqueue makes those keys
        for key in range(settings.limited_keys):
            store.set_limit(namespace, f"bench:{key}", settings.key_limit)
    return _keyed_drain(stack, settings, store, url=url, namespace=namespace,
                        task=keyed_noop, keys=settings.limited_keys)


def _rate_limited_drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, say: Progress,
) -> DrainFigure:
    """The drain of ``jobs`` rate-limited no-ops spread over ``rate_keys`` keys."""
    say(f"rate-limited drain: {settings.jobs} jobs over {settings.rate_keys} keys "
        "with a rate limit each")
    return _keyed_drain(stack, settings, store, url=url, namespace=namespace,
                        task=rated_noop, keys=settings.rate_keys)


def _reserved_drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, say: Progress,
) -> DrainFigure:
    """The drain of ``jobs`` no-ops, half of priority `TOP` and half `BOTTOM`, in a
    queue that keeps `RESERVE`'s share of its claims for the jobs below its priority."""
    say(f"reserved drain: {settings.jobs} jobs, {RESERVE.share:.0%} of the claims kept "
        f"for those below priority {RESERVE.below}")
    store.set_queue_reserve(dataclasses.replace(RESERVE, namespace=namespace))
    app.configure(namespace=namespace)
    requests = [noop.prepare(priority=TOP if n % 2 else BOTTOM) for n in range(settings.jobs)]
    figure, _ = _drain(stack, settings, store, url=url, namespace=namespace,
                       requests=requests)
    return figure


def _keyed_drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, task: Task[[int], Any], keys: int,
) -> DrainFigure:
    """The drain of ``jobs`` jobs of ``task`` spread evenly over ``keys`` keys (the
    task's one argument names its key)."""
    app.configure(namespace=namespace)
    requests = [task.prepare(n % keys) for n in range(settings.jobs)]
    figure, _ = _drain(stack, settings, store, url=url, namespace=namespace,
                       requests=requests)
    return figure


def _fair_drain(
    stack: contextlib.ExitStack, settings: DispatchBenchSettings, store: Store, *, url: str,
    namespace: str, keys: list[str], say: Progress,
) -> tuple[DrainFigure, list[Job]]:
    """The drain of the same number of jobs spread evenly over keys of
    ``settings.weights``, in a namespace with those weights."""
    for key, weight in zip(keys, settings.weights, strict=True):
        store.set_fair_weight(FairWeight(namespace, key, weight))
    say(f"fair drain: {settings.jobs} jobs over keys of weights "
        f"{':'.join(f'{w:g}' for w in settings.weights)}")
    app.configure(namespace=namespace)
    requests = [noop.prepare(fairness_key=keys[n % len(keys)]) for n in range(settings.jobs)]
    return _drain(stack, settings, store, url=url, namespace=namespace, requests=requests)


def _shares(jobs: list[Job], keys: list[str], weights: tuple[float, ...]) -> list[KeyShare]:
    ordered = sorted(jobs, key=lambda job: (epoch(job.started_at), job.fair_pass, job.id))
    first_half = ordered[:len(ordered) // 2]
    return [KeyShare(key, weight, sum(1 for job in first_half if job.fairness_key == key))
            for key, weight in zip(keys, weights, strict=True)]


def _starvation(
    url: str, namespace: str, settings: DispatchBenchSettings, *, aging: bool
) -> tuple[list[float], int]:
    """The waits of the trickle jobs claimed, and how many arrived."""
    clock = ManualClock(time.time())
    store = open_store(url, clock=clock)
    try:
        if aging:
            store.set_queue_aging(QueueAging(namespace, QUEUE, settings.aging_rate))
        app.configure(namespace=namespace)
        store.enqueue([noop.prepare(priority=TOP) for _ in range(settings.flood_backlog)])
        arrived: dict[int, float] = {}
        waits = []
        for second in range(settings.seconds):
            requests = [noop.prepare(priority=TOP) for _ in range(settings.claims_per_second)]
            if second % settings.trickle_every == 0:
                requests.append(noop.prepare(priority=BOTTOM))
            for job in store.enqueue(requests):
                if job.priority == BOTTOM:
                    arrived[job.id] = clock.now()
            claimed = store.claim_jobs(namespace, "bench", [QUEUE],
                                       settings.claims_per_second, 60.0).jobs
            waits += [clock.now() - arrived[job.id] for job in claimed if job.id in arrived]
            clock.advance(1)
        return waits, len(arrived)
    finally:
        store.close()


def _shown(url: str) -> str:
    if url.startswith("sqlite"):
        return "temporary file (deleted)"
    return url.rsplit("@", maxsplit=1)[-1]  # no password
