-- Workflows (version 3): runs of DAGs of jobs. Times are REAL epoch seconds (UTC).

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

-- At most one run per (schedule, fire time): two schedulers firing the same instant
-- during a handover cannot both create it.
CREATE UNIQUE INDEX taskwheel_workflow_runs_fire
    ON taskwheel_workflow_runs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

-- Listing a namespace's runs, newest first.
CREATE INDEX taskwheel_workflow_runs_list ON taskwheel_workflow_runs (namespace, id);

-- A step is a job of its run; every step has a name unique in its run, its failure
-- policy, and the number of its dependencies it still waits for (counted down in the
-- transaction that ends each of them, so readiness needs no scan).
ALTER TABLE taskwheel_jobs ADD COLUMN workflow_run_id INTEGER;
ALTER TABLE taskwheel_jobs ADD COLUMN step TEXT;
ALTER TABLE taskwheel_jobs ADD COLUMN failure_policy TEXT;
ALTER TABLE taskwheel_jobs ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX taskwheel_jobs_workflow_step
    ON taskwheel_jobs (workflow_run_id, step) WHERE workflow_run_id IS NOT NULL;

-- A run's steps by state: is any unfinished, how many ended how.
CREATE INDEX taskwheel_jobs_workflow_status
    ON taskwheel_jobs (workflow_run_id, status) WHERE workflow_run_id IS NOT NULL;

-- The edges of the DAGs: job_id runs after depends_on (both steps of run_id).
CREATE TABLE taskwheel_job_deps (
    namespace  TEXT    NOT NULL,
    run_id     INTEGER NOT NULL,
    depends_on INTEGER NOT NULL,
    job_id     INTEGER NOT NULL,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;

-- A step's dependencies (its context's upstream results).
CREATE INDEX taskwheel_job_deps_job ON taskwheel_job_deps (job_id, depends_on);
