"""OpenTelemetry traces on both stores: an enqueue's span is a child of the enqueuing
code's, and every attempt of the job is a span whose parent is the enqueue's, carried in
the job's row to the worker that runs it. (The SDK and its in-memory exporter are test
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
from taskwheel.tracing import instrument
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
            "taskwheel.namespace": "default",
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
