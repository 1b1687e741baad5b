"""The benchmarks' app with tracing on: the same app and tasks as `taskwheel.bench.app`,
instrumented by `taskwheel.tracing.instrument` at import. Worker processes of the
features benchmark load it (``--app taskwheel.bench.traced:app``) to time a traced
attempt against a plain one."""

from __future__ import annotations

from taskwheel.bench.app import app
from taskwheel.tracing import instrument

instrument(app)

__all__ = ["app"]
