"""The workflows benchmark: a chain and a fan-out/fan-in of N no-op steps run by idle
``taskwheel worker`` processes on SQLite; the total time of each run and the overhead
per step.

The overhead is what taskwheel adds: (the run's total time - the steps' own work on the
critical path) / steps. The total is read from the rows (the run's ``finished_at``,
stamped by the transaction that ends its last step, minus its ``created_at``); the work
is what each step's code measured of itself (a no-op: microseconds).

Example:
    >>> result = run_workflow_benchmark(WorkflowBenchSettings.build(steps=100))
    >>> result.chain.overhead_per_step_ms > 0
    True
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from taskwheel.bench.app import BenchmarkError, app, timed_step
from taskwheel.bench.databases import fresh_database, open_app, temporary_workdir
from taskwheel.bench.processes import WorkerFleet, polling
from taskwheel.bench.report import Percentiles, Progress, epoch, machine, store_facts
from taskwheel.bench.settings import WorkflowBenchSettings
from taskwheel.jobs import Job
from taskwheel.stores import Store
from taskwheel.workflows import RunStatus, Workflow, WorkflowRun, WorkflowRunFilter

WARM_UP_STEPS = 20


@dataclass(frozen=True)
class ShapeResult:
    """One run of one shape. ``handoff`` is, per dependency edge on the critical path,
    the time from the dependency's ``finished_at`` to the dependent's ``started_at``."""

    shape: str
    steps: int
    submit_ms: float  # the App.submit call: validation and one transaction
    total_s: float  # run.finished_at - run.created_at
    work_s: float  # the steps' own measured time along the critical path
    handoff_ms: Percentiles
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_per_step_ms(self) -> float:
        return (self.total_s - self.work_s) / self.steps * 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "total_s": round(self.total_s, 4),
            "work_s": round(self.work_s, 6),
            "overhead_per_step_ms": round(self.overhead_per_step_ms, 4),
            "submit_ms": round(self.submit_ms, 2),
            "handoff_ms": self.handoff_ms.to_dict(),
            **{key: round(value, 3) for key, value in self.extra.items()},
        }


@dataclass(frozen=True)
class WorkflowBenchResult:
    chain: ShapeResult
    fan: ShapeResult
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``taskwheel bench workflows --format json`` prints."""
        return {"chain": self.chain.to_dict(), "fan_out_fan_in": self.fan.to_dict(),
                "settings": self.settings}


def chain(steps: int) -> Workflow:
    """``steps`` steps, each after the one before."""
    wf = Workflow("bench-chain")
    previous: list[str] = []
    for n in range(steps):
        previous = [wf.step(timed_step, name=f"s{n:05d}", after=previous).name]
    return wf


def fan_out_fan_in(steps: int) -> Workflow:
    """One source, ``steps - 2`` steps after it in parallel, one sink after them all."""
    wf = Workflow("bench-fan")
    source = wf.step(timed_step, name="source")
    middle = [wf.step(timed_step, name=f"m{n:05d}", after=[source]) for n in range(steps - 2)]
    wf.step(timed_step, name="sink", after=middle)
    return wf


def run_workflow_benchmark(
    settings: WorkflowBenchSettings, progress: Progress | None = None
) -> WorkflowBenchResult:
    """Start the workers, warm them up with a short chain, then time one chain and one
    fan-out/fan-in of ``settings.steps`` steps, one after the other, on a fresh
    temporary SQLite file."""
    say = progress or (lambda _line: None)
    fleet_settings = settings.fleet
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(temporary_workdir())
        url, namespace, _ = fresh_database(workdir, "workflows", postgres_url=None)
        store = open_app(stack, url, namespace)
        say(f"starting {settings.workers} worker processes (c={settings.concurrency})")
        fleet = stack.enter_context(
            WorkerFleet(fleet_settings, url=url, namespace=namespace, logs=workdir)
        )
        fleet.wait_registered(store)
        say(f"warm-up: a chain of {WARM_UP_STEPS} steps")
        _run(fleet, store, chain(WARM_UP_STEPS), settings.timeout)
        say(f"chain: {settings.steps} steps")
        chained = _chain_result(*_run(fleet, store, chain(settings.steps), settings.timeout))
        say(f"fan-out/fan-in: {settings.steps} steps")
        fanned = _fan_result(
            *_run(fleet, store, fan_out_fan_in(settings.steps), settings.timeout))
        fleet.stop()
        return WorkflowBenchResult(chained, fanned, {
            "machine": machine(),
            "store": store_facts(store, database_url="temporary file (deleted)",
                                 namespace=namespace),
            "workers": settings.workers,
            "concurrency": settings.concurrency,
            "claim_batch_size": fleet_settings.claim_batch,
            "steps": settings.steps,
            "methods": METHODS,
        })
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


