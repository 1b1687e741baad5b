-- Named queries of the SQLite store. Parameters are :named; times are epoch seconds.
-- Names are those of the PostgreSQL store's queries.sql: one block per statement of the
-- executor (see stores/executor.py), and the migrations' own.

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS taskwheel_migrations ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)

-- name: applied_migrations
SELECT version FROM taskwheel_migrations

-- name: record_migration
INSERT INTO taskwheel_migrations (version, name, applied_at) VALUES (:version, :name, :now)

-- name: migrations_table_exists
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'taskwheel_migrations'

-- name: schema_version
SELECT coalesce(max(version), 0) FROM taskwheel_migrations

-- name: insert_jobs
-- Positional parameters, in column order: binding by name costs more per row, and
-- this statement runs once per job of a batch.
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, idempotency_key, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING

-- name: job_by_idempotency_key
SELECT * FROM taskwheel_jobs WHERE namespace = :namespace AND idempotency_key = :key

-- name: promote_due
UPDATE taskwheel_jobs SET status = 'queued'
WHERE namespace = :namespace AND status = 'scheduled' AND run_at <= :now

-- name: expire_missed
UPDATE taskwheel_jobs
SET status = 'expired', finished_at = :now, last_error = 'deadline passed before the job started'
WHERE namespace = :namespace AND status IN ('queued', 'scheduled')
  AND deadline IS NOT NULL AND deadline <= :now AND deadline_policy = 'expire'
RETURNING id, namespace, status, workflow_run_id, step, failure_policy

-- name: claim_jobs
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = :now
WHERE id IN (
    SELECT id FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
    WHERE namespace = :namespace AND status = 'queued'
      AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY priority DESC, coalesce(deadline, 1e308), run_at, id
    LIMIT :limit)
RETURNING *

-- name: next_due
SELECT min(run_at) FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'scheduled'

-- name: heartbeat
UPDATE taskwheel_jobs SET lease_expires_at = :now + :lease_ttl
WHERE worker_id = :worker_id AND status = 'running'
RETURNING id, cancel_requested

-- name: touch_worker
UPDATE taskwheel_workers SET last_seen_at = :now WHERE id = :worker_id

-- name: extend_lease
UPDATE taskwheel_jobs SET lease_expires_at = max(lease_expires_at, :now + :lease_ttl)
WHERE id = :id AND fence = :fence AND status = 'running'

-- name: finish_attempts
-- A retry of a job someone asked to cancel ends it cancelled instead.
UPDATE taskwheel_jobs
SET status = CASE WHEN cancel_requested = 1 AND :status IN ('queued', 'scheduled')
                  THEN 'cancelled' ELSE :status END,
    result = :result,
    last_error = :error,
    run_at = CASE WHEN :status IN ('queued', 'scheduled') THEN :now + :retry_delay ELSE run_at END,
    finished_at = CASE WHEN :status IN ('queued', 'scheduled') AND cancel_requested = 0
                       THEN NULL ELSE :now END,
    lease_expires_at = NULL
WHERE id = :id AND fence = :fence AND status = 'running'
RETURNING id, namespace, attempt, fence, worker_id, started_at, schedule_id, status,
          workflow_run_id, step, failure_policy

-- name: record_attempt
INSERT INTO taskwheel_attempts (
    namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
    result, error, traceback)
VALUES (:namespace, :job_id, :attempt, :fence, :worker_id, :started_at, :now, :outcome,
        :result, :error, :traceback)

-- name: release_jobs
UPDATE taskwheel_jobs
SET status = CASE WHEN guarantee = 'at_least_once' AND cancel_requested = 0 THEN 'queued'
                  WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'dead' END,
    attempt = CASE WHEN guarantee = 'at_least_once' THEN attempt - 1 ELSE attempt END,
    last_error = CASE WHEN guarantee = 'at_least_once' THEN last_error
                      ELSE 'interrupted by worker shutdown (at-most-once: not run again)' END,
    finished_at = CASE WHEN guarantee = 'at_least_once' AND cancel_requested = 0
                       THEN NULL ELSE :now END,
    run_at = :now,
    lease_expires_at = NULL
