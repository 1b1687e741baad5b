-- Named blocks of the SQLite store: one block per statement of its executor, named after
-- the `Executor` method it serves (see stores/executor.py), and the migrations' own; the
-- names are those of the PostgreSQL store's queries.sql. Parameters are :named (a
-- statement takes the keys it names and ignores the others); times are epoch seconds.
--
-- A block may hold several statements, each ended by ";". Where PostgreSQL writes
-- several tables in one statement (an INSERT inside a WITH), SQLite cannot: it writes
-- them one after the other. The store splits each block into its statements once, when
-- it loads this file (`sql_files.split_statements`), and its executor runs them in turn in
-- its one write transaction (nobody else writes before it commits), each with the
-- block's parameters unless the block says otherwise. A block of one statement may leave
-- out the ";". A block's comment says which statement answers (its rows or its count);
-- in a statement, changes() and last_insert_rowid() are those of the statement before.
--
-- A list of namespaces comes as JSON (:namespaces, read with json_each); where order or
-- a minimum matters, each namespace is read off its own index range, as PostgreSQL does
-- with LATERAL. promote_due and release_waiting run once per namespace (:namespace)
-- instead: the executor wakes the namespaces where they made jobs ready.

-- migrations --------------------------------------------------------------------------------

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

-- jobs ----------------------------------------------------------------------------------------

-- name: namespaces
-- Every namespace with jobs, schedules or workflow runs: a skip along each index that
-- leads with the namespace (one probe per namespace: min() of an index range), never a
-- scan of the rows.
WITH RECURSIVE job_namespaces(namespace) AS (
    SELECT min(namespace) FROM taskwheel_jobs
    UNION ALL
    SELECT (SELECT min(namespace) FROM taskwheel_jobs WHERE namespace > seen.namespace)
    FROM job_namespaces AS seen WHERE seen.namespace IS NOT NULL
),
schedule_namespaces(namespace) AS (
    SELECT min(namespace) FROM taskwheel_schedules
    UNION ALL
    SELECT (SELECT min(namespace) FROM taskwheel_schedules WHERE namespace > seen.namespace)
    FROM schedule_namespaces AS seen WHERE seen.namespace IS NOT NULL
),
run_namespaces(namespace) AS (
    SELECT min(namespace) FROM taskwheel_workflow_runs
    UNION ALL
    SELECT (SELECT min(namespace) FROM taskwheel_workflow_runs
            WHERE namespace > seen.namespace)
    FROM run_namespaces AS seen WHERE seen.namespace IS NOT NULL
)
SELECT namespace FROM job_namespaces WHERE namespace IS NOT NULL
UNION
SELECT namespace FROM schedule_namespaces WHERE namespace IS NOT NULL
UNION
SELECT namespace FROM run_namespaces WHERE namespace IS NOT NULL
ORDER BY namespace

-- name: insert_jobs
-- One request with an idempotency key (a batch without keys is reserve_jobs and
-- copy_jobs), run for each request of a batch in its order: the job, or nothing when the
-- key is taken (before, or by an earlier request of the batch); then the job that holds
-- the key, only when the insert wrote nothing. The answer is the one row of the two.
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, idempotency_key, created_at, trace_parent,
    fairness_key, rank_offset, fair_pass)
VALUES (:namespace, :task, :queue, :args, :kwargs, :status, :priority, :run_at, :deadline,
        :timeout, :max_attempts, :guarantee, :deadline_policy, :idempotency_key, :now,
        :trace_parent, :fairness_key, :rank_offset, :fair_pass)
ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;
SELECT * FROM taskwheel_jobs
WHERE namespace = :namespace AND idempotency_key = :idempotency_key AND changes() = 0;

-- name: reserve_jobs
-- New jobs with ids chosen by the store (a batch without idempotency keys, which cannot
-- conflict; the steps of a workflow run): first the first free id, the one SQLite itself
-- would give (the table has no AUTOINCREMENT, so the ids of the last jobs, once deleted,
-- are given again, as they always were). Nobody else inserts before the write
-- transaction commits: the ids from here on are the batch's... (limited: a namespace of
-- :namespaces (JSON) has a quota or a queue with a maximum depth; the store then
-- enqueues the batch in a transaction that checks them: one probe of a primary key per
-- namespace, in the same statement)...
-- (CASEs, not ANDs: SQLite evaluates the IN list of an AND's second operand even when
-- the first is false, which tripled this statement's cost.)
SELECT (SELECT coalesce(max(id), 0) + 1 FROM taskwheel_jobs) AS first_id,
       CASE WHEN EXISTS (SELECT 1 FROM taskwheel_quotas)  -- no quota anywhere: nothing more
            THEN EXISTS (SELECT 1 FROM taskwheel_quotas
                         WHERE namespace IN (SELECT value FROM json_each(:namespaces)))
            ELSE 0 END
       + CASE WHEN EXISTS (SELECT 1 FROM taskwheel_queue_limits)  -- nor a maximum depth
              THEN EXISTS (SELECT 1 FROM taskwheel_queue_limits
                           WHERE namespace IN (SELECT value FROM json_each(:namespaces)))
              ELSE 0 END
       -- (nor fair shares or aging, which place the jobs in the same transaction)
       + CASE WHEN EXISTS (SELECT 1 FROM taskwheel_fair_flows)
              THEN EXISTS (SELECT 1 FROM taskwheel_fair_flows
                           WHERE namespace IN (SELECT value FROM json_each(:namespaces)))
              ELSE 0 END
       + CASE WHEN EXISTS (SELECT 1 FROM taskwheel_queue_aging)
              THEN EXISTS (SELECT 1 FROM taskwheel_queue_aging
                           WHERE namespace IN (SELECT value FROM json_each(:namespaces)))
              ELSE 0 END AS limited

-- name: copy_jobs
-- ...then the rows (`rows.JobValues`), positional in column order: binding by name costs
-- more per row, and this statement runs once per job of a batch (executemany).
INSERT INTO taskwheel_jobs (
    id, namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, idempotency_key, created_at, trace_parent,
    fairness_key, rank_offset, fair_pass)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: claim_at_once
-- A claim in one short write transaction, for when nothing but ready jobs is in play.
-- First, whether it must be done in steps instead, in which case nothing else runs: a
-- delayed job of the namespaces is due (it must become ready first, to be claimed in
-- dispatch order), or a job's deadline passed (it expires first: a workflow step's end
-- does things to its run), or a queue keeps a reserve (below). Each EXISTS reads a
-- partial index (jobs_due, jobs_deadline) or a table that is empty unless reserves are
-- used.
SELECT EXISTS (
           SELECT 1 FROM taskwheel_jobs
           WHERE namespace IN (SELECT value FROM json_each(:namespaces))
             AND status = 'scheduled' AND run_at <= :now)
    OR EXISTS (
           SELECT 1 FROM taskwheel_jobs
           WHERE namespace IN (SELECT value FROM json_each(:namespaces))
             AND status IN ('queued', 'scheduled') AND deadline IS NOT NULL
             AND deadline <= :now AND deadline_policy = 'expire')
    -- or a queue keeps a reserve (the claim's policy then claims in steps, and reads
    -- the reserves of the claim's own queues there: a claim that no reserve concerns
    -- claims as before). Any reserve at all, not the claim's: that probe parsed two
    -- JSON lists, several microseconds of every claim.
    OR EXISTS (SELECT 1 FROM taskwheel_queue_reserves)
    AS slow;
-- Then the claim, as claim_jobs...
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = :now
WHERE id IN (
    SELECT job.id FROM json_each(:namespaces) AS claimed
    JOIN taskwheel_jobs AS job ON job.id IN (
        SELECT id FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
        WHERE namespace = claimed.value AND status = 'queued' AND blocked = 0
          AND queue IN (SELECT value FROM json_each(:queues))
          AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
        ORDER BY priority + rank_offset DESC, fair_pass, coalesce(deadline, 1e308), run_at, id
        LIMIT :limit)
    ORDER BY job.priority + job.rank_offset DESC, job.fair_pass, coalesce(job.deadline, 1e308),
             job.run_at, job.id
    LIMIT :limit)
RETURNING *;
-- ...and, as next_due, when the earliest delayed job of the namespaces falls due.
SELECT min((SELECT min(run_at) FROM taskwheel_jobs
            WHERE namespace = claimed.value AND status = 'scheduled')) AS next_due
FROM json_each(:namespaces) AS claimed;

-- name: promote_due
UPDATE taskwheel_jobs SET status = 'queued'
WHERE namespace = :namespace AND status = 'scheduled' AND run_at <= :now

-- name: expire_missed
-- Jobs not started whose deadline passed: queued and delayed ones (on jobs_deadline, the
-- index every claim in steps reads, named: once the table has been analysed, with
-- millions of finished jobs, the planner would rather scan the whole table, under the
-- write lock)...
UPDATE taskwheel_jobs INDEXED BY taskwheel_jobs_deadline
SET status = 'expired', finished_at = :now, last_error = 'deadline passed before the job started'
WHERE namespace IN (SELECT value FROM json_each(:namespaces))
  AND status IN ('queued', 'scheduled')
  AND deadline IS NOT NULL AND deadline <= :now AND deadline_policy = 'expire'
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;
-- ...and waiting ones, only when the executor is asked for them (maintenance does; a
-- claim leaves them to it), on jobs_status for the same reason.
UPDATE taskwheel_jobs INDEXED BY taskwheel_jobs_status
SET status = 'expired', finished_at = :now, last_error = 'deadline passed before the job started'
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND status = 'waiting'
  AND deadline IS NOT NULL AND deadline <= :now AND deadline_policy = 'expire'
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;

