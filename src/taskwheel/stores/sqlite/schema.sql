-- The SQLite schema that applying every migration in migrations/ yields: the `sql` of
-- the tables, then of the indexes, in sqlite_master, sorted. Generated for review; the
-- migrations are the source of truth. After changing them, regenerate with
--     TASKWHEEL_UPDATE_SCHEMA=1 .venv/bin/pytest tests/contract/test_migrations.py

CREATE TABLE taskwheel_alert_deliveries (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    rule             TEXT    NOT NULL,
    firing           INTEGER,
    event            TEXT    NOT NULL CHECK (event IN ('firing', 'resolved', 'test')),
    url              TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          REAL    NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       REAL    NOT NULL,
    delivered_at     REAL,
    UNIQUE (namespace, rule, firing, event)
);

CREATE TABLE taskwheel_alert_rules (
    namespace    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    created_at   REAL    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    firing       INTEGER NOT NULL DEFAULT 0,
    changed_at   REAL,
    value        REAL,
    evaluated_at REAL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

CREATE TABLE taskwheel_api_keys (
    prefix     TEXT    PRIMARY KEY,
    digest     TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'operate', 'admin')),
    name       TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;

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

CREATE TABLE taskwheel_fair_flows (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    weight    REAL CHECK (weight > 0),
    last_pass REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE taskwheel_job_deps (
    namespace  TEXT    NOT NULL,
    run_id     INTEGER NOT NULL,
    depends_on INTEGER NOT NULL,
    job_id     INTEGER NOT NULL,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;

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

CREATE TABLE taskwheel_leases (
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at REAL    NOT NULL,
    term       INTEGER NOT NULL DEFAULT 1,       -- bumped when the holder changes
    PRIMARY KEY (namespace, name)
);

CREATE TABLE taskwheel_limits (
    namespace         TEXT    NOT NULL,
    key               TEXT    NOT NULL,
    capacity          INTEGER CHECK (capacity IS NULL OR capacity >= 1),
    set_by_hand       INTEGER NOT NULL DEFAULT 0,
    created_at        REAL    NOT NULL,
    paused_at         REAL,
    paused_until      REAL,
    breaker_state     TEXT    NOT NULL DEFAULT 'closed'
                      CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    breaker_until     REAL,
    failures          INTEGER NOT NULL DEFAULT 0,
    window_started    REAL,
    breaker_failures  INTEGER CHECK (breaker_failures IS NULL OR breaker_failures >= 1),
    breaker_window    REAL,
    breaker_cooldown  REAL, breaker_failure_rate REAL
    CHECK (breaker_failure_rate IS NULL OR (breaker_failure_rate > 0 AND breaker_failure_rate <= 1)), attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE taskwheel_migrations ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);

CREATE TABLE taskwheel_namespace_weights (
    namespace TEXT PRIMARY KEY,
    weight    REAL NOT NULL CHECK (weight > 0)
) WITHOUT ROWID;

CREATE TABLE taskwheel_pauses (
    namespace TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('queue', 'task')),
    name      TEXT NOT NULL,
    paused_at REAL NOT NULL,
    until     REAL,
    PRIMARY KEY (namespace, kind, name)
) WITHOUT ROWID;

CREATE TABLE taskwheel_queue_aging (
    namespace TEXT NOT NULL,
    queue     TEXT NOT NULL,
    rate      REAL NOT NULL CHECK (rate > 0), cap INTEGER,
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;

CREATE TABLE taskwheel_queue_limits (
    namespace TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    max_depth INTEGER NOT NULL CHECK (max_depth >= 1),
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;

CREATE TABLE taskwheel_queue_reserves (
    namespace TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    share     REAL    NOT NULL CHECK (share > 0 AND share < 1),
    below     INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;

CREATE TABLE taskwheel_quotas (
    namespace            TEXT    PRIMARY KEY,
    max_queued           INTEGER,
    max_enqueue_rate     REAL,
    max_active_schedules INTEGER,
    tokens               REAL    NOT NULL DEFAULT 0,
    tokens_at            REAL    NOT NULL DEFAULT 0
) WITHOUT ROWID;

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

CREATE TABLE taskwheel_schedules (
    id           INTEGER PRIMARY KEY,
    namespace    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,               -- JSON: trigger, job template, policies
    paused       INTEGER NOT NULL DEFAULT 0,
    next_fire_at REAL,                           -- NULL: it will not fire again
    last_fire_at REAL,
    last_job_id  INTEGER,
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    changed_at   REAL    NOT NULL, declared_by TEXT,               -- last change by hand: spec, pause
    UNIQUE (namespace, name)
);

CREATE TABLE taskwheel_webhooks (
    namespace           TEXT NOT NULL,
    name                TEXT NOT NULL,
    task                TEXT NOT NULL,
    queue               TEXT,
    secret              TEXT NOT NULL,
    idempotency_header  TEXT,
    idempotency_pointer TEXT,
    created_at          REAL NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

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

CREATE TABLE taskwheel_workflow_runs (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN (
                         'running', 'succeeded', 'failed', 'cancelled')),
    on_failure       TEXT    NOT NULL CHECK (on_failure IN (
                         'fail_fast', 'fail_downstream', 'continue')),
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    finished_at      REAL,
    schedule_id      INTEGER,                    -- the schedule that fired it
    fire_at          REAL                        -- the instant it stands for
);

CREATE INDEX taskwheel_alert_deliveries_due
    ON taskwheel_alert_deliveries (namespace, next_at) WHERE status = 'pending';

CREATE INDEX taskwheel_attempts_job ON taskwheel_attempts (job_id, id);

CREATE INDEX taskwheel_fair_flows_last_pass ON taskwheel_fair_flows (namespace, last_pass);

CREATE INDEX taskwheel_job_deps_job ON taskwheel_job_deps (job_id, depends_on);

CREATE INDEX taskwheel_jobs_deadline
    ON taskwheel_jobs (namespace, deadline)
    WHERE status IN ('queued', 'scheduled') AND deadline IS NOT NULL;

CREATE INDEX taskwheel_jobs_due
    ON taskwheel_jobs (namespace, run_at) WHERE status = 'scheduled';

CREATE INDEX taskwheel_jobs_gated
    ON taskwheel_jobs (namespace, gate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE gate_key IS NOT NULL AND status = 'queued' AND blocked = 1;

CREATE INDEX taskwheel_jobs_holding ON taskwheel_jobs (namespace, gate_key)
    WHERE gate_key IS NOT NULL AND status IN ('queued', 'running') AND blocked = 0;

CREATE INDEX taskwheel_jobs_lease
    ON taskwheel_jobs (namespace, lease_expires_at) WHERE status = 'running';

CREATE INDEX taskwheel_jobs_rate_admitted
    ON taskwheel_jobs (namespace, rate_key, rate_cost, status)
    WHERE rate_key IS NOT NULL AND status = 'queued';

CREATE INDEX taskwheel_jobs_rate_waiting
    ON taskwheel_jobs (namespace, rate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE rate_key IS NOT NULL AND status = 'waiting' AND waiting_on = 0;

CREATE INDEX taskwheel_jobs_ready
    ON taskwheel_jobs (namespace, priority + rank_offset DESC, fair_pass,
                       coalesce(deadline, 1e308), run_at, id)
    WHERE status = 'queued' AND blocked = 0;

CREATE INDEX taskwheel_jobs_schedule_unfinished
    ON taskwheel_jobs (schedule_id)
    WHERE schedule_id IS NOT NULL AND status IN ('scheduled', 'waiting', 'queued', 'running');

CREATE INDEX taskwheel_jobs_status ON taskwheel_jobs (namespace, status, queue, finished_at);

CREATE INDEX taskwheel_jobs_worker
    ON taskwheel_jobs (worker_id) WHERE status = 'running';

CREATE INDEX taskwheel_jobs_workflow_status
    ON taskwheel_jobs (workflow_run_id, status) WHERE workflow_run_id IS NOT NULL;

CREATE INDEX taskwheel_limits_breakers ON taskwheel_limits (namespace, key)
    WHERE breaker_failures IS NOT NULL OR breaker_state <> 'closed';

CREATE INDEX taskwheel_schedules_changed ON taskwheel_schedules (namespace, changed_at);

CREATE INDEX taskwheel_schedules_due
    ON taskwheel_schedules (namespace, next_fire_at)
    WHERE paused = 0 AND next_fire_at IS NOT NULL;

CREATE INDEX taskwheel_workflow_runs_list ON taskwheel_workflow_runs (namespace, id);

CREATE UNIQUE INDEX taskwheel_jobs_fire
    ON taskwheel_jobs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

CREATE UNIQUE INDEX taskwheel_jobs_idempotency
    ON taskwheel_jobs (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE UNIQUE INDEX taskwheel_jobs_workflow_step
    ON taskwheel_jobs (workflow_run_id, step) WHERE workflow_run_id IS NOT NULL;

CREATE UNIQUE INDEX taskwheel_workflow_runs_fire
    ON taskwheel_workflow_runs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;