WHERE id = :id AND fence = :fence AND worker_id = :worker_id AND status = 'running'
-- RETURNING sees the new row: the interrupted attempt is the number given back.
RETURNING id, namespace,
          CASE WHEN guarantee = 'at_least_once' THEN attempt + 1 ELSE attempt END AS attempt,
          fence, worker_id, started_at, status, workflow_run_id, step, failure_policy

-- name: save_checkpoint
UPDATE taskwheel_jobs SET checkpoint = :state
WHERE id = :id AND fence = :fence AND status = 'running'

-- name: rescue_requeue
UPDATE taskwheel_jobs SET status = 'queued', lease_expires_at = NULL, run_at = :now
WHERE namespace = :namespace AND status = 'running' AND lease_expires_at < :now
  AND guarantee = 'at_least_once' AND attempt < max_attempts AND cancel_requested = 0
RETURNING id, namespace, attempt, fence, worker_id, started_at

-- name: rescue_fail
UPDATE taskwheel_jobs
SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'dead' END,
    finished_at = :now, lease_expires_at = NULL,
    last_error = CASE WHEN guarantee = 'at_most_once'
                      THEN 'lease expired: the worker vanished (at-most-once: not run again)'
                      ELSE 'lease expired: the worker vanished on the last attempt' END
WHERE namespace = :namespace AND status = 'running' AND lease_expires_at < :now
RETURNING id, namespace, attempt, fence, worker_id, started_at, status, workflow_run_id, step,
          failure_policy


-- name: get_jobs
SELECT * FROM taskwheel_jobs
WHERE namespace = :namespace AND id IN (SELECT value FROM json_each(:ids))

-- name: list_jobs
SELECT * FROM taskwheel_jobs
WHERE namespace = :namespace
  AND (:status IS NULL OR status = :status)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
ORDER BY id DESC
LIMIT :limit

-- name: list_attempts
SELECT * FROM taskwheel_attempts WHERE namespace = :namespace AND job_id = :job_id ORDER BY id

-- name: cancel_pending
UPDATE taskwheel_jobs SET status = 'cancelled', finished_at = :now
WHERE namespace = :namespace AND id = :id AND status IN ('scheduled', 'waiting', 'queued')
RETURNING id, namespace, status, workflow_run_id, step, failure_policy

-- name: request_cancel
UPDATE taskwheel_jobs SET cancel_requested = 1
WHERE namespace = :namespace AND id = :id AND status = 'running'

-- name: requeue_finished
UPDATE taskwheel_jobs
SET status = 'queued', attempt = 0, run_at = :now, finished_at = NULL, result = NULL,
    cancel_requested = 0, worker_id = NULL, lease_expires_at = NULL,
    deadline = CASE WHEN status = 'expired' THEN NULL ELSE deadline END
WHERE namespace = :namespace AND id = :id AND status = :expected_status
RETURNING *

-- name: dead_ids
SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead' ORDER BY id

