-- Gates per key (version 12): concurrency limits, paused keys and circuit breakers.
-- Mirrors the PostgreSQL store's 0012_key_gates. Times are REAL epoch seconds (UTC).

-- A job's key (a task's ConcurrencyLimit key rendered over the job's arguments), NULL
-- for a job no key gate holds. A keyed job holds a slot of its key while it is queued
-- and not blocked, or running: the ready index then has it. One that finds no slot
-- waits queued and blocked, out of the ready index, so a claim never reads it.
ALTER TABLE taskwheel_jobs ADD COLUMN gate_key TEXT;

-- The slots a key's jobs hold: counted on this index (at most capacity rows) when a
-- job asks for one.
CREATE INDEX taskwheel_jobs_holding ON taskwheel_jobs (namespace, gate_key)
    WHERE gate_key IS NOT NULL AND status IN ('queued', 'running') AND blocked = 0;

-- The jobs waiting for a slot, in dispatch order: a freed slot goes to the first.
CREATE INDEX taskwheel_jobs_gated
    ON taskwheel_jobs (namespace, gate_key, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE gate_key IS NOT NULL AND status = 'queued' AND blocked = 1;

-- One row per key of a namespace: its slots (capacity; NULL: no limit), whether a task
-- declared it or someone set it by hand (a declaration then no longer changes it), a
-- pause (paused_at, until paused_until or a resume), and its circuit breaker (state,
-- failures counted since window_started, opened until breaker_until; the thresholds
-- the task declared or someone set). A closed gate (paused, or breaker open) admits
-- nothing; a half-open breaker admits one job at a time.
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
    breaker_cooldown  REAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

-- The triggers that keep a key's slots (queries.sql, arm_limits) exist only while a
-- key is known, for the reason 0008 gives for the gates' triggers.