-- name: claim_jobs
-- The first ready jobs of :namespaces (JSON) in dispatch order, after promote_due and
-- expire_missed in the same transaction: the first of each namespace, read in order off
-- its own range of jobs_ready (a correlated IN stands for PostgreSQL's LATERAL), then the
-- first of those. (One ORDER BY over all the namespaces' ready jobs would sort them all.)
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = :now
WHERE id IN (
    SELECT job.id FROM json_each(:namespaces) AS claimed
    JOIN taskwheel_jobs AS job ON job.id IN (
        SELECT id FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
        WHERE namespace = claimed.value AND status = 'queued' AND blocked = 0
          AND queue IN (SELECT value FROM json_each(:queues))
          AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
        ORDER BY priority + rank_offset DESC, fair_pass, coalesce(deadline, 1e308), run_at, id
        LIMIT :limit)
    ORDER BY job.priority + job.rank_offset DESC, job.fair_pass, coalesce(job.deadline, 1e308),
             job.run_at, job.id
    LIMIT :limit)
RETURNING *

-- name: claim_ahead
-- For a claimer that holds each job until its due time (ClaimRequest.ahead): after the
-- ready ones (claim_jobs, in the same transaction), up to :limit plain delayed jobs of
-- :namespaces (JSON), :queues and :tasks due within :ahead seconds, in due order, each
-- started at its due time. Not one of a key, blocked, or in a namespace with a pause:
-- those become ready at their due time (promote_due), where the gates decide.
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = run_at
WHERE id IN (
    SELECT job.id FROM json_each(:namespaces) AS claimed
    JOIN taskwheel_jobs AS job INDEXED BY taskwheel_jobs_due ON job.namespace = claimed.value
    WHERE job.status = 'scheduled' AND job.run_at > :now AND job.run_at <= :now + :ahead
      AND job.queue IN (SELECT value FROM json_each(:queues))
      AND (:tasks IS NULL OR job.task IN (SELECT value FROM json_each(:tasks)))
      AND job.gate_key IS NULL AND job.rate_key IS NULL AND job.blocked = 0
      AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = claimed.value)
    ORDER BY job.run_at, job.id
    LIMIT :limit)
RETURNING *

-- name: next_due
-- The earliest due time of each namespace's delayed jobs (jobs_due), then the least.
SELECT min((SELECT min(run_at) FROM taskwheel_jobs
            WHERE namespace = claimed.value AND status = 'scheduled')) AS next_due
FROM json_each(:namespaces) AS claimed

-- name: next_due_in_queues
-- The same for the jobs of :queues only (a claim of nothing: when will there be work for
-- this worker?): a ready job of the queues (work now: its due time is past), else each
-- namespace's delayed jobs in due order until one of the queues. A job made ready after
-- the last claim that found nothing (by maintenance's promotion, say) counts: a burst
-- worker asks this before it exits.
SELECT min(coalesce(
    (SELECT run_at FROM taskwheel_jobs
     WHERE namespace = claimed.value AND status = 'queued' AND blocked = 0
       AND queue IN (SELECT value FROM json_each(:queues))
     LIMIT 1),
    (SELECT run_at FROM taskwheel_jobs
     WHERE namespace = claimed.value AND status = 'scheduled'
       AND queue IN (SELECT value FROM json_each(:queues))
     ORDER BY run_at LIMIT 1))) AS next_due
FROM json_each(:namespaces) AS claimed

-- name: heartbeat
-- The leases of the attempts the worker executes (:leases, a JSON list of [id, fence];
-- the answer), and its own last-seen time. A lease of the worker not named is left to
-- expire. The pairs are a list the rows are looked up in, not a table joined to them:
-- joined, SQLite read the worker's running rows off taskwheel_jobs_worker and scanned
-- the whole list for each (100 leases: 4 ms with the write lock held, against 0.6).
UPDATE taskwheel_jobs SET lease_expires_at = :now + :lease_ttl
WHERE (id, fence) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
                      FROM json_each(:leases))
  AND worker_id = :worker_id AND status = 'running'
RETURNING id, cancel_requested;
UPDATE taskwheel_workers SET last_seen_at = :now WHERE id = :worker_id;

-- name: extend_lease
UPDATE taskwheel_jobs SET lease_expires_at = max(lease_expires_at, :now + :lease_ttl)
WHERE id = :id AND fence = :fence AND status = 'running'

-- name: finish_attempts
-- A round of outcomes (:outcomes, a JSON list of [id, fence, status, outcome, result,
-- error, traceback, retry_delay], at most one per job), each applied to its running row
-- while its fence still holds (the answer: the rows moved; nothing for a stale one), then
-- recorded as attempts: the second statement is given the outcomes the first applied
-- (:applied, in the same form: all of them, most of the time), and reads the attempt's
-- columns off the row, which the first statement left as they were. Two statements for the whole round, not two per outcome:
-- they run with the write lock held, and every statement is a moment the worker's other
-- threads may take the interpreter from the one holding it. A retry of a job someone
-- asked to cancel ends it cancelled instead. With :alone, only jobs whose end moves
-- nothing else (no concurrency key, schedule or workflow run) are applied (finish_alone).
UPDATE taskwheel_jobs
SET status = CASE WHEN cancel_requested = 1 AND r.status IN ('queued', 'scheduled')
                  THEN 'cancelled' ELSE r.status END,
    result = r.result,
    last_error = r.error,
    run_at = CASE WHEN r.status IN ('queued', 'scheduled') THEN :now + r.retry_delay
                  ELSE run_at END,
    finished_at = CASE WHEN r.status IN ('queued', 'scheduled') AND cancel_requested = 0
                       THEN NULL ELSE :now END,
    lease_expires_at = NULL
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS fence,
             json_extract(value, '$[2]') AS status, json_extract(value, '$[4]') AS result,
             json_extract(value, '$[5]') AS error, json_extract(value, '$[7]') AS retry_delay
      FROM json_each(:outcomes)) AS r
WHERE taskwheel_jobs.id = r.id AND taskwheel_jobs.fence = r.fence
  AND taskwheel_jobs.status = 'running'
  AND (NOT :alone OR (taskwheel_jobs.gate_key IS NULL AND taskwheel_jobs.schedule_id IS NULL
                      AND taskwheel_jobs.workflow_run_id IS NULL))
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id, gate_key;
INSERT INTO taskwheel_attempts (
    namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
    result, error, traceback)
SELECT job.namespace, job.id, job.attempt, job.fence, job.worker_id,
       coalesce(job.started_at, :now), :now, json_extract(r.value, '$[3]'),
       json_extract(r.value, '$[4]'), json_extract(r.value, '$[5]'),
       json_extract(r.value, '$[6]')
FROM json_each(:applied) AS r
JOIN taskwheel_jobs AS job ON job.id = json_extract(r.value, '$[0]');

-- name: release_queue_one
-- queue_one: the waiting jobs of the schedules :schedule_ids (JSON; whose jobs just
-- ended) become ready once no earlier job of their schedule is unfinished (waiting_on 1
-- marks one waiting for its turn; 0, one waiting for its rate key's tokens).
UPDATE taskwheel_jobs SET status = 'queued', run_at = max(run_at, :now), waiting_on = 0
WHERE status = 'waiting' AND waiting_on > 0
  AND schedule_id IN (SELECT value FROM json_each(:schedule_ids))
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs AS earlier
      WHERE earlier.schedule_id = taskwheel_jobs.schedule_id AND earlier.id < taskwheel_jobs.id
        AND earlier.status IN ('scheduled', 'queued', 'running'))
RETURNING id, namespace

-- name: release_waiting
-- The same for every schedule of :namespace (on jobs_status, named: once the table has
-- been analysed, the planner would rather walk every fired job of every schedule).
UPDATE taskwheel_jobs INDEXED BY taskwheel_jobs_status
SET status = 'queued', run_at = max(run_at, :now), waiting_on = 0
WHERE namespace = :namespace AND status = 'waiting' AND schedule_id IS NOT NULL
  AND waiting_on > 0
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs AS earlier
      WHERE earlier.schedule_id = taskwheel_jobs.schedule_id AND earlier.id < taskwheel_jobs.id
        AND earlier.status IN ('scheduled', 'queued', 'running'))
RETURNING id

-- name: release_jobs
-- A lease the worker gives back, run for each: recorded as an interrupted attempt (the
-- attempt as it stands, before it is given back), then at-least-once jobs go back to the
-- queue without using up an attempt, at-most-once jobs die (they may have run).
INSERT INTO taskwheel_attempts (
    namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
    result, error, traceback)
SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, :now), :now,
       'interrupted', NULL, 'worker shut down before the job finished', NULL
FROM taskwheel_jobs
WHERE id = :id AND fence = :fence AND worker_id = :worker_id AND status = 'running';
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
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;

-- name: save_checkpoint
UPDATE taskwheel_jobs SET checkpoint = :state
WHERE id = :id AND fence = :fence AND status = 'running'

-- name: rescue_expired
-- Jobs of :namespaces (JSON) whose lease expired, slotted or not (:slotted; see
-- PostgreSQL's): each recorded as a lease_expired attempt (from the row as it stands),
-- then requeued (at-least-once with attempts left, not asked to cancel), then the others
-- ended (dead, or cancelled when that was asked); the answer is the rows of both. Workers
-- silent for a day are gone for good. (The single writer needs no lock order: the store
-- rescues slotted jobs apart for PostgreSQL's sake.)
INSERT INTO taskwheel_attempts (
    namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
    result, error, traceback)
SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, :now), :now,
       'lease_expired', NULL, 'lease expired: the worker stopped heartbeating', NULL
FROM taskwheel_jobs
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND status = 'running'
  AND lease_expires_at < :now AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL) = :slotted;
UPDATE taskwheel_jobs SET status = 'queued', lease_expires_at = NULL, run_at = :now
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND status = 'running'
  AND lease_expires_at < :now AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL) = :slotted
  AND guarantee = 'at_least_once' AND attempt < max_attempts AND cancel_requested = 0
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;
UPDATE taskwheel_jobs
SET status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'dead' END,
    finished_at = :now, lease_expires_at = NULL,
    last_error = CASE WHEN guarantee = 'at_most_once'
                      THEN 'lease expired: the worker vanished (at-most-once: not run again)'
                      ELSE 'lease expired: the worker vanished on the last attempt' END
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND status = 'running'
  AND lease_expires_at < :now AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL) = :slotted
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;
DELETE FROM taskwheel_workers
WHERE namespace IN (SELECT value FROM json_each(:namespaces))
  AND last_seen_at < :now - 86400;

-- name: expired_slotted_namespaces
-- The namespaces of :namespaces (JSON) with a slotted job (see rescue_expired) whose
-- lease expired, in order.
SELECT DISTINCT namespace FROM taskwheel_jobs
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND status = 'running'
  AND lease_expires_at < :now AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL)
ORDER BY namespace

-- name: lock_running_of_worker
-- The jobs a worker is running (on jobs_worker), in id order; the write transaction holds
-- the whole database, so nobody changes them until it ends.
SELECT * FROM taskwheel_jobs
WHERE worker_id = :worker_id AND status = 'running'
ORDER BY id

-- name: end_attempts_of_worker
-- An attempt of a worker whose process died, run for each (:id, :fence, :retry_delay):
-- recorded as a crashed attempt with :error (from the row as it stands), then requeued
-- after :retry_delay (at-least-once with attempts left, not asked to cancel), else ended
-- (dead, or cancelled when that was asked; an at-most-once job never runs again: its body
-- may have finished). The answer is the row moved.
INSERT INTO taskwheel_attempts (
    namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
    result, error, traceback)
SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, :now), :now,
       'crashed', NULL, :error, NULL
FROM taskwheel_jobs
WHERE id = :id AND fence = :fence AND worker_id = :worker_id AND status = 'running';
UPDATE taskwheel_jobs
SET status = CASE
        WHEN guarantee = 'at_least_once' AND attempt < max_attempts AND cancel_requested = 0
            THEN CASE WHEN :retry_delay > 0 THEN 'scheduled' ELSE 'queued' END
        WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'dead' END,
    run_at = CASE
        WHEN guarantee = 'at_least_once' AND attempt < max_attempts AND cancel_requested = 0
            THEN :now + :retry_delay ELSE run_at END,
    finished_at = CASE
        WHEN guarantee = 'at_least_once' AND attempt < max_attempts AND cancel_requested = 0
            THEN NULL ELSE :now END,
    last_error = CASE WHEN guarantee = 'at_most_once'
                      THEN :error || ' (at-most-once: not run again)' ELSE :error END,
    lease_expires_at = NULL
