-- Schedules (version 2): when to create jobs. Mirrors the SQLite store's 0002_schedules.
-- Times are double precision epoch seconds (UTC).

CREATE TABLE schedules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace    text             NOT NULL,
    name         text             NOT NULL,
    spec         text             NOT NULL,  -- canonical JSON: compared as text on upsert
    paused       boolean          NOT NULL DEFAULT false,
    next_fire_at double precision,           -- NULL: it will not fire again
    last_fire_at double precision,
    last_job_id  bigint,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    changed_at   double precision NOT NULL,  -- last change by hand: spec, pause
    UNIQUE (namespace, name)
) WITH (
    -- Every fire rewrites next_fire_at (indexed: not HOT) and last_fire_at: leave room
    -- so the new version stays on its page.
    fillfactor = 80
);

-- What changed since the scheduler last looked (firing does not count as a change).
CREATE INDEX schedules_changed ON schedules (namespace, changed_at);

-- What the scheduler loads into its timing wheel: active schedules by next fire time.
CREATE INDEX schedules_due
    ON schedules (namespace, next_fire_at)
    WHERE NOT paused AND next_fire_at IS NOT NULL;

-- A fired job remembers its schedule and the instant it stands for. (Adding nullable
-- columns without a default rewrites nothing, however big the table.)
ALTER TABLE jobs ADD COLUMN schedule_id bigint;
ALTER TABLE jobs ADD COLUMN fire_at double precision;

-- At most one job per (schedule, fire time): two schedulers firing the same instant
-- during a handover cannot both create it.
CREATE UNIQUE INDEX jobs_fire ON jobs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

-- Unfinished jobs of a schedule, for the overlap policies.
CREATE INDEX jobs_schedule_unfinished
    ON jobs (schedule_id)
    WHERE schedule_id IS NOT NULL AND status IN ('scheduled', 'waiting', 'queued', 'running');
