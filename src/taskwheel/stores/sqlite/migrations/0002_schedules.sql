-- Schedules (version 2): when to create jobs. Times are REAL epoch seconds (UTC).

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
    changed_at   REAL    NOT NULL,               -- last change by hand: spec, pause
    UNIQUE (namespace, name)
);

-- What changed since the scheduler last looked (firing does not count as a change).
CREATE INDEX taskwheel_schedules_changed ON taskwheel_schedules (namespace, changed_at);

-- What the scheduler loads into its timing wheel: active schedules by next fire time.
CREATE INDEX taskwheel_schedules_due
    ON taskwheel_schedules (namespace, next_fire_at)
    WHERE paused = 0 AND next_fire_at IS NOT NULL;

-- A fired job remembers its schedule and the instant it stands for.
ALTER TABLE taskwheel_jobs ADD COLUMN schedule_id INTEGER;
ALTER TABLE taskwheel_jobs ADD COLUMN fire_at REAL;

-- At most one job per (schedule, fire time): two schedulers firing the same instant
-- during a handover cannot both create it.
CREATE UNIQUE INDEX taskwheel_jobs_fire
    ON taskwheel_jobs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

-- Unfinished jobs of a schedule, for the overlap policies.
CREATE INDEX taskwheel_jobs_schedule_unfinished
    ON taskwheel_jobs (schedule_id)
    WHERE schedule_id IS NOT NULL AND status IN ('scheduled', 'waiting', 'queued', 'running');