WHERE id = :id AND fence = :fence AND worker_id = :worker_id AND status = 'running'
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id;

-- name: forget_worker
-- A worker that died: its registration, and the leases it held (any namespace).
DELETE FROM taskwheel_leases WHERE holder = :worker_id;
DELETE FROM taskwheel_workers WHERE id = :worker_id;

-- name: lock_jobs
-- In id order. The transaction holds the write lock of the whole database: nobody else
-- changes them until it ends. By primary key: the unary + keeps the planner off the
-- namespace index, which would read every job of the namespace (as in get_jobs).
SELECT * FROM taskwheel_jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND +namespace = :namespace
ORDER BY id

-- name: request_cancel
UPDATE taskwheel_jobs SET cancel_requested = 1
WHERE namespace = :namespace AND id = :id AND status = 'running'

-- name: cancel_pending
UPDATE taskwheel_jobs SET status = 'cancelled', finished_at = :now
WHERE namespace = :namespace AND id = :id AND status IN ('scheduled', 'waiting', 'queued')
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id

-- name: requeue_finished
-- A job cancelled or expired while a pause held it kept its blocked flag: it starts
-- unblocked (the gate triggers, while a gate stands, block it again; with none left they
-- do not exist and it would wait forever).
UPDATE taskwheel_jobs
SET status = 'queued', attempt = 0, run_at = :now, finished_at = NULL, result = NULL,
    cancel_requested = 0, worker_id = NULL, lease_expires_at = NULL, blocked = 0,
    deadline = CASE WHEN status = 'expired' THEN NULL ELSE deadline END
WHERE namespace = :namespace AND id = :id AND status = :expected_status
RETURNING *

-- name: dead_ids
SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead' ORDER BY id

-- name: purge_dead
-- The dead jobs' edges (a deleted job's id may be given to a new job, which must not
-- inherit them), their attempts, then the jobs (the answer is how many). :ids, when not
-- NULL, is a JSON list: only the dead jobs among them.
DELETE FROM taskwheel_job_deps
WHERE job_id IN (SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead'
                 AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids))))
   OR depends_on IN (
       SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead'
       AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids))));
DELETE FROM taskwheel_attempts WHERE job_id IN (
    SELECT id FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead'
    AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids))));
DELETE FROM taskwheel_jobs WHERE namespace = :namespace AND status = 'dead'
    AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)));

-- name: delete_jobs
-- The jobs of :ids (a JSON list) in the namespace whatever their state, their edges first
-- (a deleted job's id may be given to a new job, which must not inherit them), then their
-- attempts, then the jobs (the answer is how many).
DELETE FROM taskwheel_job_deps
WHERE job_id IN (SELECT id FROM taskwheel_jobs WHERE +namespace = :namespace
                 AND id IN (SELECT value FROM json_each(:ids)))
   OR depends_on IN (SELECT id FROM taskwheel_jobs WHERE +namespace = :namespace
                     AND id IN (SELECT value FROM json_each(:ids)));
DELETE FROM taskwheel_attempts WHERE job_id IN (
    SELECT id FROM taskwheel_jobs WHERE +namespace = :namespace
    AND id IN (SELECT value FROM json_each(:ids)));
DELETE FROM taskwheel_jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND +namespace = :namespace

-- name: get_jobs
-- By primary key (see lock_jobs).
SELECT * FROM taskwheel_jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND +namespace = :namespace
ORDER BY id

-- name: list_jobs
SELECT * FROM taskwheel_jobs
WHERE namespace = :namespace
  AND (:status IS NULL OR status = :status)
  AND (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit

-- name: list_attempts
SELECT * FROM taskwheel_attempts WHERE namespace = :namespace AND job_id = :job_id ORDER BY id

-- name: finished_per_minute
SELECT CAST(ended_at / 60 AS INTEGER) * 60 AS minute, outcome, count(*)
FROM taskwheel_attempts WHERE namespace = :namespace AND ended_at >= :since
GROUP BY 1, 2 ORDER BY 1, 2

-- schedules -----------------------------------------------------------------------------------

-- name: upsert_schedule
-- A changed spec takes the caller's first fire time; an unchanged one keeps its own.
-- The writer becomes the schedule's declarer (NULL: written by hand); nothing is
-- written when neither changes.
INSERT INTO taskwheel_schedules (
    namespace, name, spec, next_fire_at, declared_by, created_at, updated_at, changed_at
)
VALUES (:namespace, :name, :spec, :next_fire_at, :declared_by, :now, :now, :now)
ON CONFLICT (namespace, name) DO UPDATE
SET spec = excluded.spec,
    next_fire_at = CASE WHEN taskwheel_schedules.spec != excluded.spec
                        THEN excluded.next_fire_at ELSE taskwheel_schedules.next_fire_at END,
    declared_by = excluded.declared_by,
    updated_at = excluded.updated_at, changed_at = excluded.changed_at
WHERE taskwheel_schedules.spec != excluded.spec
   OR taskwheel_schedules.declared_by IS NOT excluded.declared_by

-- name: schedule_by_name
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.namespace = :namespace AND s.name = :name

-- name: schedules_by_id
-- The schedule :id if it is of :namespaces (JSON) -- a scheduler's usual read, one
-- schedule due at a time: its one row's namespace looked up in the JSON (an IN list
-- would cost SQLite a transient table, more than the lookup)...
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.id = :id AND EXISTS (SELECT 1 FROM json_each(:namespaces) WHERE value = s.namespace);
-- ...or those of :ids (JSON) (a burst's: the namespaces' list made once for them all).
-- By primary key: the unary + keeps the planner off the namespace index, which would
-- scan every schedule of the namespaces for each fire.
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.id IN (SELECT value FROM json_each(:ids))
  AND +s.namespace IN (SELECT value FROM json_each(:namespaces))

-- name: list_schedules
-- Every schedule of a namespace; with :declared_by, only the active ones an app declared
-- (a scheduler's start looks for those its app no longer declares, without reading the
-- others: a namespace may hold a million schedules).
SELECT s.*, j.status AS last_job_status FROM taskwheel_schedules s
LEFT JOIN taskwheel_jobs j ON j.id = s.last_job_id
WHERE s.namespace = :namespace
  AND (:declared_by IS NULL
       OR (s.declared_by = :declared_by AND NOT s.paused AND s.next_fire_at IS NOT NULL))
ORDER BY s.name

-- name: pause_schedule
UPDATE taskwheel_schedules SET paused = :paused, updated_at = :now, changed_at = :now
WHERE namespace = :namespace AND name = :name

-- name: remove_schedule
DELETE FROM taskwheel_schedules WHERE namespace = :namespace AND name = :name

-- name: schedules_due
-- Each namespace of :namespaces (JSON) read as its own range of schedules_due. With
-- :partition_count > 0, only the ids whose remainder is in :partitions (JSON): the
-- index holds the id (the rowid), so the filter runs on its entries and the other
-- schedulers' rows are never read from the table nor returned.
SELECT id, next_fire_at FROM taskwheel_schedules INDEXED BY taskwheel_schedules_due
WHERE namespace IN (SELECT value FROM json_each(:namespaces))
  AND paused = 0 AND next_fire_at IS NOT NULL
  AND next_fire_at > :after AND next_fire_at <= :until
  AND (:partition_count = 0
       OR id % :partition_count IN (SELECT value FROM json_each(:partitions)))

-- name: schedules_changed
SELECT id, CASE WHEN paused = 0 THEN next_fire_at END
FROM taskwheel_schedules INDEXED BY taskwheel_schedules_changed
WHERE namespace IN (SELECT value FROM json_each(:namespaces)) AND changed_at >= :since

-- name: holders_of
-- The live holder of each of the leases named in :names (JSON) that has one. The
-- transaction holds the write lock of the whole database: nobody can take a lease over
-- while its holder acts under it.
SELECT name, holder FROM taskwheel_leases
WHERE namespace = :namespace AND name IN (SELECT value FROM json_each(:names))
  AND expires_at >= :now

-- name: advance_schedules
-- Applies a plan to its schedule, of :namespaces (JSON), only if the schedule is where
-- the plan found it (the answer: whether it moved)... (Its one row's namespace looked
-- up in the JSON: an IN list would cost SQLite a transient table, more than the lookup.)
UPDATE taskwheel_schedules
SET next_fire_at = :next_fire_at, last_fire_at = coalesce(:last_fire_at, last_fire_at),
    updated_at = :now
WHERE id = :id AND EXISTS (SELECT 1 FROM json_each(:namespaces) WHERE value = namespace)
  AND paused = 0 AND next_fire_at = :expected;
-- ...or plans that move alike (the same times) to their schedules, :ids (JSON): the ids
-- of those that moved. (A statement with RETURNING costs SQLite a transient table, more
-- than the rest of one plan's update: one plan alone takes the first form.)
UPDATE taskwheel_schedules
SET next_fire_at = :next_fire_at, last_fire_at = coalesce(:last_fire_at, last_fire_at),
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
  AND +namespace IN (SELECT value FROM json_each(:namespaces))
  AND paused = 0 AND next_fire_at = :expected
RETURNING id

-- name: unfinished_of_schedule
SELECT status FROM taskwheel_jobs INDEXED BY taskwheel_jobs_schedule_unfinished
WHERE schedule_id = :schedule_id
  AND status IN ('scheduled', 'waiting', 'queued', 'running')

-- name: insert_fired_jobs
-- The job of a fire (its id the answer); nothing when the (schedule, fire time) has one
-- already. A job that waits for its turn (queue_one) is marked so (waiting_on 1): not
-- one waiting for tokens...
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, schedule_id, fire_at, waiting_on)
VALUES (:namespace, :task, :queue, :args, :kwargs, :status, :priority, :run_at, :deadline,
        :timeout, :max_attempts, :guarantee, :deadline_policy, :now, :schedule_id, :fire_at,
        :status = 'waiting')
ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING;
-- ...or the jobs of fires alike but for their schedule, one for each of :schedule_ids
-- (JSON), in that order (their ids rising in it), each answered with its schedule (one
-- fire alone takes the first form: see advance_schedules). Only the ids go in JSON:
-- every time is bound, so it is stored exactly as given...
INSERT INTO taskwheel_jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, schedule_id, fire_at, waiting_on)
SELECT :namespace, :task, :queue, :args, :kwargs, :status, :priority, :run_at, :deadline,
       :timeout, :max_attempts, :guarantee, :deadline_policy, :now, f.value, :fire_at,
       :status = 'waiting'
FROM json_each(:schedule_ids) f
WHERE true  -- (an INSERT from a SELECT takes an ON CONFLICT only after a WHERE)
ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING
RETURNING id, schedule_id;
-- ...then, once all are written, each schedule's last job (run for each).
UPDATE taskwheel_schedules SET last_job_id = :job_id WHERE id = :schedule_id