-- name: purge_dead_attempts
DELETE FROM taskwheel_attempts WHERE job_id IN (
    SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead')

-- name: purge_dead
DELETE FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead'

-- name: register_worker
INSERT INTO taskwheel_workers (
    id, namespace, hostname, pid, queues, concurrency, pool, heartbeat_interval,
    started_at, last_seen_at)
VALUES (:id, :namespace, :hostname, :pid, :queues, :concurrency, :pool, :heartbeat_interval,
        :now, :now)
ON CONFLICT (id) DO UPDATE SET last_seen_at = :now

-- name: unregister_worker
DELETE FROM taskwheel_workers WHERE id = :worker_id

-- name: prune_workers
-- Workers silent for a day are gone for good.
DELETE FROM taskwheel_workers WHERE namespace = :namespace AND last_seen_at < :now - 86400

-- name: elect_many
INSERT INTO taskwheel_leases (namespace, name, holder, expires_at)
VALUES (:namespace, :name, :holder, :now + :ttl)
ON CONFLICT (namespace, name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at,
    term = term + (taskwheel_leases.holder != excluded.holder)
WHERE taskwheel_leases.holder = excluded.holder OR taskwheel_leases.expires_at < :now
RETURNING holder

-- name: resign
DELETE FROM taskwheel_leases WHERE namespace = :namespace AND name = :name AND holder = :holder

-- name: count_by_state
SELECT queue, status, count(*) FROM taskwheel_jobs WHERE namespace = :namespace
GROUP BY queue, status

-- name: ready_by_priority
SELECT queue, priority, count(*), min(run_at) FROM taskwheel_jobs
WHERE namespace = :namespace AND status = 'queued'
GROUP BY queue, priority

-- name: list_workers
SELECT * FROM taskwheel_workers WHERE namespace = :namespace ORDER BY started_at

-- name: upsert_schedule
-- A changed spec takes the caller's first fire time; an unchanged one keeps its own.
INSERT INTO taskwheel_schedules (
    namespace, name, spec, next_fire_at, created_at, updated_at, changed_at
)
VALUES (:namespace, :name, :spec, :next_fire_at, :now, :now, :now)
ON CONFLICT (namespace, name) DO UPDATE
SET spec = excluded.spec, next_fire_at = excluded.next_fire_at,
    updated_at = excluded.updated_at, changed_at = excluded.changed_at
WHERE taskwheel_schedules.spec != excluded.spec

-- name: schedule_by_name
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.namespace = :namespace AND s.name = :name

-- name: schedules_by_id
-- By primary key: the unary + keeps the planner off the namespace index, which would
-- scan every schedule of the namespace for each fire.
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.id IN (SELECT value FROM json_each(:ids)) AND +s.namespace = :namespace

-- name: list_schedules
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.namespace = :namespace ORDER BY s.name

-- name: schedules_due
SELECT id, next_fire_at FROM taskwheel_schedules INDEXED BY taskwheel_schedules_due
WHERE namespace = :namespace AND paused = 0 AND next_fire_at IS NOT NULL
  AND next_fire_at > :after AND next_fire_at <= :until

-- name: schedules_changed
SELECT id, CASE WHEN paused = 0 THEN next_fire_at END
FROM taskwheel_schedules INDEXED BY taskwheel_schedules_changed
WHERE namespace = :namespace AND changed_at >= :since

-- name: lease_holders
-- substr, not LIKE: the prefix is literal (a "_" in it is no wildcard).
SELECT name, holder FROM taskwheel_leases
WHERE namespace = :namespace AND substr(name, 1, length(:prefix)) = :prefix
  AND expires_at >= :now

-- name: pause_schedule
UPDATE taskwheel_schedules SET paused = :paused, updated_at = :now, changed_at = :now
WHERE namespace = :namespace AND name = :name

-- name: remove_schedule
DELETE FROM taskwheel_schedules WHERE namespace = :namespace AND name = :name

-- name: lease_held
SELECT 1 FROM taskwheel_leases
WHERE namespace = :namespace AND name = :name AND holder = :holder AND expires_at >= :now

-- name: advance_schedules
-- Applies a plan only if the schedule is where the plan found it.
UPDATE taskwheel_schedules
SET next_fire_at = :next_fire_at, last_fire_at = coalesce(:last_fire_at, last_fire_at),
    updated_at = :now
WHERE id = :id AND namespace = :namespace AND paused = 0 AND next_fire_at = :expected

-- name: unfinished_of_schedule
SELECT status FROM taskwheel_jobs INDEXED BY taskwheel_jobs_schedule_unfinished
WHERE schedule_id = :schedule_id
  AND status IN ('scheduled', 'waiting', 'queued', 'running')

-- name: insert_fired_job
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, schedule_id, fire_at)
VALUES (:namespace, :task, :queue, :args, :kwargs, :status, :priority, :run_at, :deadline,
        :timeout, :max_attempts, :guarantee, :deadline_policy, :now, :schedule_id, :fire_at)
ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING

-- name: set_last_job
UPDATE taskwheel_schedules SET last_job_id = :job_id WHERE id = :id

-- name: release_waiting
-- queue_one: a schedule's waiting job becomes ready once no earlier job of that
-- schedule is unfinished.
UPDATE taskwheel_jobs SET status = 'queued', run_at = max(run_at, :now)
WHERE namespace = :namespace AND status = 'waiting' AND schedule_id IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs AS earlier
      WHERE earlier.schedule_id = taskwheel_jobs.schedule_id AND earlier.id < taskwheel_jobs.id
        AND earlier.status IN ('scheduled', 'queued', 'running'))
