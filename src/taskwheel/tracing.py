"""OpenTelemetry traces (the ``otel`` extra: ``opentelemetry-api``): a span per enqueue,
per schedule fire, per workflow submission and per job attempt.

`instrument` puts a `JobTracing` on an app's (or a store's) enqueue path and event hook:

- every enqueue runs in a ``taskwheel.enqueue`` span (a child of whatever span the
  enqueuing code is in), and each job written carries that span's W3C ``traceparent``
  in its row (``trace_parent``), so the context travels with the job to any worker on
  any machine;
- each schedule fire runs in a ``taskwheel.fire`` span (in the scheduler that fires
  it), and each workflow submission in a ``taskwheel.submit`` span (a child of the
  submitting code's); the jobs they create (the fired job, or every step of the run)
  carry that span's ``traceparent``;
- a worker's ``job.started`` event opens a ``taskwheel.run`` span and ``job.finished``
  ends it (an error status when the attempt did not succeed). Spans carry the job's id,
  attempt, queue, task and namespace.

How a run's span relates to the span its job carries is a `Relation`: an enqueued job's
run is its *child* (one trace from the request into its jobs). A fired job's run, and a
workflow step's, start a trace of their own with a *link* to the fire or submission by
default (``fired=``, ``steps=``): a schedule's runs are not one ever-growing trace, and
a fan-out of a thousand steps is a thousand traces that each point to their parent;
`Relation.CHILD` puts them in the fire's or submission's trace instead.

Only the API is needed here; the application brings the SDK and its exporter (or
passes ``tracer_provider``).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from taskwheel.app import App
from taskwheel.events import Event, EventKind
from taskwheel.jobs import JobOrigin, NewJob
from taskwheel.stores.base import Store

_PROPAGATOR = TraceContextTextMapPropagator()
# Attempts whose span is open, at most this many (a finished event that never comes,
# for a worker that stopped mid-run, must not grow the table without bound).
_MAX_OPEN = 100_000


class Relation(StrEnum):
    """How a run's span relates to the span its job carries."""

    CHILD = "child"  # in that span's trace, as its child
    LINK = "link"  # the first span of a trace of its own, linked to that span


class JobTracing:
    """Spans for enqueues (`enqueuing`), fires and submissions (`producing`), and
    attempts (`handle`, on the event hook)."""

    def __init__(self, tracer_provider: TracerProvider | None = None, *,
                 fired: Relation = Relation.LINK, steps: Relation = Relation.LINK) -> None:
        self.tracer = trace.get_tracer("taskwheel", tracer_provider=tracer_provider)
        self.relations = {JobOrigin.ENQUEUE: Relation.CHILD, JobOrigin.SCHEDULE: fired,
                          JobOrigin.WORKFLOW: steps}
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

    @contextlib.contextmanager
    def producing(
        self, name: str, attributes: Mapping[str, str | int | float]
    ) -> Iterator[str | None]:
        """A span named ``name`` (a child of the current one) around a fire or a
        submission; yields its ``traceparent``, for the jobs it creates."""
        with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER,
                                               attributes=dict(attributes)):
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            yield carrier.get("traceparent")

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
        carried = (_PROPAGATOR.extract({"traceparent": traceparent})
                   if isinstance(traceparent, str) else None)
        try:
            origin = JobOrigin(str(event.metadata.get("origin", JobOrigin.ENQUEUE.value)))
        except ValueError:
            origin = JobOrigin.ENQUEUE
        parent, links = carried, None
        context = (None if carried is None
                   else trace.get_current_span(carried).get_span_context())
        if context is not None and context.is_valid and (
                self.relations[origin] is Relation.LINK):
            # An empty context, not None: None would make the current span the parent.
            parent = trace.set_span_in_context(trace.INVALID_SPAN)
            links = [Link(context, {"taskwheel.origin": origin.value})]
        span = self.tracer.start_span(
            f"taskwheel.run {event.task}", context=parent, kind=SpanKind.CONSUMER,
            links=links,
            attributes={"taskwheel.job_id": event.job_id, "taskwheel.attempt": attempt,
                        "taskwheel.queue": event.queue or "",
                        "taskwheel.task": event.task or "",
                        "taskwheel.namespace": event.namespace or "",
                        "taskwheel.origin": origin.value})
        with self._lock:
            if len(self._open) >= _MAX_OPEN:
                self._open.pop(next(iter(self._open))).end()
            self._open[key] = span


def instrument(
    target: App | Store, *, tracer_provider: TracerProvider | None = None,
    fired: Relation = Relation.LINK, steps: Relation = Relation.LINK,
) -> Callable[[], None]:
    """Trace ``target``'s enqueues, fires and workflow submissions, and the attempts its
    workers run (an app: whenever its store opens, now or later); returns a function
    that stops tracing. ``fired`` and ``steps``: how the runs of fired jobs and of
    workflow steps relate to the fire's or submission's span (`Relation`)."""
    tracing = JobTracing(tracer_provider, fired=fired, steps=steps)
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