-- name: trace_jobs
-- By primary key (see lock_jobs).
UPDATE taskwheel_jobs SET trace_parent = :trace_parent
WHERE id IN (SELECT value FROM json_each(:ids)) AND +namespace = :namespace

-- name: unfinished_workflow_run
-- Overlap of a workflow schedule: a run it fired that is still going.
SELECT 1 FROM taskwheel_workflow_runs
WHERE schedule_id = :schedule_id AND status = 'running'
LIMIT 1

-- maintenance ---------------------------------------------------------------------------------

-- name: prune
-- Up to :limit jobs that ended before :before with their attempts and edges, the leases
-- that lapsed before it, and the finished runs left without steps; the answer is how many
-- jobs (the sixth statement's count). Dead jobs stay: the dead-letter queue is emptied by
-- purge_dead only. The steps of a run still going are kept: its later steps read their
-- results. The jobs are chosen once into a table of this connection's own, which the
-- deletes read: through taskwheel_jobs_status, a range of finished_at (the oldest first)
-- per ended status and queue of the namespace. The lanes are found one index seek each
-- (the next queue after the last), so a pass reads only the jobs it deletes, however
-- many finished jobs are kept.
DELETE FROM taskwheel_leases WHERE namespace = :namespace AND expires_at < :before;
CREATE TEMP TABLE IF NOT EXISTS taskwheel_prunable (id INTEGER PRIMARY KEY);
INSERT INTO temp.taskwheel_prunable
WITH RECURSIVE ended(status) AS (
    VALUES ('succeeded'), ('cancelled'), ('expired'), ('upstream_failed'), ('skipped')
), lane(status, queue) AS (
    SELECT status, (SELECT min(queue) FROM taskwheel_jobs
                    WHERE namespace = :namespace AND status = ended.status)
    FROM ended
    UNION ALL
    SELECT status, (SELECT min(queue) FROM taskwheel_jobs
                    WHERE namespace = :namespace AND status = lane.status
                      AND queue > lane.queue)
    FROM lane WHERE queue IS NOT NULL
)
SELECT job.id FROM lane
JOIN taskwheel_jobs AS job INDEXED BY taskwheel_jobs_status
  ON job.namespace = :namespace AND job.status = lane.status AND job.queue = lane.queue
 AND job.finished_at < :before
WHERE NOT EXISTS (
    SELECT 1 FROM taskwheel_workflow_runs AS run
    WHERE run.id = job.workflow_run_id AND run.status = 'running')
LIMIT :limit;
-- Edges first: a deleted job's id may be given to a new job, which must not inherit them.
DELETE FROM taskwheel_job_deps
WHERE job_id IN (SELECT id FROM temp.taskwheel_prunable)
   OR depends_on IN (SELECT id FROM temp.taskwheel_prunable);
DELETE FROM taskwheel_attempts WHERE job_id IN (SELECT id FROM temp.taskwheel_prunable);
DELETE FROM taskwheel_jobs WHERE id IN (SELECT id FROM temp.taskwheel_prunable);
DELETE FROM taskwheel_workflow_runs
WHERE namespace = :namespace AND status != 'running' AND finished_at < :before
  AND NOT EXISTS (
      SELECT 1 FROM taskwheel_jobs WHERE workflow_run_id = taskwheel_workflow_runs.id);
DELETE FROM temp.taskwheel_prunable

-- workers and leases --------------------------------------------------------------------------

-- name: register_worker
INSERT INTO taskwheel_workers (
    id, namespace, hostname, pid, queues, concurrency, pool, heartbeat_interval,
    started_at, last_seen_at)
VALUES (:id, :namespace, :hostname, :pid, :queues, :concurrency, :pool, :heartbeat_interval,
        :now, :now)
ON CONFLICT (id) DO UPDATE SET last_seen_at = :now

-- name: unregister_worker
DELETE FROM taskwheel_workers WHERE id = :worker_id

-- name: elect_many
-- One name (run for each, sorted): the lease, if it is free, lapsed or already ours, is
-- (re)taken for ttl from now.
INSERT INTO taskwheel_leases (namespace, name, holder, expires_at)
VALUES (:namespace, :name, :holder, :now + :ttl)
ON CONFLICT (namespace, name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at,
    term = term + (taskwheel_leases.holder != excluded.holder)
WHERE taskwheel_leases.holder = excluded.holder OR taskwheel_leases.expires_at < :now
RETURNING holder

-- name: lease_holders
-- substr, not LIKE: the prefix is literal (a "_" in it is no wildcard).
SELECT name, holder FROM taskwheel_leases
WHERE namespace = :namespace AND substr(name, 1, length(:prefix)) = :prefix
  AND expires_at >= :now

-- name: resign
DELETE FROM taskwheel_leases WHERE namespace = :namespace AND name = :name AND holder = :holder

-- stats ---------------------------------------------------------------------------------------

-- name: count_by_state
-- Off the status index alone (namespace, status, queue): no job row is read.
SELECT queue, status, count(*) FROM taskwheel_jobs WHERE namespace = :namespace
GROUP BY queue, status

-- name: start_waits
-- From ready (due, or created if due before) to started, for the jobs whose latest
-- attempt started at :since or later (claims set started_at; retries move run_at on).
SELECT queue, priority, count(*),
       avg(max(0, started_at - max(run_at, created_at))),
       max(max(0, started_at - max(run_at, created_at)))
FROM taskwheel_jobs
WHERE namespace = :namespace AND started_at >= :since
GROUP BY queue, priority

-- name: depth_by_priority
-- The unfinished and dead jobs by queue, state and priority (the status index finds
-- them: finished jobs, however many, are not read). A job is ready since it was due, or
-- since it was created if it was due before that (enqueued --at a past time).
SELECT queue, status, priority, count(*),
       min(max(run_at, created_at)) FILTER (WHERE status = 'queued')
FROM taskwheel_jobs
WHERE namespace = :namespace AND status IN ('scheduled', 'waiting', 'queued', 'running', 'dead')
GROUP BY queue, status, priority

-- name: list_workers
SELECT * FROM taskwheel_workers WHERE namespace = :namespace ORDER BY started_at

-- name: slowest_heartbeat
-- The longest heartbeat interval of the workers registered for a namespace or for every
-- namespace (all of them, asked for every namespace), alive or not: how long the rescue
-- gives them once the store is back.
SELECT max(heartbeat_interval) AS slowest FROM taskwheel_workers
WHERE namespace IN (:namespace, :every_namespace) OR :namespace = :every_namespace

-- observation (stores/observation.py) --------------------------------------------------------

-- name: jobs_ahead
-- The ready jobs of a job's queue that a claim takes before it, in the claim's order
-- (taskwheel_jobs_ready's: rank, that is priority and aging, then fair pass, deadline
-- with none last, due time, id), counted by priority: the queued jobs of the queue,
-- less those waiting for a concurrency slot (blocked), which no claim takes. The order
-- is one row comparison, every column ascending (the rank negated), with the job's own
-- row as stored: a due time read back through a datetime is rounded to the
-- microsecond, and rounded up it put the job ahead of itself.
SELECT j.priority, count(*) AS count
FROM taskwheel_jobs AS me JOIN taskwheel_jobs AS j
    ON j.namespace = me.namespace AND j.queue = me.queue
WHERE me.id = :id AND j.status = 'queued' AND j.blocked = 0
  AND (-(j.priority + j.rank_offset), j.fair_pass, coalesce(j.deadline, 1e308), j.run_at, j.id)
      < (-(me.priority + me.rank_offset), me.fair_pass, coalesce(me.deadline, 1e308),
         me.run_at, me.id)
GROUP BY j.priority ORDER BY j.priority DESC

-- name: depth_by_band
-- What a metrics scrape reports: every namespace's unfinished and dead jobs by queue,
-- state and priority; for ready ones, when the first became ready (see
-- depth_by_priority). The namespaces are found by a skip along jobs_status, and each
-- one's rows of those states read off it: the finished jobs are never read. (A plain
-- WHERE status IN (...) was a scan of the whole index, finished jobs included, at each
-- scrape.)
WITH RECURSIVE spaces(namespace) AS (
    SELECT min(namespace) FROM taskwheel_jobs
    UNION ALL
    SELECT (SELECT min(namespace) FROM taskwheel_jobs WHERE namespace > spaces.namespace)
    FROM spaces WHERE spaces.namespace IS NOT NULL
)
SELECT j.namespace, j.queue, j.status, j.priority, count(*) AS count,
       min(CASE WHEN j.status = 'queued' THEN max(j.run_at, j.created_at) END)
           AS first_ready
FROM spaces JOIN taskwheel_jobs AS j INDEXED BY taskwheel_jobs_status
    ON j.namespace = spaces.namespace
WHERE j.status IN ('scheduled', 'waiting', 'queued', 'running', 'dead')
GROUP BY j.namespace, j.queue, j.status, j.priority

-- name: all_workers
SELECT * FROM taskwheel_workers ORDER BY started_at, id

-- alerts (stores/alerting.py) ------------------------------------------------------------------

-- name: upsert_alert_rule
-- A rule defined again keeps its creation time and where it stands.
INSERT INTO taskwheel_alert_rules (namespace, name, kind, spec, url, secret, created_at)
VALUES (:namespace, :name, :kind, :spec, :url, :secret, :now)
ON CONFLICT (namespace, name) DO UPDATE SET
    kind = excluded.kind, spec = excluded.spec, url = excluded.url, secret = excluded.secret
RETURNING *

-- name: alert_rule
SELECT * FROM taskwheel_alert_rules WHERE namespace = :namespace AND name = :name

-- name: list_alert_rules
SELECT * FROM taskwheel_alert_rules WHERE namespace = :namespace ORDER BY name

-- name: alert_namespaces
SELECT DISTINCT namespace FROM taskwheel_alert_rules ORDER BY namespace

-- name: delete_alert_rule
DELETE FROM taskwheel_alert_rules WHERE namespace = :namespace AND name = :name RETURNING name

-- name: delete_alert_deliveries
DELETE FROM taskwheel_alert_deliveries WHERE namespace = :namespace AND rule = :name

-- name: fire_alert
-- ok -> firing, once: of two evaluators only the first finds it ok. The answer is the
-- number of this firing.
UPDATE taskwheel_alert_rules
SET state = 'firing', firing = firing + 1, changed_at = :now, value = :value,
    evaluated_at = :now
WHERE namespace = :namespace AND name = :name AND state = 'ok'
RETURNING firing

-- name: resolve_alert
-- firing -> ok, once; the answer is the number of the firing it resolves.
UPDATE taskwheel_alert_rules
SET state = 'ok', changed_at = :now, value = :value, evaluated_at = :now
WHERE namespace = :namespace AND name = :name AND state = 'firing'
RETURNING firing

-- name: note_alert_value
UPDATE taskwheel_alert_rules SET value = :value, evaluated_at = :now
WHERE namespace = :namespace AND name = :name

-- name: insert_alert_delivery
-- Nothing when this (rule, firing, event) has one already.
INSERT INTO taskwheel_alert_deliveries (namespace, rule, firing, event, url, body, next_at, created_at)
VALUES (:namespace, :name, :firing, :event, :url, :body, :now, :now)
ON CONFLICT (namespace, rule, firing, event) DO NOTHING
RETURNING *

-- name: due_alert_deliveries
SELECT * FROM taskwheel_alert_deliveries
WHERE namespace = :namespace AND status = 'pending' AND next_at <= :now
ORDER BY next_at, id
LIMIT :limit

-- name: record_alert_delivery
UPDATE taskwheel_alert_deliveries
SET attempts = attempts + 1, status = :status, next_at = :next_at,
    last_status_code = :status_code, last_error = :error,
    delivered_at = CASE WHEN :status = 'delivered' THEN :now END
WHERE id = :id
RETURNING *

-- name: list_alert_deliveries
SELECT * FROM taskwheel_alert_deliveries
WHERE namespace = :namespace AND rule = :name
ORDER BY id DESC
LIMIT :limit

-- name: alert_attempts
-- failure_rate: the task's attempts that ended since :since, and those that failed (an
-- attempt cancelled or given back at shutdown is neither).
SELECT count(*) AS total,
       coalesce(sum(CASE WHEN a.outcome IN ('failed', 'timed_out', 'crashed', 'lease_expired')
                         THEN 1 ELSE 0 END), 0) AS failed