RETURNING id

-- name: release_queue_one
UPDATE taskwheel_jobs SET status = 'queued', run_at = max(run_at, :now)
WHERE status = 'waiting'
  AND schedule_id IN (SELECT value FROM json_each(:schedule_ids))
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs AS earlier
      WHERE earlier.schedule_id = taskwheel_jobs.schedule_id AND earlier.id < taskwheel_jobs.id
        AND earlier.status IN ('scheduled', 'queued', 'running'))
RETURNING id, namespace

-- name: expire_missed_any
UPDATE taskwheel_jobs
SET status = 'expired', finished_at = :now, last_error = 'deadline passed before the job started'
WHERE namespace = :namespace AND status IN ('queued', 'scheduled', 'waiting')
  AND deadline IS NOT NULL AND deadline <= :now AND deadline_policy = 'expire'
RETURNING id, namespace, status, workflow_run_id, step, failure_policy

-- name: delete_lapsed_leases
DELETE FROM taskwheel_leases WHERE namespace = :namespace AND expires_at < :before

-- name: prunable_jobs
-- The steps of a run still going are kept: its later steps read their results.
SELECT id FROM taskwheel_jobs
WHERE namespace = :namespace AND finished_at < :before
  AND status IN ('succeeded', 'cancelled', 'expired', 'upstream_failed', 'skipped')
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_workflow_runs AS run
      WHERE run.id = taskwheel_jobs.workflow_run_id AND run.status = 'running')
LIMIT :limit

-- name: delete_attempts_of
DELETE FROM taskwheel_attempts WHERE job_id IN (SELECT value FROM json_each(:ids))

-- name: delete_jobs
DELETE FROM taskwheel_jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- workflows ---------------------------------------------------------------------------------

-- name: insert_run
INSERT INTO taskwheel_workflow_runs (
    namespace, name, status, on_failure, created_at, schedule_id, fire_at)
VALUES (:namespace, :name, 'running', :on_failure, :now, :schedule_id, :fire_at)
ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING

-- name: insert_steps
-- Positional parameters, in column order: it runs once per step of a run.
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, workflow_run_id, step,
    failure_policy, waiting_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: insert_dependencies
INSERT INTO taskwheel_job_deps (namespace, run_id, depends_on, job_id) VALUES (?, ?, ?, ?)

-- name: workflow_run
SELECT * FROM taskwheel_workflow_runs WHERE namespace = :namespace AND id = :id

-- name: list_workflow_runs
SELECT * FROM taskwheel_workflow_runs
WHERE namespace = :namespace
  AND (:status IS NULL OR status = :status)
  AND (:name IS NULL OR name = :name)
ORDER BY id DESC
LIMIT :limit

-- name: workflow_steps
SELECT * FROM taskwheel_jobs WHERE workflow_run_id = :run_id ORDER BY id

-- name: workflow_edges
SELECT d.depends_on, d.job_id
FROM taskwheel_jobs AS j
JOIN taskwheel_job_deps AS d ON d.job_id = j.id
WHERE j.workflow_run_id = :run_id

-- name: step_counts
SELECT workflow_run_id, status, count(*) FROM taskwheel_jobs
WHERE workflow_run_id IN (SELECT value FROM json_each(:run_ids))
GROUP BY workflow_run_id, status

-- name: unfinished_workflow_run
-- Overlap of a workflow schedule: a run it fired that is still going.
SELECT 1 FROM taskwheel_workflow_runs
WHERE schedule_id = :schedule_id AND status = 'running'
LIMIT 1

-- name: release_dependents
-- One dependency fewer to wait for; the last one makes the step ready.
UPDATE taskwheel_jobs
SET waiting_on = waiting_on - 1,
    status = CASE WHEN waiting_on = 1 THEN 'queued' ELSE status END,
    run_at = CASE WHEN waiting_on = 1 THEN max(run_at, :now) ELSE run_at END
WHERE id IN (SELECT job_id FROM taskwheel_job_deps WHERE depends_on = :id)
  AND status = 'waiting' AND waiting_on > 0
