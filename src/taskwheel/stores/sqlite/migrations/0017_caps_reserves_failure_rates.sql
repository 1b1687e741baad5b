-- A ceiling for aging, reserved capacity for lower bands, breakers that judge a
-- failure rate, and rate keys on jobs made from templates (version 17).

-- The priority aging lifts a queue's jobs to at most (NULL: no ceiling). A job written
-- from now on with a priority above it does not age; one at or below never ranks above
-- it (`taskwheel.fairness.rank_offset`).
ALTER TABLE taskwheel_queue_aging ADD COLUMN cap INTEGER;

-- A share of a queue's claims kept for its jobs ranked below priority `below` (by aged
-- priority in a queue that ages), whenever such jobs are ready: a claim of the queue
-- first takes the claims its claimer owes them (`taskwheel.fairness.ReserveCredit`).
CREATE TABLE taskwheel_queue_reserves (
    namespace TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    share     REAL    NOT NULL CHECK (share > 0 AND share < 1),
    below     INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;

-- A breaker rule's failure rate (NULL: the count alone): its failures must also be at
-- least this share of the attempts that ended in the window, which `attempts` counts
-- (`taskwheel.breakers.after_outcome`).
ALTER TABLE taskwheel_limits ADD COLUMN breaker_failure_rate REAL
    CHECK (breaker_failure_rate IS NULL OR (breaker_failure_rate > 0 AND breaker_failure_rate <= 1));
ALTER TABLE taskwheel_limits ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

-- Jobs made from templates (a schedule's fires, a workflow's steps) carry their task's
-- rate key too. A job waiting for tokens is one waiting with waiting_on 0: a step
-- waiting for its dependencies counts them in waiting_on, and a fire waiting for its
-- turn (queue_one) now has waiting_on 1. Those written before this version had 0.
UPDATE taskwheel_jobs SET waiting_on = 1
WHERE status = 'waiting' AND schedule_id IS NOT NULL AND workflow_run_id IS NULL
  AND waiting_on = 0 AND rate_key IS NULL;
DROP INDEX taskwheel_jobs_rate_waiting;
CREATE INDEX taskwheel_jobs_rate_waiting
    ON taskwheel_jobs (namespace, rate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE rate_key IS NOT NULL AND status = 'waiting' AND waiting_on = 0;