FROM taskwheel_attempts AS a JOIN taskwheel_jobs AS j ON j.id = a.job_id
WHERE a.namespace = :namespace AND j.task = :task AND a.ended_at >= :since
  AND a.outcome NOT IN ('cancelled', 'interrupted')

-- name: alert_dead_since
-- dlq_growing: jobs (of :queue, when given) that went dead since :since.
SELECT count(*) AS count FROM taskwheel_jobs
WHERE namespace = :namespace AND status = 'dead' AND finished_at >= :since
  AND (:queue IS NULL OR queue = :queue)

-- name: alert_first_ready
-- oldest_ready: when the oldest ready job of :queue (at :priority, when given) became
-- ready (see depth_by_priority).
SELECT min(max(run_at, created_at)) AS first_ready FROM taskwheel_jobs
WHERE namespace = :namespace AND status = 'queued' AND queue = :queue
  AND (:priority IS NULL OR priority = :priority)

-- name: alert_late_schedules
-- schedule_missed: active schedules (:schedule, when given) whose fire time is before
-- :before: nobody fired them.
SELECT name, next_fire_at FROM taskwheel_schedules
WHERE namespace = :namespace AND paused = 0 AND next_fire_at IS NOT NULL
  AND next_fire_at < :before AND (:schedule IS NULL OR name = :schedule)
ORDER BY next_fire_at
LIMIT 20

-- workflows (sqlite/workflow_steps.py) --------------------------------------------------------

-- name: insert_run
-- A run, a job per step and the edges; nothing when the (schedule, fire time) has a run
-- already (then the executor runs nothing more). Unlike the other blocks, its statements
-- take parameters of their own: the run by name; then each step (executemany),
-- positional in column order, with its id (reserve_jobs: ids ascend in the order of the
-- steps) and the run's; then each edge (executemany), positional.
INSERT INTO taskwheel_workflow_runs (
    namespace, name, status, on_failure, created_at, schedule_id, fire_at)
VALUES (:namespace, :name, 'running', :on_failure, :now, :schedule_id, :fire_at)
ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING;
INSERT INTO taskwheel_jobs (
    id, namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, workflow_run_id, step,
    failure_policy, waiting_on)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
INSERT INTO taskwheel_job_deps (namespace, run_id, depends_on, job_id) VALUES (?, ?, ?, ?);

-- name: release_dependents
-- One dependency fewer to wait for (run for each step that ended); the last one makes the
-- step ready.
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

-- name: cancel_pending_steps
UPDATE taskwheel_jobs
SET status = 'cancelled', finished_at = :now, waiting_on = 0, last_error = :error
WHERE workflow_run_id = :run_id AND status IN ('waiting', 'queued', 'scheduled')

-- name: request_cancel_running_steps
UPDATE taskwheel_jobs SET cancel_requested = 1
WHERE workflow_run_id = :run_id AND status = 'running' AND cancel_requested = 0

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

-- name: finish_run
UPDATE taskwheel_workflow_runs SET status = :status, finished_at = :now
WHERE id = :id AND status = 'running'

-- name: lock_run
-- The transaction holds the write lock of the whole database: nobody changes the run
-- before it ends.
SELECT 1 FROM taskwheel_workflow_runs WHERE namespace = :namespace AND id = :id

-- name: request_cancel_run
UPDATE taskwheel_workflow_runs SET cancel_requested = 1
WHERE namespace = :namespace AND id = :id AND status = 'running'

-- name: reopen_run
UPDATE taskwheel_workflow_runs SET status = 'running', finished_at = NULL, cancel_requested = 0
WHERE id = :id

-- name: reset_steps
-- A retried step (run for each) starts afresh, only while it is still in its expected
-- state; a deadline already passed would expire it at once. It starts unblocked, as
-- requeue_finished says why.
UPDATE taskwheel_jobs
SET status = :status, waiting_on = :waiting_on, attempt = 0, run_at = :now,
    finished_at = NULL, result = NULL, cancel_requested = 0, worker_id = NULL,
    lease_expires_at = NULL, blocked = 0,
    deadline = CASE WHEN deadline <= :now THEN NULL ELSE deadline END
WHERE id = :id AND status = :expected_status
RETURNING namespace

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

-- name: upstream_outcomes
SELECT j.id, j.step, j.status, j.result, j.last_error
FROM taskwheel_job_deps AS d JOIN taskwheel_jobs AS j ON j.id = d.depends_on
WHERE d.job_id = :job_id AND j.namespace = :namespace
ORDER BY j.id

-- API keys and quotas ---------------------------------------------------------------------------

-- name: insert_api_key
INSERT INTO taskwheel_api_keys (prefix, digest, namespace, role, name, created_at)
VALUES (:prefix, :digest, :namespace, :role, :name, :now)
RETURNING *

-- name: api_key
SELECT * FROM taskwheel_api_keys WHERE prefix = :prefix

-- name: list_api_keys
SELECT * FROM taskwheel_api_keys
WHERE :namespace IS NULL OR namespace = :namespace
ORDER BY created_at, prefix

-- name: revoke_api_key
-- Revoking twice keeps the first time.
UPDATE taskwheel_api_keys SET revoked_at = coalesce(revoked_at, :now)
WHERE prefix = :prefix
RETURNING *

-- name: upsert_webhook
-- A webhook defined again keeps its creation time.
INSERT INTO taskwheel_webhooks (namespace, name, task, queue, secret, idempotency_header,
                                idempotency_pointer, created_at)
VALUES (:namespace, :name, :task, :queue, :secret, :idempotency_header, :idempotency_pointer,
        :now)
ON CONFLICT (namespace, name) DO UPDATE SET
    task = excluded.task, queue = excluded.queue, secret = excluded.secret,
    idempotency_header = excluded.idempotency_header,
    idempotency_pointer = excluded.idempotency_pointer
RETURNING *

-- name: webhook
SELECT * FROM taskwheel_webhooks WHERE namespace = :namespace AND name = :name

-- name: list_webhooks
SELECT * FROM taskwheel_webhooks WHERE namespace = :namespace ORDER BY name

-- name: delete_webhook
DELETE FROM taskwheel_webhooks WHERE namespace = :namespace AND name = :name
RETURNING name

-- name: get_quota
SELECT * FROM taskwheel_quotas WHERE namespace = :namespace

-- name: set_quota
-- A changed quota keeps its rate bucket (refilled to the new rate at the next enqueue).
INSERT INTO taskwheel_quotas (namespace, max_queued, max_enqueue_rate, max_active_schedules)
VALUES (:namespace, :max_queued, :max_enqueue_rate, :max_active_schedules)
ON CONFLICT (namespace) DO UPDATE
SET max_queued = excluded.max_queued, max_enqueue_rate = excluded.max_enqueue_rate,
    max_active_schedules = excluded.max_active_schedules

-- name: remove_quota
DELETE FROM taskwheel_quotas WHERE namespace = :namespace

-- name: quota_usage
-- The quota of an enqueue's namespace (the single writer's transaction is the lock),
-- with its jobs waiting to run counted up to one past the limit (none without one).
SELECT q.*,
       (SELECT count(*) FROM (
            SELECT 1 FROM taskwheel_jobs
            WHERE namespace = :namespace AND status IN ('queued', 'scheduled', 'waiting')
            LIMIT (SELECT coalesce(max_queued + 1, 0) FROM taskwheel_quotas
                   WHERE namespace = :namespace))) AS queued
FROM taskwheel_quotas AS q WHERE q.namespace = :namespace

-- name: spend_tokens
UPDATE taskwheel_quotas SET tokens = :tokens, tokens_at = :tokens_at
WHERE namespace = :namespace

-- name: count_active_schedules
SELECT count(*) AS active FROM taskwheel_schedules
WHERE namespace = :namespace AND NOT paused AND next_fire_at IS NOT NULL

-- dispatch control (stores/dispatch.py) ---------------------------------------------------------
-- A gate (a paused queue or task) holds the queued jobs it matches blocked, out of the ready
-- index; the triggers of migration 0008 block the jobs that become queued while it stands.
-- Whether a pause holds a job is two probes of taskwheel_pauses' key, one for its queue and
-- one for its task, never one lookup with an OR: SQLite runs that as a MULTI-INDEX OR with
-- a row set built for every probe, 6 % of a keyed job's claim and report when a freed slot
-- admits the next (migration 0021).

-- name: lock_gates
-- Nothing to take: the write transaction holds the write lock of the whole database.
SELECT 1

-- name: arm_gates
-- The triggers that block jobs becoming queued behind a closed gate, created by a pause
-- (migration 0008 says why they exist only while a gate is closed). The WHEN clauses
-- look for a gate that holds the row. A keyed job becoming queued is the slot triggers'
-- (arm_limits), which look at the pauses too.
CREATE TRIGGER IF NOT EXISTS taskwheel_jobs_gate_inserted AFTER INSERT ON taskwheel_jobs
FOR EACH ROW WHEN NEW.status = 'queued' AND (EXISTS (SELECT 1 FROM taskwheel_pauses
         WHERE namespace = NEW.namespace AND kind = 'queue' AND name = NEW.queue)
  OR EXISTS (SELECT 1 FROM taskwheel_pauses
             WHERE namespace = NEW.namespace AND kind = 'task' AND name = NEW.task))
BEGIN
    UPDATE taskwheel_jobs SET blocked = 1 WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS taskwheel_jobs_gate_ready AFTER UPDATE OF status ON taskwheel_jobs
