-- Fair shares and priority aging (version 13). Times are REAL epoch seconds (UTC).

-- A job's place in the dispatch order is decided when it is written, never by a sweep:
-- rank_offset lowers the priority it is claimed at by the aging steps of its queue
-- that had passed when it fell due (so the ones that wait longer come first in the
-- same order, `taskwheel.fairness`), and fair_pass is its virtual pass in its fairness
-- flow (a key of its namespace, '' for a job without one). Both are 0 for a namespace
-- that uses neither: today's order, and nothing to compute.
ALTER TABLE taskwheel_jobs ADD COLUMN fairness_key TEXT;
ALTER TABLE taskwheel_jobs ADD COLUMN rank_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskwheel_jobs ADD COLUMN fair_pass REAL NOT NULL DEFAULT 0;

DROP INDEX taskwheel_jobs_ready;
CREATE INDEX taskwheel_jobs_ready
    ON taskwheel_jobs (namespace, priority + rank_offset DESC, fair_pass,
                       coalesce(deadline, 1e308), run_at, id)
    WHERE status = 'queued' AND blocked = 0;

-- The fairness flows of a namespace: a key's weight (NULL: 1) and the pass of the last
-- job written with it. A namespace with rows here is fair: each of its enqueues
-- assigns passes in the transaction that writes the jobs.
CREATE TABLE taskwheel_fair_flows (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    weight    REAL CHECK (weight > 0),
    last_pass REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
-- Where the passes of a rank without ready jobs start (fair_ceiling).
CREATE INDEX taskwheel_fair_flows_last_pass ON taskwheel_fair_flows (namespace, last_pass);

-- A queue's aging: its ready jobs gain `rate` priority levels per second of waiting.
CREATE TABLE taskwheel_queue_aging (
    namespace TEXT NOT NULL,
    queue     TEXT NOT NULL,
    rate      REAL NOT NULL CHECK (rate > 0),
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;
