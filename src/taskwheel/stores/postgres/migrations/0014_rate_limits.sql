-- Rate limits per key (version 14): token buckets, charged when a job is admitted.
-- Mirrors the SQLite store's 0014_rate_limits. Times are double precision epoch seconds.

-- A job's rate key (a task's RateLimit key rendered over the job's arguments; NULL for a
-- job no rate limit holds), what one start costs, and the fencing token it was admitted
-- with. A rate-limited job that becomes queued without an admission for its current
-- fence (enqueued, retried, rescued, given back) waits instead, status 'waiting', out
-- of every index a claim reads, until the holder of the maintenance lease admits it
-- from its key's bucket (taskwheel.rates). A claim bumps the fence: every start is paid
-- for once, and a job that comes back to the queue pays again.
ALTER TABLE jobs ADD COLUMN rate_key text;
ALTER TABLE jobs ADD COLUMN rate_cost integer NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN rate_fence bigint;

-- The jobs waiting for tokens, in dispatch order: admissions take them from the first.
CREATE INDEX jobs_rate_waiting
    ON jobs (namespace, rate_key, priority DESC, deadline ASC NULLS LAST, run_at, id)
    WHERE rate_key IS NOT NULL AND status = 'waiting';

-- The jobs admitted and not started yet (queued): what they cost counts against the
-- bucket's burst, so admissions never bank starts.
CREATE INDEX jobs_rate_admitted ON jobs (namespace, rate_key)
    WHERE rate_key IS NOT NULL AND status = 'queued';

-- One bucket per key of a namespace: its rate (tokens per second) and burst, whether a
-- task declared them or someone set them by hand (a declaration then no longer changes
-- them), the tokens left after the last admission (at refilled_at) and what the jobs
-- admitted and not started then cost (held). Only the holder of the maintenance lease
-- writes tokens, refilled_at and held, in the transaction that admits the jobs.
CREATE TABLE rates (
    namespace   text             NOT NULL,
    key         text             NOT NULL,
    rate        double precision NOT NULL CHECK (rate > 0),
    burst       integer          NOT NULL CHECK (burst >= 1),
    set_by_hand boolean          NOT NULL DEFAULT false,
    created_at  double precision NOT NULL,
    tokens      double precision NOT NULL,
    held        integer          NOT NULL DEFAULT 0,
    refilled_at double precision NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- A rate-limited job becoming queued without an admission for its fence waits instead
-- (before the gate and slot triggers, which then see a job that is not queued: it takes
-- no slot and no pause blocks it until it is admitted). Its name orders it after
-- jobs_gate_ready and before jobs_slot_taken.
CREATE FUNCTION rate_wait() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.status := 'waiting';
    NEW.blocked := false;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_rate_wait
    BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued'
                       AND NEW.rate_key IS NOT NULL
                       AND NEW.rate_fence IS DISTINCT FROM NEW.fence)
    EXECUTE FUNCTION rate_wait();
