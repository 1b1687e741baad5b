"""OpenTelemetry traces (the ``otel`` extra: ``opentelemetry-api``): a span per enqueue
and per job attempt, the attempt's a child of the enqueue's.

`instrument` puts a `JobTracing` on an app's (or a store's) enqueue path and event hook:

- every enqueue runs in a ``taskwheel.enqueue`` span (a child of whatever span the
  enqueuing code is in), and each job written carries that span's W3C ``traceparent``
  in its row (``trace_parent``), so the context travels with the job to any worker on
  any machine;
- a worker's ``job.started`` event opens a ``taskwheel.run`` span whose parent is the
  job's ``traceparent``, and ``job.finished`` ends it (an error status when the attempt
  did not succeed). Spans carry the job's id, attempt, queue, task and namespace.

Only the API is needed here; the application brings the SDK and its exporter (or
passes ``tracer_provider``). Jobs that schedules fire and workflow steps carry no
``traceparent``: their runs start traces of their own.

Example:
    >>> from taskwheel.tracing import instrument
    >>> uninstrument = instrument(app)          # in the module that defines the app
    >>> with tracer.start_as_current_span("checkout"):
    ...     send.enqueue("a@b.c")               # its run will be a child of "checkout"
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from taskwheel.app import App
from taskwheel.events import Event, EventKind
from taskwheel.jobs import NewJob
from taskwheel.stores.base import Store

_PROPAGATOR = TraceContextTextMapPropagator()
# Attempts whose span is open, at most this many (a finished event that never comes,
# for a worker that stopped mid-run, must not grow the table without bound).
_MAX_OPEN = 100_000


class JobTracing:
    """Spans for enqueues (`enqueuing`) and attempts (`handle`, on the event hook)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("taskwheel", tracer_provider=tracer_provider)
        self._open: dict[tuple[int, int], Span] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def enqueuing(self, jobs: Sequence[NewJob]) -> Iterator[list[NewJob]]:
        """A ``taskwheel.enqueue`` span around an enqueue; yields the requests, each
        with the span's ``traceparent`` (one already given is kept)."""
        first = jobs[0]
        attributes: dict[str, Any] = {"taskwheel.namespace": first.namespace,
                                      "taskwheel.task": first.task,
                                      "taskwheel.queue": first.queue,
                                      "taskwheel.jobs": len(jobs)}
        with self.tracer.start_as_current_span(f"taskwheel.enqueue {first.task}",
                                               kind=SpanKind.PRODUCER,
                                               attributes=attributes):
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            parent = carrier.get("traceparent")
            yield [new if new.trace_parent is not None or parent is None
                   else dataclasses.replace(new, trace_parent=parent) for new in jobs]

    def handle(self, event: Event) -> None:
        if event.job_id is None:
            return
        attempt = int(event.metadata.get("attempt", 0))
        key = (event.job_id, attempt)
        if event.kind is EventKind.JOB_STARTED:
            self._start(event, key, attempt)
        elif event.kind is EventKind.JOB_FINISHED:
            with self._lock:
                span = self._open.pop(key, None)
            if span is not None:
                outcome = str(event.metadata.get("outcome", ""))
                span.set_attribute("taskwheel.outcome", outcome)
                if outcome != "succeeded":
                    span.set_status(Status(StatusCode.ERROR,
                                           str(event.metadata.get("error") or outcome)))
                span.end()

    def _start(self, event: Event, key: tuple[int, int], attempt: int) -> None:
        traceparent = event.metadata.get("trace_parent")
        parent = (_PROPAGATOR.extract({"traceparent": traceparent})
                  if isinstance(traceparent, str) else None)
        span = self.tracer.start_span(
            f"taskwheel.run {event.task}", context=parent, kind=SpanKind.CONSUMER,
            attributes={"taskwheel.job_id": event.job_id, "taskwheel.attempt": attempt,
                        "taskwheel.queue": event.queue or "",
                        "taskwheel.task": event.task or "",
                        "taskwheel.namespace": event.namespace or ""})
        with self._lock:
            if len(self._open) >= _MAX_OPEN:
                self._open.pop(next(iter(self._open))).end()
            self._open[key] = span


def instrument(
    target: App | Store, *, tracer_provider: TracerProvider | None = None
) -> Callable[[], None]:
    """Trace ``target``'s enqueues and the attempts its workers run (an app: whenever
    its store opens, now or later); returns a function that stops tracing."""
    tracing = JobTracing(tracer_provider)
    detaches: list[Callable[[], None]] = []

    def install(store: Store) -> None:
        store.tracer = tracing
        detach = store.events.attach(tracing.handle,
                                     [EventKind.JOB_STARTED, EventKind.JOB_FINISHED])

        def uninstall() -> None:
            detach()
            if store.tracer is tracing:
                store.tracer = None

        detaches.append(uninstall)

    if isinstance(target, App):
        forget = target.when_store_opens(install)
        detaches.append(forget)
    else:
        install(target)

    def stop() -> None:
        for detach in reversed(detaches):
            detach()
        detaches.clear()

    return stop
