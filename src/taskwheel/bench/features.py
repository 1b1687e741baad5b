"""The features benchmark: what each optional feature on the hot path costs the drain,
as a ratio to the plain drain measured in the same run, on the same database.

Each feature is measured the way the core benchmark measures its drain: idle
``taskwheel worker`` processes (their first claims warmed up by a short drain first),
``jobs`` no-op jobs made ready all at once, the rate from the first claim's
``started_at`` to the last ``finished_at`` and the workers' CPU per job. Every feature
has a namespace and workers of its own; the features run one after the other, plain
first, and the whole round ``repeat`` times, each ratio taken inside its round.

Example:
    >>> result = run_features_benchmark(FeatureBenchSettings.build(jobs=500))
    >>> result.rounds[0][Feature.PLAIN].per_s > 0
    True
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from taskwheel.bench.app import APP_SPEC, QUEUE, app, noop
from taskwheel.bench.core import CpuMeter, DrainResult, drain_of
from taskwheel.bench.databases import open_app, run_database, temporary_workdir
from taskwheel.bench.processes import WorkerFleet
from taskwheel.bench.report import Progress, machine, ratio, spread, store_facts
from taskwheel.bench.settings import BenchStore, FleetSettings, check_store
from taskwheel.errors import InvalidInput
from taskwheel.jobs import JobFilter
from taskwheel.workflows import Workflow

WARM_UP_JOBS = 500
STEPS_PER_RUN = 100  # the workflow feature's runs: this many independent steps each


class Feature(StrEnum):
    PLAIN = "plain"
    WORKFLOWS = "workflows"
    METRICS = "metrics"
    TRACING = "tracing"
    PAUSES = "pauses"
    QUOTAS = "quotas"


# What each feature's drain has that the plain one has not.
FEATURE_METHODS = {
    Feature.PLAIN: "no-op jobs made ready by one enqueue_many transaction",
    Feature.WORKFLOWS: f"the jobs are the steps of workflow runs of {STEPS_PER_RUN} "
                       "independent no-op steps each (submitted while the queue is paused, "
                       "then the queue resumed: all ready at once); each step's end "
                       "updates its run",
    Feature.METRICS: "each worker with --metrics-port: the Prometheus metrics handler "
                     "attached to the event hook",
    Feature.TRACING: "the workers load the app instrumented by taskwheel.tracing.instrument "
                     "(a span per attempt; OpenTelemetry API only, no SDK installed: "
                     "non-recording spans, nothing exported)",
    Feature.PAUSES: "the namespace has a paused queue and a paused task (not the drain's): "
                    "while a gate is closed, each job written or made ready is checked "
                    "against the pauses",
    Feature.QUOTAS: "the namespace has quotas (max queued, max active schedules), "
                    "far above what the run reaches",
}


@dataclass(frozen=True)
class FeatureBenchSettings:
    """``jobs`` drained per feature; ``features`` measured besides the plain drain;
    ``repeat`` rounds; the workers as in the core benchmark."""

    store: BenchStore = BenchStore.SQLITE
    database_url: str | None = None
    jobs: int = 20_000
    features: tuple[Feature, ...] = tuple(f for f in Feature if f is not Feature.PLAIN)
    repeat: int = 1
    fleet: FleetSettings = field(default_factory=FleetSettings)
    timeout: float = 120.0

    @classmethod
    def build(
        cls, *, store: BenchStore | str | None = None, database_url: str | None = None,
        jobs: int = 20_000, features: Sequence[str] | None = None, repeat: int = 1,
        workers: int = 2, timeout: float = 120.0,
    ) -> FeatureBenchSettings:
        """Validated settings; ``features`` None: every one.

        Example:
            >>> FeatureBenchSettings.build(features=["metrics"]).features
            (<Feature.METRICS: 'metrics'>,)
        """
        kind, url = check_store(store, database_url)
        for name, value in (("jobs", jobs), ("repeat", repeat), ("workers", workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(name, f"must be an integer >= 1, got {value!r}")
        chosen: list[Feature] = []
        for name in features if features is not None else [f.value for f in cls.features]:
            try:
                feature = Feature(name)
            except ValueError:
                known = ", ".join(f.value for f in Feature if f is not Feature.PLAIN)
                raise InvalidInput("feature", f"unknown feature {name!r} (use {known})") \
                    from None
            if feature is not Feature.PLAIN and feature not in chosen:
                chosen.append(feature)
        if timeout <= 0:
            raise InvalidInput("timeout", f"must be a number > 0, got {timeout!r}")
        return cls(store=kind, database_url=url, jobs=jobs, features=tuple(chosen),
                   repeat=repeat, fleet=FleetSettings(workers=workers), timeout=timeout)


@dataclass(frozen=True)
class FeatureBenchResult:
    """Each round's drains by feature (plain included)."""

    rounds: list[dict[Feature, DrainResult]]
    settings: dict[str, Any] = field(default_factory=dict)

    def ratios(self, feature: Feature) -> dict[str, dict[str, float | None]]:
        """The feature's drain rate and CPU per job, each over the plain drain's of the
        same round: median, min and max over the rounds."""
        rates, cpus = [], []
        for drains in self.rounds:
            plain, this = drains[Feature.PLAIN], drains[feature]
            rates.append(ratio(this.per_s, plain.per_s))
            cpus.append(ratio(_cpu_per_job(this), _cpu_per_job(plain)))
        return {"rate": spread(rates), "cpu_per_job": spread(cpus)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench features --format json`` prints."""
        features = list(self.rounds[0])
        return {
            "features": {
                feature.value: {
                    "drain_per_s": [round(r[feature].per_s, 1) for r in self.rounds],
                    "cpu_us_per_job": [round(_cpu_per_job(r[feature]), 1) for r in self.rounds],
                    **({} if feature is Feature.PLAIN
                       else {"ratio_to_plain": self.ratios(feature)}),
                    "method": FEATURE_METHODS[feature],
                }
                for feature in features
            },
            "rounds": [{f.value: asdict(d) for f, d in drains.items()}
                       for drains in self.rounds],
            "settings": self.settings,
        }


def _cpu_per_job(drain: DrainResult) -> float:
    """The worker processes' CPU per job (µs), where the features' work is done."""
    return drain.cpu.per_job_us(drain.jobs)["client"]


def run_features_benchmark(
    settings: FeatureBenchSettings, progress: Progress | None = None
) -> FeatureBenchResult:
    """Every round: the plain drain, then each feature's; see ``bench/README.md``."""
    say = progress or (lambda _line: None)
    rounds: list[dict[Feature, DrainResult]] = []
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_workdir())
        token = uuid.uuid4().hex[:8]
        url, throwaway = run_database(
            settings.database_url, settings.store is BenchStore.POSTGRES, workdir, token)
        store = open_app(stack, url, f"bench-{token}-setup", throwaway)
        meter = CpuMeter(settings.store)
        for round_ in range(settings.repeat):
            drains: dict[Feature, DrainResult] = {}
            for feature in (Feature.PLAIN, *settings.features):
                namespace = f"bench-{token}-{round_}-{feature.value}"
                say(f"round {round_ + 1}: {feature.value}, {settings.jobs:,} jobs")
                drains[feature] = _measure(feature, settings, url=url, namespace=namespace,
                                           workdir=workdir, meter=meter)
            rounds.append(drains)
        described = {
            "machine": machine(),
            "store": store_facts(store, database_url="temporary file (deleted)"
                                 if settings.database_url is None else "as given",
                                 namespace=f"bench-{token}", schema_dropped=throwaway),
            "jobs": settings.jobs, "repeat": settings.repeat,
            **asdict(settings.fleet),
            "methods": {
                "drain": "idle workers warmed up by a drain of "
                         f"{WARM_UP_JOBS} jobs; the jobs made ready all at once; jobs / "
                         "(last finished_at - first started_at); CPU: the worker "
                         "processes' per job",
                "ratio_to_plain": "the feature's figure / the plain drain's of the same "
                                  "round; median [min-max] over the rounds",
                **{f.value: FEATURE_METHODS[f] for f in (Feature.PLAIN, *settings.features)},
            },
        }
    return FeatureBenchResult(rounds=rounds, settings=described)