RETURNING id, namespace, status

-- name: block_downstream
-- Every step still waiting behind a failed one can never run.
WITH RECURSIVE downstream(id) AS (
    SELECT d.job_id FROM taskwheel_job_deps AS d
    JOIN taskwheel_jobs AS j ON j.id = d.job_id
    WHERE d.depends_on = :id AND j.status = 'waiting'
    UNION
    SELECT d.job_id FROM downstream
    JOIN taskwheel_job_deps AS d ON d.depends_on = downstream.id
    JOIN taskwheel_jobs AS j ON j.id = d.job_id
    WHERE j.status = 'waiting'
)
UPDATE taskwheel_jobs
SET status = 'upstream_failed', finished_at = :now, waiting_on = 0, last_error = :error
WHERE id IN (SELECT id FROM downstream) AND status = 'waiting'
RETURNING id

-- name: cancel_pending_steps
UPDATE taskwheel_jobs
SET status = 'cancelled', finished_at = :now, waiting_on = 0, last_error = :error
WHERE workflow_run_id = :run_id AND status IN ('waiting', 'queued', 'scheduled')
RETURNING id

-- name: request_cancel_running_steps
UPDATE taskwheel_jobs SET cancel_requested = 1
WHERE workflow_run_id = :run_id AND status = 'running' AND cancel_requested = 0
RETURNING id



-- name: finish_run
UPDATE taskwheel_workflow_runs SET status = :status, finished_at = :now
WHERE id = :id AND status = 'running'

-- name: lock_run
-- The write lock is held: nobody changes the run before this transaction ends.
SELECT 1 FROM taskwheel_workflow_runs WHERE namespace = :namespace AND id = :id

-- name: settlement
-- A running run whose steps have all ended: its counts of steps by state, to judge its
-- final state by (nothing when a step is unfinished, or the run is not running).
SELECT run.cancel_requested, j.status, count(*) AS count
FROM taskwheel_workflow_runs AS run
JOIN taskwheel_jobs AS j INDEXED BY taskwheel_jobs_workflow_status ON j.workflow_run_id = run.id
WHERE run.id = :run_id AND run.status = 'running'
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs AS u INDEXED BY taskwheel_jobs_workflow_status
      WHERE u.workflow_run_id = run.id
        AND u.status IN ('scheduled', 'waiting', 'queued', 'running'))
GROUP BY run.cancel_requested, j.status

-- name: request_cancel_run
UPDATE taskwheel_workflow_runs SET cancel_requested = 1
WHERE namespace = :namespace AND id = :id AND status = 'running'

-- name: reopen_run
UPDATE taskwheel_workflow_runs SET status = 'running', finished_at = NULL, cancel_requested = 0
WHERE id = :id

-- name: reset_steps
-- A retried step starts afresh; a deadline already passed would expire it at once.
UPDATE taskwheel_jobs
SET status = :status, waiting_on = :waiting_on, attempt = 0, run_at = :now,
    finished_at = NULL, result = NULL, cancel_requested = 0, worker_id = NULL,
    lease_expires_at = NULL,
    deadline = CASE WHEN deadline <= :now THEN NULL ELSE deadline END
WHERE id = :id AND status = :expected_status
RETURNING namespace

-- name: upstream_outcomes
SELECT j.id, j.step, j.status, j.result, j.last_error
FROM taskwheel_job_deps AS d JOIN taskwheel_jobs AS j ON j.id = d.depends_on
WHERE d.job_id = :job_id AND j.namespace = :namespace
ORDER BY j.id

-- name: delete_dependencies_of
DELETE FROM taskwheel_job_deps
WHERE job_id IN (SELECT value FROM json_each(:ids))
   OR depends_on IN (SELECT value FROM json_each(:ids))

-- name: delete_dead_dependencies
DELETE FROM taskwheel_job_deps
WHERE job_id IN (SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead')
   OR depends_on IN (
       SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead')

-- name: delete_emptied_workflow_runs
-- Finished runs whose every step was pruned.
DELETE FROM taskwheel_workflow_runs
WHERE namespace = :namespace AND status != 'running' AND finished_at < :before
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs WHERE workflow_run_id = taskwheel_workflow_runs.id)