FOR EACH ROW WHEN NEW.status = 'queued' AND OLD.status <> 'queued' AND NEW.gate_key IS NULL
 AND NEW.blocked <> (EXISTS (SELECT 1 FROM taskwheel_pauses
         WHERE namespace = NEW.namespace AND kind = 'queue' AND name = NEW.queue)
  OR EXISTS (SELECT 1 FROM taskwheel_pauses
             WHERE namespace = NEW.namespace AND kind = 'task' AND name = NEW.task))
BEGIN
    UPDATE taskwheel_jobs SET blocked = 1 - NEW.blocked WHERE id = NEW.id;
END;

-- name: disarm_gates
-- Dropped when the last gate opens (no queued job is blocked any more).
DROP TRIGGER IF EXISTS taskwheel_jobs_gate_inserted;
DROP TRIGGER IF EXISTS taskwheel_jobs_gate_ready;

-- name: any_pauses
SELECT EXISTS (SELECT 1 FROM taskwheel_pauses) AS found

-- name: insert_pause
-- Nothing when the gate stands already (it keeps the time it was first paused).
INSERT INTO taskwheel_pauses (namespace, kind, name, paused_at, until)
VALUES (:namespace, :kind, :name, :now, :until)
ON CONFLICT (namespace, kind, name) DO NOTHING
RETURNING name

-- name: set_pause_until
-- A gate paused again: its new end (NULL: none).
UPDATE taskwheel_pauses SET until = :until
WHERE namespace = :namespace AND kind = :kind AND name = :name

-- name: due_pauses
-- The gates of :namespace whose time is up.
SELECT kind, name FROM taskwheel_pauses
WHERE namespace = :namespace AND until <= :now
ORDER BY kind, name

-- name: block_jobs
-- The queued jobs of the queue or task (:kind, :name) leave the ready index.
UPDATE taskwheel_jobs SET blocked = 1
WHERE namespace = :namespace AND status = 'queued' AND blocked = 0
  AND CASE :kind WHEN 'queue' THEN queue = :name ELSE task = :name END
RETURNING id

-- name: delete_pause
DELETE FROM taskwheel_pauses WHERE namespace = :namespace AND kind = :kind AND name = :name
RETURNING name

-- name: unblock_jobs
-- After delete_pause: the queued jobs of the queue or task go back to the ready index,
-- unless another gate still holds them. Keyed jobs wait for their keys' slots
-- (held_keys, then admit_waiting for each key).
UPDATE taskwheel_jobs SET blocked = 0
WHERE namespace = :namespace AND status = 'queued' AND blocked = 1
  AND gate_key IS NULL
  AND CASE :kind WHEN 'queue' THEN queue = :name ELSE task = :name END
  AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = taskwheel_jobs.namespace
                    AND p.kind = 'queue' AND p.name = taskwheel_jobs.queue)
  AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = taskwheel_jobs.namespace
                    AND p.kind = 'task' AND p.name = taskwheel_jobs.task)
RETURNING id

-- name: held_keys
-- The keys of the queued jobs the queue or task (:kind, :name) held: after
-- delete_pause, each key's waiting jobs are admitted to its free slots.
SELECT DISTINCT gate_key AS key FROM taskwheel_jobs
WHERE namespace = :namespace AND status = 'queued' AND blocked = 1 AND gate_key IS NOT NULL
  AND CASE :kind WHEN 'queue' THEN queue = :name ELSE task = :name END
ORDER BY gate_key

-- name: list_pauses
-- A namespace's gates, with how many queued jobs each holds (a job two gates hold counts
-- in both).
SELECT p.namespace, p.kind, p.name, p.paused_at, p.until,
       (SELECT count(*) FROM taskwheel_jobs AS j
        WHERE j.namespace = p.namespace AND j.status = 'queued' AND j.blocked = 1
          AND CASE p.kind WHEN 'queue' THEN j.queue = p.name ELSE j.task = p.name END) AS held
FROM taskwheel_pauses AS p
WHERE p.namespace = :namespace
ORDER BY p.kind, p.name

-- name: set_queue_limit
INSERT INTO taskwheel_queue_limits (namespace, queue, max_depth)
VALUES (:namespace, :queue, :max_depth)
ON CONFLICT (namespace, queue) DO UPDATE SET max_depth = excluded.max_depth

-- name: delete_queue_limit
DELETE FROM taskwheel_queue_limits WHERE namespace = :namespace AND queue = :queue
RETURNING queue

-- name: list_queue_limits
-- A namespace's queues with a maximum depth, and their depth now.
SELECT l.namespace, l.queue, l.max_depth,
       (SELECT count(*) FROM taskwheel_jobs AS j
        WHERE j.namespace = l.namespace AND j.queue = l.queue
          AND j.status IN ('queued', 'scheduled', 'waiting')) AS depth
FROM taskwheel_queue_limits AS l
WHERE l.namespace = :namespace
ORDER BY l.queue

-- name: lock_queue_limit
-- The maximum depth of an enqueue's queue (the single writer's transaction is the lock);
-- nothing without one.
SELECT max_depth FROM taskwheel_queue_limits WHERE namespace = :namespace AND queue = :queue

-- name: queue_depth
-- Then the queue's jobs waiting to run, counted up to :up_to at most.
SELECT count(*) AS depth FROM (
    SELECT 1 FROM taskwheel_jobs
    WHERE namespace = :namespace AND status IN ('queued', 'scheduled', 'waiting')
      AND queue = :queue
    LIMIT :up_to)

-- key gates (stores/dispatch.py) --------------------------------------------------------------
-- A keyed job holds a slot of its key while it is queued and not blocked, or running; the
-- slots in use are counted on taskwheel_jobs_holding, the waiting jobs read in dispatch
-- order off taskwheel_jobs_gated (migration 0012).

-- name: lock_slots
-- Nothing to take: the write transaction holds the write lock of the whole database.
SELECT 1

-- name: defer_slot_release
-- Not run: the slot triggers give back each slot a report frees in the writer's own
-- process, with the write lock held anyway (PostgreSQL's store defers them, to admit
-- all of a report's keys in one statement).
SELECT 1

-- name: release_slots
-- Not run, likewise.
SELECT 1

-- name: arm_limits
-- The triggers that keep the slots, created with the first key (migration 0012 says why
-- they exist only then). Recursive triggers are off, so neither fires itself again; the
-- room left in a key is the view taskwheel_key_room (migration 0015).
-- A keyed job that becomes queued, or is given its key while queued, takes a slot or
-- waits blocked (a pause holding it blocks it). A blocked job that a freed slot, a
-- resumed key or a resumed queue admits (blocked 1 -> 0) has been given its slot by
-- that statement, which counted the room: this trigger does not run for it again.
CREATE TRIGGER IF NOT EXISTS taskwheel_jobs_slot_taken
AFTER UPDATE OF status, gate_key ON taskwheel_jobs
FOR EACH ROW WHEN NEW.gate_key IS NOT NULL AND NEW.status = 'queued'
 AND (OLD.status <> 'queued' OR OLD.gate_key IS NULL)
BEGIN
    UPDATE taskwheel_jobs
    SET blocked = EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = NEW.namespace
                               AND p.kind = 'queue' AND p.name = NEW.queue)
               OR EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = NEW.namespace
                          AND p.kind = 'task' AND p.name = NEW.task)
               -- the room without this job, which holds a slot now unless blocked
               OR coalesce((SELECT r.room + (NEW.blocked = 0) FROM taskwheel_key_room AS r
                            WHERE r.namespace = NEW.namespace AND r.key = NEW.gate_key)
                           <= 0, 0)
    WHERE id = NEW.id;
END;
-- A job that held a slot and holds it no more (it ended, was cancelled, expired, went
-- back to wait for a retry, or a pause blocked it) gives it to the first waiting job
-- (its fencing token made the move happen once: a stale report moves nothing). One
-- slot freed admits one job: every statement that makes more room (a limit raised, a
-- key resumed, a breaker closed) admits the key's waiting jobs itself (admit_waiting),
-- and maintenance admits any a key still has room for.
CREATE TRIGGER IF NOT EXISTS taskwheel_jobs_slot_freed
AFTER UPDATE OF status, blocked ON taskwheel_jobs
FOR EACH ROW WHEN OLD.gate_key IS NOT NULL AND OLD.status IN ('queued', 'running')
 AND OLD.blocked = 0 AND NOT (NEW.status IN ('queued', 'running') AND NEW.blocked = 0)
BEGIN
    UPDATE taskwheel_jobs SET blocked = 0
    WHERE id = (
        SELECT w.id FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_gated
        WHERE w.namespace = OLD.namespace AND w.gate_key = OLD.gate_key AND w.gate_key IS NOT NULL
          AND w.status = 'queued' AND w.blocked = 1
          AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                                    AND p.kind = 'queue' AND p.name = w.queue)
          AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                                    AND p.kind = 'task' AND p.name = w.task)
        ORDER BY w.priority DESC, coalesce(w.deadline, 1e308), w.run_at, w.id
        LIMIT 1)
      AND coalesce((SELECT r.room FROM taskwheel_key_room AS r
                    WHERE r.namespace = OLD.namespace AND r.key = OLD.gate_key), 1) > 0;
END;

-- name: admit_waiting
-- The free slots of key :key go to the jobs waiting for one, in dispatch order (not
-- those a paused queue or task holds); the answer is the jobs admitted.
UPDATE taskwheel_jobs SET blocked = 0
    WHERE id IN (
        SELECT w.id FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_gated
        WHERE w.namespace = :namespace AND w.gate_key = :key AND w.gate_key IS NOT NULL
          AND w.status = 'queued' AND w.blocked = 1
          AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                                    AND p.kind = 'queue' AND p.name = w.queue)
          AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                                    AND p.kind = 'task' AND p.name = w.task)
        ORDER BY w.priority DESC, coalesce(w.deadline, 1e308), w.run_at, w.id
        LIMIT (SELECT CASE WHEN room IS NULL THEN -1 WHEN room < 0 THEN 0 ELSE room END
               FROM (SELECT (SELECT r.room FROM taskwheel_key_room AS r
                             WHERE r.namespace = :namespace AND r.key = :key) AS room)))
RETURNING id

-- name: job_gate
-- A job's key and whether it waits blocked (for `taskwheel jobs explain`).
SELECT gate_key, blocked FROM taskwheel_jobs WHERE namespace = :namespace AND id = :id

