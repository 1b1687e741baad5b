"""OpenTelemetry traces on both stores: an enqueue's span is a child of the enqueuing
code's, and every attempt of the job is a span whose parent is the enqueue's, carried in
the job's row to the worker that runs it; a fired job's run and a workflow step's start
traces of their own, linked to the fire's or the submission's span (or are its children,
when so configured). (The SDK and its in-memory exporter are test
dependencies only: taskwheel needs the API alone.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import taskwheel
from taskwheel.lifecycle import JobStatus
from taskwheel.retry import Retry
from taskwheel.tracing import Relation, instrument
from taskwheel.workflows import Workflow
from waiting import wait_for

from .conftest import running_worker


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def traced(app: taskwheel.App, provider: TracerProvider) -> Iterator[taskwheel.App]:
    stop = instrument(app, tracer_provider=provider)
    yield app
    stop()


def named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name.startswith(prefix)]


def test_each_attempt_is_a_child_of_the_enqueue_and_the_enqueue_of_the_caller(
    traced: taskwheel.App, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = traced
    calls: list[int] = []

    @app.task(name="flaky", queue="traced", retry=Retry(max_attempts=2, base="0s"))
    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first time")

    with provider.get_tracer("test").start_as_current_span("checkout") as request:
        job = flaky.enqueue().record
    assert job.trace_parent is not None
    assert app.store.get_job("default", job.id).trace_parent == job.trace_parent

    with running_worker(app, queues=["traced"]):
        wait_for(lambda: app.store.get_job("default", job.id).status is JobStatus.SUCCEEDED,
                 what="the job to succeed on its second attempt")
        wait_for(lambda: len(named(exporter, "taskwheel.run")) == 2,
                 what="both attempts' spans to end")

    [enqueue] = named(exporter, "taskwheel.enqueue")
    runs = sorted(named(exporter, "taskwheel.run"),
                  key=lambda span: span.attributes["taskwheel.attempt"])  # type: ignore[index]
    trace_id = request.get_span_context().trace_id
    assert enqueue.parent is not None
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.kind is SpanKind.PRODUCER
    assert enqueue.context is not None
    for number, run in enumerate(runs, start=1):
        assert run.context is not None
        assert run.context.trace_id == trace_id
        assert run.parent is not None
        assert run.parent.span_id == enqueue.context.span_id
        assert run.kind is SpanKind.CONSUMER
        assert dict(run.attributes or {}) == {
            "taskwheel.job_id": job.id, "taskwheel.attempt": number,
            "taskwheel.queue": "traced", "taskwheel.task": "flaky",
            "taskwheel.namespace": "default", "taskwheel.origin": "enqueue",
            "taskwheel.outcome": "failed" if number == 1 else "succeeded"}
    assert runs[0].status.status_code is StatusCode.ERROR
    assert "first time" in (runs[0].status.description or "")
    assert runs[1].status.status_code is StatusCode.UNSET


def test_a_job_enqueued_without_tracing_carries_no_context_and_runs_a_root_span(
    app: taskwheel.App, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    send = app.task(lambda: None, name="send")
    job = send.enqueue().record  # before tracing
    stop = instrument(app, tracer_provider=provider)
    try:
        assert job.trace_parent is None
        with running_worker(app):
            wait_for(lambda: len(named(exporter, "taskwheel.run")) == 1,
                     what="the attempt's span")
    finally:
        stop()
    [run] = named(exporter, "taskwheel.run")
    assert run.parent is None
    assert named(exporter, "taskwheel.enqueue") == []


def test_stopping_the_tracing_leaves_enqueues_untraced(
    app: taskwheel.App, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    send = app.task(lambda: None, name="send")
    stop = instrument(app, tracer_provider=provider)
    stop()

    assert send.enqueue().record.trace_parent is None
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("relation", [Relation.LINK, Relation.CHILD])
def test_a_fired_jobs_run_is_linked_to_the_fire_or_its_child_when_so_configured(
    app: taskwheel.App, provider: TracerProvider, exporter: InMemorySpanExporter,
    relation: Relation,
) -> None:
    app.task(lambda: None, name="report")
    app.schedule("hourly", "report", every="1h")
    app.sync_schedules()
    stop = instrument(app, tracer_provider=provider, fired=relation)
    try:
        fired = app.client.trigger_schedule("hourly")
        assert fired.job_id is not None
        carried = app.store.get_job("default", fired.job_id).trace_parent
        with running_worker(app):
            wait_for(lambda: len(named(exporter, "taskwheel.run")) == 1,
                     what="the fired job's run to end")
    finally:
        stop()

    [fire] = named(exporter, "taskwheel.fire")
    [run] = named(exporter, "taskwheel.run")
    assert fire.name == "taskwheel.fire hourly"
    assert fire.kind is SpanKind.PRODUCER
    assert (fire.attributes or {})["taskwheel.schedule"] == "hourly"
    assert fire.context is not None
    assert run.context is not None
    assert carried is not None
    assert f"{fire.context.span_id:016x}" in carried
    assert (run.attributes or {})["taskwheel.origin"] == "schedule"
    if relation is Relation.LINK:
        assert run.parent is None
        assert run.context.trace_id != fire.context.trace_id
        [link] = run.links
        assert (link.context.trace_id, link.context.span_id) == (
            fire.context.trace_id, fire.context.span_id)
    else:
        assert run.parent is not None
        assert run.parent.span_id == fire.context.span_id
        assert run.context.trace_id == fire.context.trace_id
        assert list(run.links) == []


def test_each_step_of_a_fan_out_starts_a_trace_linked_to_the_submission(
    app: taskwheel.App, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    noop = app.task(lambda: None, name="noop")
    wf = Workflow("fan")
    root = wf.step(noop, name="root")
    for n in range(3):
        wf.step(noop, name=f"leaf{n}", after=[root])
    stop = instrument(app, tracer_provider=provider)
    try:
        with provider.get_tracer("test").start_as_current_span("request") as request:
            run = app.submit(wf)
        with running_worker(app, concurrency=4):
            run.result(timeout=20)
            wait_for(lambda: len(named(exporter, "taskwheel.run")) == 4,
                     what="every step's run to end")
    finally:
        stop()

    [submit] = named(exporter, "taskwheel.submit")
    assert submit.name == "taskwheel.submit fan"
    assert submit.parent is not None
    assert submit.parent.span_id == request.get_span_context().span_id
    assert submit.context is not None
    runs = named(exporter, "taskwheel.run")
    assert sorted(str((r.attributes or {})["taskwheel.job_id"]) for r in runs) == sorted(
        str(step.job.id) for step in run.record.steps)
    traces = set()
    for step_run in runs:
        assert step_run.parent is None
        assert (step_run.attributes or {})["taskwheel.origin"] == "workflow"
        [link] = step_run.links
        assert link.context.span_id == submit.context.span_id
        assert step_run.context is not None
        traces.add(step_run.context.trace_id)
    assert len(traces) == 4
    assert submit.context.trace_id not in traces