METHODS = {
    "total": "run.finished_at - run.created_at, read from the run's row (stamped by the "
             "transactions that create it and end its last step)",
    "work": "the steps' own time on the critical path (each no-op step returns the "
            "perf_counter time of its own code); chain: every step; fan: source + the "
            "longest middle step + sink",
    "overhead_per_step": "(total - work) / steps",
    "handoff": "the dependent's started_at (its claim) - the dependency's finished_at (the "
               "report that made it ready); chain: every edge; fan: source -> each middle "
               "step, and the last middle step -> sink",
    "submit": "App.submit(...) wall time: validation and one transaction",
    "setup": "worker processes started and idle before the runs (start-up excluded); a "
             f"{WARM_UP_STEPS}-step chain first, not counted",
    "percentiles": "nearest rank",
}


def _run(
    fleet: WorkerFleet, store: Store, workflow: Workflow, timeout: float
) -> tuple[WorkflowRun, float]:
    started = time.perf_counter()
    run = app.submit(workflow)
    submit_ms = (time.perf_counter() - started) * 1000
    # Listing one run reads its row and its step counts: light enough to poll.
    for _ in polling(timeout, f"workflow run {run.id} to finish", pause=0.05):
        fleet.check_alive()
        [latest] = store.list_workflow_runs(app.namespace, WorkflowRunFilter(limit=1))
        if latest.status is not RunStatus.RUNNING:
            break
    record = store.get_workflow_run(app.namespace, run.id)
    if record.status is not RunStatus.SUCCEEDED:
        failed = [s for s in record.steps if s.job.status.value != "succeeded"]
        detail = f"; step {failed[0].name}: {failed[0].job.last_error}" if failed else ""
        raise BenchmarkError(f"workflow run {run.id} ended {record.status.value}{detail}")
    return record, submit_ms


def _total(run: WorkflowRun) -> float:
    return epoch(run.finished_at) - epoch(run.created_at)


def _handoff(before: Job, after: Job) -> float:
    """Milliseconds from a dependency's end to its dependent's claim."""
    return (epoch(after.started_at) - epoch(before.finished_at)) * 1000


def _chain_result(run: WorkflowRun, submit_ms: float) -> ShapeResult:
    jobs = [step.job for step in run.steps]
    return ShapeResult(
        shape="chain",
        steps=len(jobs),
        submit_ms=submit_ms,
        total_s=_total(run),
        work_s=sum(float(job.result) for job in jobs),
        handoff_ms=Percentiles.of([_handoff(a, b) for a, b in itertools.pairwise(jobs)]),
    )


def _fan_result(run: WorkflowRun, submit_ms: float) -> ShapeResult:
    source, sink = run.steps[0].job, run.steps[-1].job  # in topological order
    middle = [step.job for step in run.steps[1:-1]]
    last = max(middle, key=lambda job: epoch(job.finished_at))
    work = float(source.result) + max(float(job.result) for job in middle) + float(sink.result)
    fan_out = [_handoff(source, job) for job in middle]
    return ShapeResult(
        shape="fan_out_fan_in",
        steps=len(run.steps),
        submit_ms=submit_ms,
        total_s=_total(run),
        work_s=work,
        handoff_ms=Percentiles.of([*fan_out, _handoff(last, sink)]),
        extra={"fan_out_all_started_ms": max(fan_out), "fan_in_ms": _handoff(last, sink)},
    )
