-- Rate limits per key (version 14): token buckets, charged when a job is admitted.
-- Mirrors the PostgreSQL store's 0014_rate_limits. Times are REAL epoch seconds (UTC).

-- A job's rate key (a task's RateLimit key rendered over the job's arguments; NULL for a
-- job no rate limit holds), what one start costs, and the fencing token it was admitted
-- with. A rate-limited job that becomes queued without an admission for its current
-- fence (enqueued, retried, rescued, given back) waits instead, status 'waiting', out
-- of every index a claim reads, until the holder of the maintenance lease admits it
-- from its key's bucket (taskwheel.rates). A claim bumps the fence: every start is paid
-- for once, and a job that comes back to the queue pays again.
ALTER TABLE taskwheel_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE taskwheel_jobs ADD COLUMN rate_cost INTEGER NOT NULL DEFAULT 1;
ALTER TABLE taskwheel_jobs ADD COLUMN rate_fence INTEGER;

-- The jobs waiting for tokens, in dispatch order: admissions take them from the first.
CREATE INDEX taskwheel_jobs_rate_waiting
    ON taskwheel_jobs (namespace, rate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE rate_key IS NOT NULL AND status = 'waiting';

-- The jobs admitted and not started yet (queued): what they cost counts against the
-- bucket's burst, so admissions never bank starts.
CREATE INDEX taskwheel_jobs_rate_admitted ON taskwheel_jobs (namespace, rate_key)
    WHERE rate_key IS NOT NULL AND status = 'queued';

-- One bucket per key of a namespace: its rate (tokens per second) and burst, whether a
-- task declared them or someone set them by hand (a declaration then no longer changes
-- them), the tokens left after the last admission (at refilled_at) and what the jobs
-- admitted and not started then cost (held). Only the holder of the maintenance lease
-- writes tokens, refilled_at and held, in the transaction that admits the jobs.
CREATE TABLE taskwheel_rates (
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    rate        REAL    NOT NULL CHECK (rate > 0),
    burst       INTEGER NOT NULL CHECK (burst >= 1),
    set_by_hand INTEGER NOT NULL DEFAULT 0,
    created_at  REAL    NOT NULL,
    tokens      REAL    NOT NULL,
    held        INTEGER NOT NULL DEFAULT 0,
    refilled_at REAL    NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

-- The trigger that sends a rate-limited job to wait (queries.sql, arm_rates) exists only
-- while a bucket is known, for the reason 0008 gives for the gates' triggers.
