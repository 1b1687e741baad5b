-- taskwheel schema, version 1 (SQLite). Times are REAL epoch seconds (UTC).

CREATE TABLE taskwheel_jobs (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    args             TEXT    NOT NULL,           -- JSON array
    kwargs           TEXT    NOT NULL,           -- JSON object
    status           TEXT    NOT NULL CHECK (status IN (
                         'scheduled', 'waiting', 'queued', 'running', 'succeeded',
                         'cancelled', 'dead', 'expired', 'upstream_failed', 'skipped')),
    priority         INTEGER NOT NULL,
    run_at           REAL    NOT NULL,           -- due time
    deadline         REAL,                       -- must start before this, or expire
    timeout          REAL,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    attempt          INTEGER NOT NULL DEFAULT 0, -- attempts started so far
    fence            INTEGER NOT NULL DEFAULT 0, -- bumped at every claim
    guarantee        TEXT    NOT NULL CHECK (guarantee IN ('at_least_once', 'at_most_once')),
    deadline_policy  TEXT    NOT NULL CHECK (deadline_policy IN ('expire', 'run_late')),
    idempotency_key  TEXT,
    worker_id        TEXT,                       -- holder of the lease (or the last one)
    lease_expires_at REAL,
    started_at       REAL,                       -- start of the current or last attempt
    created_at       REAL    NOT NULL,
    finished_at      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    result           TEXT,                       -- JSON
    last_error       TEXT,
    checkpoint       TEXT                        -- JSON, saved by the task
);

-- One job per idempotency key in a namespace.
CREATE UNIQUE INDEX taskwheel_jobs_idempotency
    ON taskwheel_jobs (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The dispatch order, so a claim reads ready jobs in order and stops at LIMIT
-- instead of sorting the whole queue. Only ready rows are indexed.
CREATE INDEX taskwheel_jobs_ready
    ON taskwheel_jobs (namespace, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE status = 'queued';

-- Delayed and backing-off jobs, by due time.
CREATE INDEX taskwheel_jobs_due
    ON taskwheel_jobs (namespace, run_at) WHERE status = 'scheduled';

-- Waiting jobs with a deadline, to expire them.
CREATE INDEX taskwheel_jobs_deadline
    ON taskwheel_jobs (namespace, deadline)
    WHERE status IN ('queued', 'scheduled') AND deadline IS NOT NULL;

-- Running jobs: by lease expiry for the rescuer, by worker for heartbeats.
CREATE INDEX taskwheel_jobs_lease
    ON taskwheel_jobs (namespace, lease_expires_at) WHERE status = 'running';
CREATE INDEX taskwheel_jobs_worker
    ON taskwheel_jobs (worker_id) WHERE status = 'running';

-- Listing and counting by state.
CREATE INDEX taskwheel_jobs_status ON taskwheel_jobs (namespace, status, queue);

CREATE TABLE taskwheel_attempts (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    job_id      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    fence       INTEGER NOT NULL,
    worker_id   TEXT,
    started_at  REAL    NOT NULL,
    ended_at    REAL    NOT NULL,
    outcome     TEXT    NOT NULL,
    result      TEXT,
    error       TEXT,
    traceback   TEXT
);
CREATE INDEX taskwheel_attempts_job ON taskwheel_attempts (job_id, id);

CREATE TABLE taskwheel_workers (
    id                 TEXT PRIMARY KEY,
    namespace          TEXT NOT NULL,
    hostname           TEXT NOT NULL,
    pid                INTEGER NOT NULL,
    queues             TEXT NOT NULL,            -- JSON array
    concurrency        INTEGER NOT NULL,
    pool               TEXT NOT NULL,
    heartbeat_interval REAL NOT NULL,
    started_at         REAL NOT NULL,
    last_seen_at       REAL NOT NULL
);

-- Named leases (leadership): the rescuer now, the scheduler later.
CREATE TABLE taskwheel_leases (
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    term       INTEGER NOT NULL DEFAULT 1,       -- bumped when the holder changes
    PRIMARY KEY (namespace, name)
);