-- name: any_limits
-- Whether any key is known (SQLite's slot triggers exist then).
SELECT EXISTS (SELECT 1 FROM taskwheel_limits) AS found

-- name: declare_limits
-- The keys of an enqueue (:limits, JSON [{namespace, key, capacity, failures, window,
-- cooldown, rate}]) with the slots and breaker rule their tasks declare; a limit set by
-- hand stays as it is.
INSERT INTO taskwheel_limits (namespace, key, capacity, created_at, breaker_failures,
                              breaker_window, breaker_cooldown, breaker_failure_rate)
SELECT json_extract(value, '$.namespace'), json_extract(value, '$.key'),
       json_extract(value, '$.capacity'), :now, json_extract(value, '$.failures'),
       json_extract(value, '$.window'), json_extract(value, '$.cooldown'),
       json_extract(value, '$.rate')
FROM json_each(:limits) WHERE true
ON CONFLICT (namespace, key) DO UPDATE
SET capacity = CASE WHEN taskwheel_limits.set_by_hand THEN taskwheel_limits.capacity
                    ELSE excluded.capacity END,
    breaker_failures = excluded.breaker_failures, breaker_window = excluded.breaker_window,
    breaker_cooldown = excluded.breaker_cooldown,
    breaker_failure_rate = excluded.breaker_failure_rate
WHERE (NOT taskwheel_limits.set_by_hand AND taskwheel_limits.capacity IS NOT excluded.capacity)
   OR taskwheel_limits.breaker_failures IS NOT excluded.breaker_failures
   OR taskwheel_limits.breaker_window IS NOT excluded.breaker_window
   OR taskwheel_limits.breaker_cooldown IS NOT excluded.breaker_cooldown
   OR taskwheel_limits.breaker_failure_rate IS NOT excluded.breaker_failure_rate

-- name: set_gate_keys
-- The enqueue's new jobs get their keys (:keys, JSON [{id, key}]): each takes a slot
-- or waits (taskwheel_jobs_slot_taken).
UPDATE taskwheel_jobs SET gate_key = json_extract(k.value, '$.key')
FROM json_each(:keys) AS k
WHERE taskwheel_jobs.id = json_extract(k.value, '$.id')

-- name: set_limit
-- A key's slots set by hand (a declaration no longer changes them); the row is created
-- if the key has none yet.
INSERT INTO taskwheel_limits (namespace, key, capacity, set_by_hand, created_at)
VALUES (:namespace, :key, :capacity, 1, :now)
ON CONFLICT (namespace, key) DO UPDATE SET capacity = excluded.capacity, set_by_hand = 1

-- name: pause_key
-- A key's gate closed (it keeps the time it was first paused), until :until (NULL: a
-- resume); nothing when the key has no row.
UPDATE taskwheel_limits SET paused_at = coalesce(paused_at, :now), paused_until = :until
WHERE namespace = :namespace AND key = :key
RETURNING key

-- name: block_key
-- The ready jobs of a paused key leave the ready index (giving their slots back).
UPDATE taskwheel_jobs SET blocked = 1
WHERE namespace = :namespace AND gate_key = :key AND status = 'queued' AND blocked = 0
RETURNING id

-- name: resume_key
-- Nothing when the key is not paused.
UPDATE taskwheel_limits SET paused_at = NULL, paused_until = NULL
WHERE namespace = :namespace AND key = :key AND paused_at IS NOT NULL
RETURNING key

-- name: due_key_pauses
-- The keys of :namespace whose pause's time is up.
SELECT key FROM taskwheel_limits
WHERE namespace = :namespace AND paused_until <= :now
ORDER BY key

-- name: waiting_keys
-- The keys of :namespace with jobs waiting for a slot: a skip along taskwheel_jobs_gated.
WITH RECURSIVE waiting(key) AS (
    SELECT min(gate_key) FROM taskwheel_jobs INDEXED BY taskwheel_jobs_gated
    WHERE namespace = :namespace AND gate_key IS NOT NULL AND status = 'queued'
      AND blocked = 1
    UNION ALL
    SELECT (SELECT min(gate_key) FROM taskwheel_jobs INDEXED BY taskwheel_jobs_gated
            WHERE namespace = :namespace AND gate_key > seen.key AND gate_key IS NOT NULL
              AND status = 'queued' AND blocked = 1)
    FROM waiting AS seen WHERE seen.key IS NOT NULL
)
SELECT key FROM waiting WHERE key IS NOT NULL

-- name: list_limits
-- A namespace's keys (one key with :key; all with NULL), with the slots in use and the
-- jobs waiting for one.
SELECT l.namespace, l.key, l.capacity, l.set_by_hand, l.paused_at, l.paused_until,
       l.breaker_state, l.breaker_until, l.failures, l.attempts, l.window_started,
       l.breaker_failures, l.breaker_window, l.breaker_cooldown, l.breaker_failure_rate,
       (SELECT count(*) FROM taskwheel_jobs AS h INDEXED BY taskwheel_jobs_holding
        WHERE h.namespace = l.namespace AND h.gate_key = l.key AND h.gate_key IS NOT NULL
          AND h.status IN ('queued', 'running') AND h.blocked = 0) AS in_use,
       (SELECT count(*) FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_gated
        WHERE w.namespace = l.namespace AND w.gate_key = l.key AND w.gate_key IS NOT NULL
          AND w.status = 'queued' AND w.blocked = 1) AS waiting
FROM taskwheel_limits AS l
WHERE l.namespace = :namespace AND (:key IS NULL OR l.key = :key)
ORDER BY l.key

-- name: touch_limit
-- A key's row, created without a limit when it has none (a breaker opened for a key
-- no job declared).
INSERT INTO taskwheel_limits (namespace, key, created_at) VALUES (:namespace, :key, :now)
ON CONFLICT (namespace, key) DO NOTHING

-- name: breaker_states
-- The breakers of the keyed jobs among :ids (JSON) that have a breaker rule, or a
-- breaker that is not closed, or are in :tripped (JSON: jobs whose task opened one);
-- nothing, at the cost of one probe, while no key has a breaker.
SELECT j.id, j.namespace, j.gate_key AS key, l.breaker_state, l.failures, l.attempts,
       l.window_started, l.breaker_until, l.breaker_failures, l.breaker_window,
       l.breaker_cooldown, l.breaker_failure_rate
FROM json_each(:ids) AS i
JOIN taskwheel_jobs AS j ON j.id = i.value
JOIN taskwheel_limits AS l ON l.namespace = j.namespace AND l.key = j.gate_key
WHERE (EXISTS (SELECT 1 FROM taskwheel_limits
               WHERE breaker_failures IS NOT NULL OR breaker_state <> 'closed')
       OR json_array_length(:tripped) > 0)
  AND j.gate_key IS NOT NULL
  AND (l.breaker_failures IS NOT NULL OR l.breaker_state <> 'closed'
       OR j.id IN (SELECT value FROM json_each(:tripped)))

-- name: key_breaker
-- One key's breaker (nothing without a row).
SELECT namespace, key, breaker_state, failures, attempts, window_started, breaker_until,
       breaker_failures, breaker_window, breaker_cooldown, breaker_failure_rate
FROM taskwheel_limits WHERE namespace = :namespace AND key = :key

-- name: set_breaker
UPDATE taskwheel_limits
SET breaker_state = :state, failures = :failures, attempts = :attempts,
    window_started = :window_started, breaker_until = :until
WHERE namespace = :namespace AND key = :key

-- name: due_breakers
-- The keys of :namespace whose open breaker's time is up.
SELECT key FROM taskwheel_limits
WHERE namespace = :namespace AND breaker_state = 'open' AND breaker_until <= :now
ORDER BY key
-- name: uses_placing
-- Whether jobs written in the namespace need places (`taskwheel.fairness`): it has a
-- fairness flow or a queue that ages. One statement: a fire asks it each time.
SELECT EXISTS (SELECT 1 FROM taskwheel_fair_flows WHERE namespace = :namespace)
       OR EXISTS (SELECT 1 FROM taskwheel_queue_aging WHERE namespace = :namespace) AS found

-- name: is_fair
-- Fair shares and aging (`taskwheel.fairness`): whether the namespace has a fairness flow.
SELECT EXISTS (SELECT 1 FROM taskwheel_fair_flows WHERE namespace = :namespace) AS found

-- name: lock_fair_flow
-- A flow's weight and last pass (the enqueue's write transaction holds the lock).
SELECT weight, last_pass FROM taskwheel_fair_flows
WHERE namespace = :namespace AND key = :key

-- name: save_fair_flow
INSERT INTO taskwheel_fair_flows (namespace, key, last_pass)
VALUES (:namespace, :key, :last_pass)
ON CONFLICT (namespace, key) DO UPDATE SET last_pass = excluded.last_pass

-- name: pass_frontier
-- The lowest pass of the ready jobs of a rank: the first of the rank's range of
-- jobs_ready.
SELECT min(fair_pass) AS frontier FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
WHERE namespace = :namespace AND priority + rank_offset = :rank
  AND status = 'queued' AND blocked = 0

-- name: fair_ceiling
SELECT coalesce(max(last_pass), 0) AS ceiling FROM taskwheel_fair_flows
WHERE namespace = :namespace

-- name: place_job
UPDATE taskwheel_jobs
SET fairness_key = :fairness_key, rank_offset = :rank_offset, fair_pass = :fair_pass
WHERE id = :id

-- name: set_fair_weight
INSERT INTO taskwheel_fair_flows (namespace, key, weight) VALUES (:namespace, :key, :weight)
ON CONFLICT (namespace, key) DO UPDATE SET weight = excluded.weight

-- name: list_fair_flows
SELECT namespace, key, weight, last_pass FROM taskwheel_fair_flows
WHERE namespace = :namespace ORDER BY key

-- name: set_queue_aging
INSERT INTO taskwheel_queue_aging (namespace, queue, rate, cap)
VALUES (:namespace, :queue, :rate, :cap)
ON CONFLICT (namespace, queue) DO UPDATE SET rate = excluded.rate, cap = excluded.cap

-- name: delete_queue_aging
DELETE FROM taskwheel_queue_aging WHERE namespace = :namespace AND queue = :queue
RETURNING queue

-- name: list_queue_aging
SELECT namespace, queue, rate, cap FROM taskwheel_queue_aging
WHERE namespace = :namespace ORDER BY queue

-- name: set_queue_reserve
INSERT INTO taskwheel_queue_reserves (namespace, queue, share, below)
VALUES (:namespace, :queue, :share, :below)
ON CONFLICT (namespace, queue) DO UPDATE SET share = excluded.share, below = excluded.below

-- name: delete_queue_reserve
DELETE FROM taskwheel_queue_reserves WHERE namespace = :namespace AND queue = :queue
RETURNING queue

-- name: list_queue_reserves
SELECT namespace, queue, share, below FROM taskwheel_queue_reserves
WHERE namespace = :namespace ORDER BY queue

-- name: claimed_reserves
-- The reserves of a claim's queues (JSON lists), each with its queue's aging.
SELECT reserve.namespace, reserve.queue, reserve.share, reserve.below, aging.rate, aging.cap
FROM taskwheel_queue_reserves AS reserve
LEFT JOIN taskwheel_queue_aging AS aging
    ON aging.namespace = reserve.namespace AND aging.queue = reserve.queue
WHERE reserve.namespace IN (SELECT value FROM json_each(:namespaces))
  AND reserve.queue IN (SELECT value FROM json_each(:queues))
ORDER BY reserve.namespace, reserve.queue

-- name: claim_reserved
-- claim_jobs for one queue's ready jobs ranked below :rank_below (a reserve's bands),
-- read off jobs_ready from that rank down.
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = :now
WHERE id IN (
    SELECT id FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
    WHERE namespace = :namespace AND priority + rank_offset < :rank_below
      AND status = 'queued' AND blocked = 0 AND queue = :queue
      AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
    ORDER BY priority + rank_offset DESC, fair_pass, coalesce(deadline, 1e308), run_at, id
    LIMIT :limit)
