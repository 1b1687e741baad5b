-- Workflows (version 3): runs of DAGs of jobs. Mirrors the SQLite store's 0003_workflows.
-- Times are double precision epoch seconds (UTC).

CREATE TABLE workflow_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace        text             NOT NULL,
    name             text             NOT NULL,
    status           text             NOT NULL CHECK (status IN (
                         'running', 'succeeded', 'failed', 'cancelled')),
    on_failure       text             NOT NULL CHECK (on_failure IN (
                         'fail_fast', 'fail_downstream', 'continue')),
    cancel_requested boolean          NOT NULL DEFAULT false,
    created_at       double precision NOT NULL,
    finished_at      double precision,
    schedule_id      bigint,                      -- the schedule that fired it
    fire_at          double precision             -- the instant it stands for
);

-- At most one run per (schedule, fire time): two schedulers firing the same instant
-- during a handover cannot both create it.
CREATE UNIQUE INDEX workflow_runs_fire
    ON workflow_runs (schedule_id, fire_at) WHERE schedule_id IS NOT NULL;

-- Listing a namespace's runs, newest first, by state.
CREATE INDEX workflow_runs_list ON workflow_runs (namespace, status, id);

-- A step is a job of its run; every step has a name unique in its run, its failure
-- policy, and the number of its dependencies it still waits for (counted down in the
-- transaction that ends each of them, so readiness needs no scan). Nullable columns and
-- a constant default: adding them rewrites nothing, however big the table.
ALTER TABLE jobs ADD COLUMN workflow_run_id bigint;
ALTER TABLE jobs ADD COLUMN step text;
ALTER TABLE jobs ADD COLUMN failure_policy text;
ALTER TABLE jobs ADD COLUMN waiting_on integer NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX jobs_workflow_step
    ON jobs (workflow_run_id, step) WHERE workflow_run_id IS NOT NULL;

-- A run's steps by state: is any unfinished, how many ended how.
CREATE INDEX jobs_workflow_status
    ON jobs (workflow_run_id, status) WHERE workflow_run_id IS NOT NULL;

-- The edges of the DAGs: job_id runs after depends_on (both steps of run_id).
CREATE TABLE job_deps (
    namespace  text   NOT NULL,
    run_id     bigint NOT NULL,
    depends_on bigint NOT NULL,
    job_id     bigint NOT NULL,
    PRIMARY KEY (depends_on, job_id)
);

-- A step's dependencies (its context's upstream results).
CREATE INDEX job_deps_job ON job_deps (job_id, depends_on);
