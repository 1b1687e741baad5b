-- Observability (version 9). Mirrors the SQLite store's 0009_observability. Times are
-- double precision epoch seconds (UTC).

-- The W3C traceparent of the code that enqueued a job (taskwheel.tracing), so the span
-- of each of its attempts is a child of the enqueue's; NULL when nobody traces.
ALTER TABLE jobs ADD COLUMN trace_parent text;
