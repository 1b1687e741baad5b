-- Fair shares and priority aging (version 13). Mirrors the SQLite store's
-- 0013_fair_shares. Times are double precision epoch seconds (UTC).

-- A job's place in the dispatch order is decided when it is written, never by a sweep:
-- rank_offset lowers the priority it is claimed at by the aging steps of its queue
-- that had passed when it fell due (so the ones that wait longer come first in the
-- same order, `taskwheel.fairness`), and fair_pass is its virtual pass in its fairness
-- flow (a key of its namespace, '' for a job without one). Both are 0 for a namespace
-- that uses neither: today's order, and nothing to compute.
ALTER TABLE jobs ADD COLUMN fairness_key text;
ALTER TABLE jobs ADD COLUMN rank_offset bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN fair_pass double precision NOT NULL DEFAULT 0;

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready
    ON jobs (namespace, (priority + rank_offset) DESC, fair_pass, deadline ASC NULLS LAST,
             run_at, id)
    WHERE status = 'queued' AND NOT blocked;

-- The fairness flows of a namespace: a key's weight (NULL: 1) and the pass of the last
-- job written with it. A namespace with rows here is fair: each of its enqueues
-- assigns passes in the transaction that writes the jobs.
CREATE TABLE fair_flows (
    namespace text             NOT NULL,
    key       text             NOT NULL,
    weight    double precision CHECK (weight > 0),
    last_pass double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, key)
) ;
-- Where the passes of a rank without ready jobs start (fair_ceiling).
CREATE INDEX fair_flows_last_pass ON fair_flows (namespace, last_pass);

-- A queue's aging: its ready jobs gain `rate` priority levels per second of waiting.
CREATE TABLE queue_aging (
    namespace text             NOT NULL,
    queue     text             NOT NULL,
    rate      double precision NOT NULL CHECK (rate > 0),
    PRIMARY KEY (namespace, queue)
);