def _measure(
    feature: Feature, settings: FeatureBenchSettings, *, url: str, namespace: str,
    workdir: Path, meter: CpuMeter,
) -> DrainResult:
    app.configure(namespace=namespace)
    store = app.store
    client = app.client
    if feature is Feature.PAUSES:
        client.pause_queue(f"{QUEUE}-paused")
        client.pause_task("bench.paused-task")
    if feature is Feature.QUOTAS:
        client.set_quota(max_queued=10 * settings.jobs + WARM_UP_JOBS,
                         max_active_schedules=1_000_000)
    logs = workdir / namespace
    logs.mkdir()
    fleet = WorkerFleet(
        settings.fleet, url=url, namespace=namespace, logs=logs,
        app_spec="taskwheel.bench.traced:app" if feature is Feature.TRACING else APP_SPEC,
        options=_metrics_port if feature is Feature.METRICS else None,
    )
    with fleet:
        fleet.wait_registered(store, settings.timeout)
        warm_up = app.enqueue_many(noop.prepare() for _ in range(WARM_UP_JOBS))
        fleet.wait_drained(store, [h.id for h in warm_up], settings.timeout)
        ids = _make_ready(feature, settings.jobs, namespace, after=warm_up[-1].id)
        return drain_of(fleet, store, ids, meter, settings.timeout)


def _make_ready(feature: Feature, jobs: int, namespace: str, *, after: int) -> list[int]:
    """``jobs`` no-op jobs, ready all at once: their ids."""
    if feature is not Feature.WORKFLOWS:
        return [h.id for h in app.enqueue_many(noop.prepare() for _ in range(jobs))]
    client = app.client
    client.pause_queue(QUEUE)
    left, run = jobs, 0
    while left:
        size = min(STEPS_PER_RUN, left)
        wf = Workflow(f"bench-features-{run}")
        for n in range(size):
            wf.step(noop, name=f"s{n:03d}")
        app.submit(wf)
        left, run = left - size, run + 1
    ids = [job.id for job in app.store.list_jobs(namespace, JobFilter(limit=2**31))
           if job.id > after]
    client.resume_queue(QUEUE)
    return ids


def _metrics_port(_worker: int) -> list[str]:
    """A free port for one worker's ``--metrics-port``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return ["--metrics-port", str(port)]