RETURNING *

-- rate limits (stores/rating.py, taskwheel.rates) -----------------------------------------------
-- A rate-limited job waits (status 'waiting', waiting_on 0: a workflow step waiting for
-- its dependencies or a fire for its turn has waiting_on > 0) until the holder of the
-- maintenance lease admits it from its key's bucket; the waiting ones are read in
-- dispatch order off taskwheel_jobs_rate_waiting, the admitted ones counted on
-- taskwheel_jobs_rate_admitted (migrations 0014, 0017).

-- name: any_rates
-- Whether any bucket is known (SQLite's rate trigger exists then).
SELECT EXISTS (SELECT 1 FROM taskwheel_rates) AS found

-- name: arm_rates
-- The trigger that sends a rate-limited job becoming queued without an admission for its
-- fence to wait, created with the first bucket (a claim, which makes rows running, is
-- not looked at by its WHEN clause). The gate and slot triggers then see it leave the
-- queue: a slot it took goes to the next job.
CREATE TRIGGER IF NOT EXISTS taskwheel_jobs_rate_wait AFTER UPDATE OF status ON taskwheel_jobs
FOR EACH ROW WHEN NEW.status = 'queued' AND OLD.status <> 'queued'
 AND NEW.rate_key IS NOT NULL AND NEW.rate_fence IS NOT NEW.fence
BEGIN
    UPDATE taskwheel_jobs SET status = 'waiting', blocked = 0 WHERE id = NEW.id;
END;

-- name: declare_rates
-- The buckets of an enqueue (:rates, JSON [{namespace, key, rate, burst}]) with the rate
-- and burst their tasks declare, full when new; one set by hand stays as it is.
INSERT INTO taskwheel_rates (namespace, key, rate, burst, created_at, tokens, refilled_at)
SELECT json_extract(value, '$.namespace'), json_extract(value, '$.key'),
       json_extract(value, '$.rate'), json_extract(value, '$.burst'), :now,
       json_extract(value, '$.burst'), :now
FROM json_each(:rates) WHERE true
ON CONFLICT (namespace, key) DO UPDATE
SET rate = excluded.rate, burst = excluded.burst
WHERE NOT taskwheel_rates.set_by_hand
  AND (taskwheel_rates.rate <> excluded.rate OR taskwheel_rates.burst <> excluded.burst)

-- name: set_rate_keys
-- The enqueue's new jobs get their rate keys and costs (:keys, JSON [{id, key, cost}]),
-- before their concurrency keys: a ready one waits for its admission instead.
UPDATE taskwheel_jobs
SET rate_key = json_extract(k.value, '$.key'), rate_cost = json_extract(k.value, '$.cost'),
    status = CASE WHEN taskwheel_jobs.status = 'queued' THEN 'waiting'
                  ELSE taskwheel_jobs.status END,
    blocked = 0
FROM json_each(:keys) AS k
WHERE taskwheel_jobs.id = json_extract(k.value, '$.id')

-- name: set_rate
-- A key's rate and burst set by hand (a declaration no longer changes them); the bucket
-- is created full if the key has none yet.
INSERT INTO taskwheel_rates (namespace, key, rate, burst, set_by_hand, created_at, tokens,
                             refilled_at)
VALUES (:namespace, :key, :rate, :burst, 1, :now, :burst, :now)
ON CONFLICT (namespace, key) DO UPDATE
SET rate = excluded.rate, burst = excluded.burst, set_by_hand = 1

-- name: lock_rate_buckets
-- The buckets of :namespace with jobs waiting for tokens (:key: that one alone; NULL:
-- all), locked until the admission commits (the write transaction holds the lock).
SELECT r.key, r.rate, r.burst, r.tokens, r.held, r.refilled_at
FROM taskwheel_rates AS r
WHERE r.namespace = :namespace AND (:key IS NULL OR r.key = :key)
  AND EXISTS (SELECT 1 FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_rate_waiting
              WHERE w.namespace = r.namespace AND w.rate_key = r.key
                AND w.rate_key IS NOT NULL AND w.status = 'waiting' AND w.waiting_on = 0)
ORDER BY r.key

-- name: rate_outstanding
-- What the admitted and not started jobs of each key of :namespace cost, read off the
-- index alone (it holds the cost: migration 0021).
SELECT rate_key AS key, sum(rate_cost) AS cost
FROM taskwheel_jobs INDEXED BY taskwheel_jobs_rate_admitted
WHERE namespace = :namespace AND rate_key IS NOT NULL AND status = 'queued'
GROUP BY rate_key

-- name: rate_waiting_jobs
-- The first :limit jobs of key :key waiting for tokens, in dispatch order, but those a
-- paused queue or task holds, each with its concurrency key's free slots (room: NULL
-- when no limit holds it; 0 when the key is paused or its breaker open). Run once per
-- key of a pass, in this process (PostgreSQL's reads all of a pass's keys at once; here
-- a LIMIT cannot be a column of the key list).
SELECT w.id, w.rate_cost, w.gate_key,
       (SELECT CASE WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open' THEN 0
                    WHEN l.breaker_state = 'half_open' THEN 1 ELSE l.capacity END
               - (SELECT count(*) FROM taskwheel_jobs AS h INDEXED BY taskwheel_jobs_holding
                  WHERE h.namespace = w.namespace AND h.gate_key = w.gate_key
                    AND h.gate_key IS NOT NULL AND h.status IN ('queued', 'running')
                    AND h.blocked = 0)
        FROM taskwheel_limits AS l
        WHERE w.gate_key IS NOT NULL AND l.namespace = w.namespace AND l.key = w.gate_key
       ) AS room
FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_rate_waiting
WHERE w.namespace = :namespace AND w.rate_key = :key AND w.rate_key IS NOT NULL
  AND w.status = 'waiting' AND w.waiting_on = 0
  AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                    AND p.kind = 'queue' AND p.name = w.queue)
  AND NOT EXISTS (SELECT 1 FROM taskwheel_pauses AS p WHERE p.namespace = w.namespace
                    AND p.kind = 'task' AND p.name = w.task)
ORDER BY w.priority DESC, coalesce(w.deadline, 1e308), w.run_at, w.id
LIMIT :limit

-- name: admit_rated
-- The jobs :ids (JSON) admitted: queued with their admission (their fence), each then
-- passing the pause and slot gates as any job that becomes ready (the triggers, in this
-- process); a row for each (SQLite cannot count an UPDATE's rows in SQL).
UPDATE taskwheel_jobs SET status = 'queued', blocked = 0, rate_fence = fence
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'waiting' AND waiting_on = 0
RETURNING id

-- name: save_buckets
-- The buckets an admission pass leaves (:buckets, JSON [{key, tokens, held}]), at :now.
-- The list is read first, each bucket then found by its key: joined to json_each
-- directly, the planner scans the list once per bucket of the namespace (100 keys:
-- 4 ms a pass instead of 0.2).
WITH b AS MATERIALIZED (
    SELECT json_extract(value, '$.key') AS key, json_extract(value, '$.tokens') AS tokens,
           json_extract(value, '$.held') AS held
    FROM json_each(:buckets)
)
UPDATE taskwheel_rates SET tokens = b.tokens, held = b.held, refilled_at = :now
FROM b
WHERE taskwheel_rates.namespace = :namespace AND taskwheel_rates.key = b.key

-- name: list_rates
-- A namespace's buckets (one key with :key; all with NULL), with the jobs waiting for
-- tokens and those admitted and not started.
SELECT r.namespace, r.key, r.rate, r.burst, r.set_by_hand, r.tokens, r.refilled_at,
       (SELECT count(*) FROM taskwheel_jobs AS w INDEXED BY taskwheel_jobs_rate_waiting
        WHERE w.namespace = r.namespace AND w.rate_key = r.key AND w.rate_key IS NOT NULL
          AND w.status = 'waiting' AND w.waiting_on = 0) AS waiting,
       (SELECT count(*) FROM taskwheel_jobs AS a INDEXED BY taskwheel_jobs_rate_admitted
        WHERE a.namespace = r.namespace AND a.rate_key = r.key AND a.rate_key IS NOT NULL
          AND a.status = 'queued') AS admitted
FROM taskwheel_rates AS r
WHERE r.namespace = :namespace AND (:key IS NULL OR r.key = :key)
ORDER BY r.key

-- name: job_rate_key
-- The key whose tokens a job waits for (nothing while it waits for its dependencies or
-- its turn).
SELECT rate_key FROM taskwheel_jobs WHERE id = :id AND status = 'waiting' AND waiting_on = 0

-- weights between namespaces (0016) ---------------------------------------------------------

-- name: namespace_weights
-- The weights of those of :namespaces (JSON) that have one.
SELECT namespace, weight FROM taskwheel_namespace_weights
WHERE namespace IN (SELECT value FROM json_each(:namespaces))

-- name: set_namespace_weight
INSERT INTO taskwheel_namespace_weights (namespace, weight) VALUES (:namespace, :weight)
ON CONFLICT (namespace) DO UPDATE SET weight = excluded.weight

-- name: delete_namespace_weight
DELETE FROM taskwheel_namespace_weights WHERE namespace = :namespace RETURNING namespace

-- name: list_namespace_weights
SELECT namespace, weight FROM taskwheel_namespace_weights ORDER BY namespace

-- name: claim_shares
-- claim_jobs for a claim whose namespaces have weights (`fairness.NamespaceStride`):
-- :shares is a JSON list of [namespace, start, weight]; each namespace's first ready
-- jobs in its dispatch order, read off its own range of jobs_ready as in claim_jobs,
-- the n-th of a namespace placed at start + n / weight; the lowest places are taken
-- (ties: the heavier namespace, then the first named).
UPDATE taskwheel_jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = :worker_id,
    lease_expires_at = :now + :lease_ttl, started_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT job.id AS id, shares.key AS place,
               json_extract(shares.value, '$[1]') AS start,
               json_extract(shares.value, '$[2]') AS weight,
               row_number() OVER (
                   PARTITION BY shares.key
                   ORDER BY job.priority + job.rank_offset DESC, job.fair_pass,
                            coalesce(job.deadline, 1e308), job.run_at, job.id) AS n
        FROM json_each(:shares) AS shares
        JOIN taskwheel_jobs AS job ON job.id IN (
            SELECT id FROM taskwheel_jobs INDEXED BY taskwheel_jobs_ready
            WHERE namespace = json_extract(shares.value, '$[0]')
              AND status = 'queued' AND blocked = 0
              AND queue IN (SELECT value FROM json_each(:queues))
              AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
            ORDER BY priority + rank_offset DESC, fair_pass, coalesce(deadline, 1e308),
                     run_at, id
            LIMIT :limit))
    ORDER BY start + n / weight, weight DESC, place
    LIMIT :limit)
RETURNING *
