-- A ceiling for aging, reserved capacity for lower bands, and breakers that judge a
-- failure rate (version 17).

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
