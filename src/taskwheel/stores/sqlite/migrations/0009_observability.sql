-- Observability (version 9). Times are REAL epoch seconds (UTC).

-- The W3C traceparent of the code that enqueued a job (taskwheel.tracing), so the span
-- of each of its attempts is a child of the enqueue's; NULL when nobody traces.
ALTER TABLE taskwheel_jobs ADD COLUMN trace_parent TEXT;
