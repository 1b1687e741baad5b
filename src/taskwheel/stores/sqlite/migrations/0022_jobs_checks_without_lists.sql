-- The jobs table's CHECK constraints as comparisons, not IN lists (version 22). SQLite
-- only: PostgreSQL's plans test a list once, as an array.
--
-- SQLite evaluates a CHECK for every row an INSERT writes, and for every row an UPDATE
-- writes when it changes a column the CHECK names (a claim, a report). For `x IN
-- ('a', 'b', ...)` it builds a lookup table of the list each time it evaluates it: the
-- three lists of version 1 (status, guarantee, deadline_policy) cost an insert of a job
-- about 5 µs of its 15 (executemany of 1,000 rows, six rounds alternated: 14.8 µs a row
-- with the lists, 9.2 with the same tests as comparisons joined by OR, 9.6 with no
-- CHECK at all). The rows and their meaning do not change.
--
-- SQLite cannot change a CHECK in place, so the table is written anew: renamed, created
-- again with the new constraints and the same columns in the same order (readers take
-- rows by position), its rows copied, the old one dropped with its indexes and
-- triggers, then the indexes and the view over it created again (their text as the
-- migrations before this one left it). A database with many jobs takes a while here,
-- once: 7.8 s for a million finished jobs on the development machine, with the copy
-- going through the write-ahead log. The triggers the
-- store creates only while they have work (slot, gate and rate triggers) are created
-- again by the store after a migration when the database needs them.
DROP VIEW taskwheel_key_room;
ALTER TABLE taskwheel_jobs RENAME TO taskwheel_jobs_before_22;

CREATE TABLE taskwheel_jobs (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    args             TEXT    NOT NULL,           -- JSON array
    kwargs           TEXT    NOT NULL,           -- JSON object
    status           TEXT    NOT NULL CHECK (
                         status = 'scheduled' OR status = 'waiting' OR status = 'queued'
                         OR status = 'running' OR status = 'succeeded'
                         OR status = 'cancelled' OR status = 'dead' OR status = 'expired'
                         OR status = 'upstream_failed' OR status = 'skipped'),
    priority         INTEGER NOT NULL,
    run_at           REAL    NOT NULL,           -- due time
    deadline         REAL,                       -- must start before this, or expire
    timeout          REAL,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    attempt          INTEGER NOT NULL DEFAULT 0, -- attempts started so far
    fence            INTEGER NOT NULL DEFAULT 0, -- bumped at every claim
    guarantee        TEXT    NOT NULL CHECK (
                         guarantee = 'at_least_once' OR guarantee = 'at_most_once'),
    deadline_policy  TEXT    NOT NULL CHECK (
                         deadline_policy = 'expire' OR deadline_policy = 'run_late'),
    idempotency_key  TEXT,
    worker_id        TEXT,                       -- holder of the lease (or the last one)
    lease_expires_at REAL,
    started_at       REAL,                       -- start of the current or last attempt
    created_at       REAL    NOT NULL,
    finished_at      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,                       -- JSON
    last_error       TEXT,
    checkpoint       TEXT,                       -- JSON, saved by the task
    schedule_id      INTEGER,                    -- a fire: its schedule (version 2)
    fire_at          REAL,                       -- and the instant it stands for
    workflow_run_id  INTEGER,                    -- a step: its run (version 3)
    step             TEXT,
    failure_policy   TEXT,
    waiting_on       INTEGER NOT NULL DEFAULT 0, -- dependencies not yet ended
    blocked          INTEGER NOT NULL DEFAULT 0, -- held by a gate (version 8)
    trace_parent     TEXT,                       -- W3C traceparent (version 9)
    gate_key         TEXT,                       -- concurrency key (version 12)
    fairness_key     TEXT,                       -- fair shares (version 13)
    rank_offset      INTEGER NOT NULL DEFAULT 0,
    fair_pass        REAL    NOT NULL DEFAULT 0,
    rate_key         TEXT,                       -- rate limit (version 14)
    rate_cost        INTEGER NOT NULL DEFAULT 1,
    rate_fence       INTEGER
);

INSERT INTO taskwheel_jobs SELECT * FROM taskwheel_jobs_before_22;
DROP TABLE taskwheel_jobs_before_22;

-- The indexes in the order the migrations before created them (SQLite's planner, between
-- two as good, takes the one it meets first).
CREATE UNIQUE INDEX taskwheel_jobs_idempotency
    ON taskwheel_jobs (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX taskwheel_jobs_due
    ON taskwheel_jobs (namespace, run_at) WHERE status = 'scheduled';

CREATE INDEX taskwheel_jobs_deadline
    ON taskwheel_jobs (namespace, deadline)
    WHERE status IN ('queued', 'scheduled') AND deadline IS NOT NULL;

CREATE INDEX taskwheel_jobs_lease
    ON taskwheel_jobs (namespace, lease_expires_at) WHERE status = 'running';

CREATE INDEX taskwheel_jobs_worker
    ON taskwheel_jobs (worker_id) WHERE status = 'running';

CREATE UNIQUE INDEX taskwheel_jobs_fire
    ON taskwheel_jobs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

CREATE INDEX taskwheel_jobs_schedule_unfinished
    ON taskwheel_jobs (schedule_id)
    WHERE schedule_id IS NOT NULL AND status IN ('scheduled', 'waiting', 'queued', 'running');

CREATE UNIQUE INDEX taskwheel_jobs_workflow_step
    ON taskwheel_jobs (workflow_run_id, step) WHERE workflow_run_id IS NOT NULL;

CREATE INDEX taskwheel_jobs_workflow_status
    ON taskwheel_jobs (workflow_run_id, status) WHERE workflow_run_id IS NOT NULL;

CREATE INDEX taskwheel_jobs_status ON taskwheel_jobs (namespace, status, queue, finished_at);

CREATE INDEX taskwheel_jobs_holding ON taskwheel_jobs (namespace, gate_key)
    WHERE gate_key IS NOT NULL AND status IN ('queued', 'running') AND blocked = 0;

CREATE INDEX taskwheel_jobs_gated
    ON taskwheel_jobs (namespace, gate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE gate_key IS NOT NULL AND status = 'queued' AND blocked = 1;

CREATE INDEX taskwheel_jobs_ready
    ON taskwheel_jobs (namespace, priority + rank_offset DESC, fair_pass,
                       coalesce(deadline, 1e308), run_at, id)
    WHERE status = 'queued' AND blocked = 0;

CREATE INDEX taskwheel_jobs_rate_waiting
    ON taskwheel_jobs (namespace, rate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE rate_key IS NOT NULL AND status = 'waiting' AND waiting_on = 0;

CREATE INDEX taskwheel_jobs_rate_admitted
    ON taskwheel_jobs (namespace, rate_key, rate_cost, status)
    WHERE rate_key IS NOT NULL AND status = 'queued';

CREATE VIEW taskwheel_key_room AS
SELECT l.namespace, l.key,
       CASE WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open' THEN 0
            WHEN l.breaker_state = 'half_open' THEN 1
            ELSE l.capacity END
       - (SELECT count(*) FROM taskwheel_jobs AS h INDEXED BY taskwheel_jobs_holding
          WHERE h.namespace = l.namespace AND h.gate_key = l.key AND h.gate_key IS NOT NULL
            AND h.status IN ('queued', 'running') AND h.blocked = 0) AS room
FROM taskwheel_limits AS l;
