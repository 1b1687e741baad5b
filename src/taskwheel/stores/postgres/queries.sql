-- Named statements of the PostgreSQL store: one block per statement of its executor,
-- named after the `Executor` method it serves (see stores/executor.py), and the
-- migrations' own. The connection plumbing (schema, clock, NOTIFY) is in connection.sql.
-- Parameters are %(named)s; times are epoch seconds (double precision). Names are
-- unqualified: every connection's search_path is the store's schema.
--
-- The current time is always written clock_now(%(now)s) (see migrations/0001_initial.sql):
-- the store binds %(now)s to its injected clock's time in tests and to NULL otherwise,
-- so that every judgement of time (due, expired, lease lost) is the database's, and one
-- transaction judges them all by one instant.
--
-- Statements that take a list of namespaces read each namespace's jobs through its own
-- index range (a LATERAL join over the namespaces) wherever order or a minimum matters:
-- `namespace = ANY(...)` would read the ranges as one unordered set and sort it. The
-- namespaces come with their number, %(namespace_count)s, as the LIMIT of their list: it
-- limits nothing, it tells the planner how many there are. Without it, the generic plan
-- of a prepared claim (psycopg prepares a statement run often) assumes ten namespaces,
-- prices the claim ten times over, and PostgreSQL then plans every claim afresh.
--
-- Claims and maintenance take rows with SKIP LOCKED: they never wait for a row someone
-- else is changing, they leave it for the next pass (or the next claimer). Wake-ups for
-- jobs that become ready are sent by a trigger on the jobs table; the others by the
-- store (connection.sql's notify), inside the transaction, so they travel only if it
-- commits.
--
-- A statement whose answer is a count or a yes/no returns rows (count(*), RETURNING id)
-- rather than a row count: in a pipelined transaction a row count is only known once
-- the results are read, which the store does only for what it needs.

-- migrations --------------------------------------------------------------------------------

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS migrations (
    version    integer PRIMARY KEY,
    name       text             NOT NULL,
    applied_at double precision NOT NULL)

-- name: applied_migrations
SELECT version FROM migrations

-- name: record_migration
INSERT INTO migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, clock_now(%(now)s))

-- name: migrations_table_exists
SELECT to_regclass(%(table)s) IS NOT NULL AS present

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM migrations

-- jobs ----------------------------------------------------------------------------------------

-- name: namespaces
-- Every namespace with jobs, schedules or workflow runs: a skip along each index that
-- leads with the namespace (one probe per namespace), never a scan of the rows.
WITH RECURSIVE job_namespaces(namespace) AS (
    (SELECT namespace FROM jobs ORDER BY namespace LIMIT 1)
    UNION ALL
    SELECT (SELECT namespace FROM jobs WHERE namespace > seen.namespace
            ORDER BY namespace LIMIT 1)
    FROM job_namespaces AS seen WHERE seen.namespace IS NOT NULL
),
schedule_namespaces(namespace) AS (
    (SELECT namespace FROM schedules ORDER BY namespace LIMIT 1)
    UNION ALL
    SELECT (SELECT namespace FROM schedules WHERE namespace > seen.namespace
            ORDER BY namespace LIMIT 1)
    FROM schedule_namespaces AS seen WHERE seen.namespace IS NOT NULL
),
run_namespaces(namespace) AS (
    (SELECT namespace FROM workflow_runs ORDER BY namespace LIMIT 1)
    UNION ALL
    SELECT (SELECT namespace FROM workflow_runs WHERE namespace > seen.namespace
            ORDER BY namespace LIMIT 1)
    FROM run_namespaces AS seen WHERE seen.namespace IS NOT NULL
)
SELECT namespace FROM job_namespaces WHERE namespace IS NOT NULL
UNION
SELECT namespace FROM schedule_namespaces WHERE namespace IS NOT NULL
UNION
SELECT namespace FROM run_namespaces WHERE namespace IS NOT NULL
ORDER BY namespace

-- name: insert_job
-- One request without an idempotency key (the single enqueue a service sends most), as
-- insert_jobs writes it, from plain parameters: no JSON to read and no held rows to
-- look for. The server's time of a single enqueue, 0.17 ms with insert_jobs, is about
-- a quarter less. With unless_limited, a namespace with a quota, a queue's maximum
-- depth, fair shares or aging writes nothing and answers no row (limited, as in
-- insert_jobs: the store enqueues it again in a transaction that checks them).
WITH limited AS (
    SELECT 1 FROM quotas WHERE namespace = %(namespace)s
    UNION ALL
    SELECT 1 FROM queue_limits WHERE namespace = %(namespace)s
    UNION ALL
    SELECT 1 FROM fair_flows WHERE namespace = %(namespace)s
    UNION ALL
    SELECT 1 FROM queue_aging WHERE namespace = %(namespace)s
    LIMIT 1
),
requested AS (
    SELECT clock_now(%(now)s) AS now,
           coalesce(%(run_at)s::double precision,
                    clock_now(%(now)s) + %(delay)s::double precision) AS run_at
)
INSERT INTO jobs (
    namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, created_at, trace_parent, fairness_key,
    rank_offset, fair_pass)
SELECT %(namespace)s, %(task)s, %(queue)s, %(args)s::json, %(kwargs)s::json,
       CASE WHEN r.run_at > r.now THEN 'scheduled' ELSE 'queued' END,
       %(priority)s::integer, r.run_at,
       coalesce(%(deadline)s::double precision,
                r.now + %(deadline_in)s::double precision),
       %(timeout)s::double precision, %(max_attempts)s::integer, %(guarantee)s,
       %(deadline_policy)s, r.now, %(trace_parent)s, %(fairness_key)s,
       %(rank_offset)s::bigint, %(fair_pass)s::double precision
FROM requested AS r
WHERE NOT (%(unless_limited)s::boolean AND EXISTS (SELECT 1 FROM limited))
RETURNING id, namespace, idempotency_key, status, run_at, deadline, created_at, false AS held

-- name: insert_jobs
-- A batch, its requests one JSON array of objects (one parameter: a dozen arrays cost the
-- client more to encode than the statement costs the server), in one statement: due
-- times and deadlines made absolute by the store's clock (as `rows.job_values` does for
-- copy_jobs), ready now or due later. A request whose idempotency key is taken (before,
-- or by an earlier request of the batch) writes nothing: the rows of the keys taken
-- before this statement began are returned after the rows written, marked held. (A key
-- taken by a transaction that committed while this statement ran is in neither: the
-- store looks for it again.) A row written answers only what the store did not send
-- (its id, status, times): the store makes its record from the request, as for
-- copy_jobs; decoding every column of it back cost the client more than the
-- statement. A held row answers its whole stored row, as JSON.
WITH limited AS (
    -- With unless_limited, a batch of a namespace with a quota (or a queue with a
    -- maximum depth) writes nothing and answers one row with limited set: the store
    -- enqueues it again in a transaction that checks them. A namespace without either
    -- costs these probes of primary keys.
    SELECT 1 FROM quotas WHERE namespace = ANY(%(namespaces)s::text[])
    UNION ALL  -- or a queue with a maximum depth
    SELECT 1 FROM queue_limits WHERE namespace = ANY(%(namespaces)s::text[])
    UNION ALL  -- or fair shares or aging, which place the jobs in the same transaction
    SELECT 1 FROM fair_flows WHERE namespace = ANY(%(namespaces)s::text[])
    UNION ALL
    SELECT 1 FROM queue_aging WHERE namespace = ANY(%(namespaces)s::text[])
    LIMIT 1
),
requested AS (
    SELECT r.*, clock_now(%(now)s) AS now
    FROM ROWS FROM (json_to_recordset(%(requests)s::json) AS (
        namespace text, task text, queue text, args text, kwargs text, priority integer,
        run_at double precision, delay double precision, deadline double precision,
        deadline_in double precision, timeout double precision, max_attempts integer,
        guarantee text, deadline_policy text, idempotency_key text, trace_parent text,
        fairness_key text, rank_offset bigint, fair_pass double precision)
    ) WITH ORDINALITY AS r(
        namespace, task, queue, args, kwargs, priority, run_at, delay, deadline, deadline_in,
        timeout, max_attempts, guarantee, deadline_policy, idempotency_key, trace_parent,
        fairness_key, rank_offset, fair_pass, position)
    WHERE NOT (%(unless_limited)s::boolean AND EXISTS (SELECT 1 FROM limited))
),
inserted AS (
    INSERT INTO jobs (
        namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
        max_attempts, guarantee, deadline_policy, idempotency_key, created_at, trace_parent,
        fairness_key, rank_offset, fair_pass)
    SELECT namespace, task, queue, args::json, kwargs::json,
           CASE WHEN coalesce(run_at, now + delay) > now THEN 'scheduled' ELSE 'queued' END,
           priority, coalesce(run_at, now + delay), coalesce(deadline, now + deadline_in),
           timeout, max_attempts, guarantee, deadline_policy, idempotency_key, now,
           trace_parent, fairness_key, rank_offset, fair_pass
    FROM requested
    ORDER BY position  -- ids ascend in the order of the requests
    ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, namespace, idempotency_key, status, run_at, deadline, created_at
)
SELECT inserted.*, NULL::json AS stored, false AS held, false AS limited FROM inserted
UNION ALL
-- Each key looked up alone, by jobs_idempotency: a join here was planned, on a table
-- small or never analysed, as a hash join over a sequential scan of jobs, and a
-- connection keeps that plan as the table grows (a keyed enqueue read all 25,000
-- rows: 13 ms). LIMIT 1 keeps the subquery a lookup (a key holds one row at most).
SELECT held.id, held.namespace, held.idempotency_key, held.status, held.run_at,
       held.deadline, held.created_at, row_to_json(held), true, false
FROM requested
CROSS JOIN LATERAL (
    SELECT * FROM jobs
    WHERE jobs.namespace = requested.namespace
      AND jobs.idempotency_key = requested.idempotency_key
    LIMIT 1
) AS held
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, true
WHERE %(unless_limited)s::boolean AND EXISTS (SELECT 1 FROM limited)

-- name: reserve_jobs
-- insert_jobs by COPY (a big batch without idempotency keys), which computes nothing:
-- first the instant of the enqueue (its times are made absolute by `rows.job_values`)
-- and the ids of the batch, in the order of the requests...
-- (limited: a namespace of the batch has a quota; the store then enqueues it in a
-- transaction that checks it, and the ids are left unused)...
SELECT clock_now(%(now)s) AS now,
       ARRAY(SELECT nextval('jobs_id_seq') FROM generate_series(1, %(count)s)) AS ids,
       EXISTS (SELECT 1 FROM quotas WHERE namespace = ANY(%(namespaces)s::text[]))
       OR EXISTS (SELECT 1 FROM queue_limits WHERE namespace = ANY(%(namespaces)s::text[]))
       OR EXISTS (SELECT 1 FROM fair_flows WHERE namespace = ANY(%(namespaces)s::text[]))
       OR EXISTS (SELECT 1 FROM queue_aging WHERE namespace = ANY(%(namespaces)s::text[]))
       AS limited

-- name: copy_jobs
-- ...then the rows (`rows.JobValues`).
COPY jobs (
    id, namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
    max_attempts, guarantee, deadline_policy, idempotency_key, created_at, trace_parent,
    fairness_key, rank_offset, fair_pass)
FROM STDIN

-- name: generic_plans
-- For the claim statements (see PostgresExecutor._generic), until chosen_plans: on a
-- connection of the pool (the claim connection plans generically from its start).
SET plan_cache_mode = force_generic_plan

-- name: chosen_plans
RESET plan_cache_mode

-- name: claim_at_once
-- A claim in one statement, delayed jobs that fell due included: they are made ready
-- (promoted) and claimed in the same statement, so that a job due now costs its worker
-- one round trip and one commit, as a ready one does, not a transaction of four
-- statements. A due job is taken among the ready ones in dispatch order; the due ones
-- not taken become ready (queued) for the other workers, as promote_due makes them.
-- Only plain due jobs are handled so: when one has a concurrency key or a rate key (it
-- must wait for its tokens: made ready, the rate trigger holds it) or is blocked, or
-- a pause is in force in the namespaces (their gates decide when they become ready), or
-- a workflow step is to expire (its end does things to its run first), or a queue of
-- the claim keeps a reserve (`fairness.QueueReserve`: its policy claims in steps), it
-- does nothing and answers slow: the store then claims in steps (promote_due, expire_missed,
-- claim_jobs, next_due) in one transaction. Jobs whose deadline passed expire here.
-- With %(ahead)s > 0 the claimer holds each job until its due time (ClaimRequest.ahead),
-- so plain delayed jobs due within that many seconds are taken too (started_at: their
-- due time); those not taken are left delayed, for a claimer that holds none.
-- One row when nothing is claimed (id NULL), else one per job; each carries slow and
-- next_due (the earliest delayed job not yet due and not taken).
WITH claimed_namespaces AS (
    SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s
),
earliest AS (
    -- The earliest delayed job of the namespaces: the lower end of the due range. Each
    -- namespace's min(run_at) is the first entry of jobs_due whatever the statistics
    -- say. (An EXISTS on status and run_at instead is planned, once the table has been
    -- analysed, as a sequential scan expected to meet a due job within a few rows, the
    -- planner taking the two columns for independent: with millions of finished jobs
    -- and none due, every claim then read the whole table.)
    SELECT min(first.run_at) AS run_at FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT min(run_at) AS run_at FROM jobs
        WHERE jobs.namespace = ns.namespace AND status = 'scheduled') AS first
),
due AS (
    -- The delayed jobs due now (or within %(ahead)s), read per namespace as a range of
    -- jobs_due in due order from the earliest on (a lower end the planner cannot know,
    -- see promote_due), except those whose deadline passed (missed, below, expires
    -- them). Locked: due jobs another claimer is promoting at this moment are left to it.
    SELECT found.* FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT id, queue, task, gate_key, rate_key, blocked, priority + rank_offset AS rank,
               fair_pass, deadline, run_at
        FROM jobs
        WHERE jobs.namespace = ns.namespace AND status = 'scheduled'
          AND run_at >= (SELECT run_at FROM earliest)
          AND run_at <= clock_now(%(now)s) + %(ahead)s::float8
          -- Ahead of its time only a plain job: a gate or a pause decides when the
          -- others become ready (the claim in steps, at their due time).
          AND (run_at <= clock_now(%(now)s)
               OR (gate_key IS NULL AND rate_key IS NULL AND NOT blocked
                   AND NOT EXISTS (SELECT 1 FROM pauses WHERE pauses.namespace = ns.namespace)))
          AND NOT (deadline IS NOT NULL AND deadline <= clock_now(%(now)s)
                   AND deadline_policy = 'expire')
        ORDER BY run_at
        FOR UPDATE SKIP LOCKED
    ) AS found
),
slow AS (
    SELECT EXISTS (SELECT 1 FROM due
                   WHERE gate_key IS NOT NULL OR rate_key IS NOT NULL OR blocked)
        OR (EXISTS (SELECT 1 FROM due)
            AND EXISTS (SELECT 1 FROM pauses
                        WHERE namespace = ANY(%(namespaces)s::text[])))
        OR EXISTS (
               SELECT 1 FROM jobs
               WHERE namespace = ANY(%(namespaces)s::text[])
                 AND status IN ('queued', 'scheduled')
                 AND deadline IS NOT NULL AND deadline <= clock_now(%(now)s)
                 AND deadline_policy = 'expire' AND workflow_run_id IS NOT NULL)
        -- A queue of the claim keeps a reserve: its policy claims in steps.
        OR EXISTS (SELECT 1 FROM queue_reserves
                   WHERE namespace = ANY(%(namespaces)s::text[])
                     AND queue = ANY(%(queues)s::text[]))
        AS needed
),
missed AS (
    SELECT id FROM jobs
    WHERE namespace = ANY(%(namespaces)s::text[]) AND status IN ('queued', 'scheduled')
      AND deadline IS NOT NULL AND deadline <= clock_now(%(now)s) AND deadline_policy = 'expire'
      AND NOT (SELECT needed FROM slow)
    FOR UPDATE SKIP LOCKED
),
expired AS (
    UPDATE jobs
    SET status = 'expired', finished_at = clock_now(%(now)s),
        last_error = 'deadline passed before the job started'
    FROM missed WHERE jobs.id = missed.id
),
taken AS (
    -- The first ready jobs of each namespace in dispatch order (jobs_ready) and the due
    -- ones of the worker's queues and tasks, then the first of those.
    SELECT candidate.id FROM (
        SELECT ready.* FROM claimed_namespaces AS ns
        CROSS JOIN LATERAL (
            SELECT id, priority + rank_offset AS rank, fair_pass, deadline, run_at FROM jobs
            -- COLLATE "C" (jobs_ready's condition) and IS TRUE: neither the status nor
            -- the queue is an index condition of jobs_status (namespace, status, queue),
            -- so no statistics can make it, which must read and sort every queued job,
            -- look cheaper than jobs_ready, read in order (as it did on a table never
            -- analysed, or analysed while nothing was queued: a claim cost as much as
            -- the backlog; migration 0019).
            WHERE jobs.namespace = ns.namespace AND status = 'queued' COLLATE "C" AND NOT blocked
              AND (queue = ANY(%(queues)s::text[])) IS TRUE
              AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
              AND NOT (deadline IS NOT NULL AND deadline <= clock_now(%(now)s)
                       AND deadline_policy = 'expire')
              AND NOT (SELECT needed FROM slow)
            ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ) AS ready
        UNION ALL
        SELECT id, rank, fair_pass, deadline, run_at FROM due
        WHERE (queue = ANY(%(queues)s::text[])) IS TRUE
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
          AND NOT (SELECT needed FROM slow)
    ) AS candidate
    ORDER BY candidate.rank DESC, candidate.fair_pass, candidate.deadline ASC NULLS LAST,
             candidate.run_at, candidate.id
    LIMIT %(limit)s
),
later AS (
    -- The earliest delayed job not due yet and not taken ahead of its time: when the
    -- worker's alarm is to ring.
    SELECT min(first.run_at) AS run_at FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT min(run_at) AS run_at FROM jobs
        WHERE jobs.namespace = ns.namespace AND status = 'scheduled'
          AND run_at > clock_now(%(now)s) AND id NOT IN (SELECT id FROM taken)) AS first
),
claimed AS (
    UPDATE jobs
    SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
        lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s,
        started_at = GREATEST(clock_now(%(now)s), jobs.run_at)
    WHERE jobs.id = ANY(ARRAY(SELECT id FROM taken))  -- by primary key, never a scan
    RETURNING jobs.*
),
promoted AS (
    UPDATE jobs SET status = 'queued'
    FROM due
    WHERE jobs.id = due.id AND NOT (SELECT needed FROM slow)
      AND due.id NOT IN (SELECT id FROM taken) AND due.run_at <= clock_now(%(now)s)
)
-- claimed_at: the clock as the statement ends (the worker holds a job due ahead of it
-- for run_at - claimed_at from the answer: the later, the less it waits in vain).
SELECT claimed.*, slow.needed AS slow, (SELECT run_at FROM later) AS next_due,
       coalesce(%(now)s, extract(epoch FROM clock_timestamp())::float8) AS claimed_at
FROM slow LEFT JOIN claimed ON true

-- name: claim_ready
-- claim_at_once for a claimer whose alarm has not rung (ClaimRequest.alarm without
-- due): no delayed job is due as far as it knows, so only the ready jobs are read, in
-- the same order, and nothing is promoted or expired (jobs whose deadline passed are
-- not taken: maintenance or the next claim that looks at due jobs expires them).
-- next_due is the earliest delayed job, due or not: one that fell due unknown to the
-- claimer (its wake-up lost) rings its alarm at once, and that claim makes it ready.
-- A queue of the claim that keeps a reserve answers slow, as in claim_at_once.
WITH claimed_namespaces AS (
    SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s
),
slow AS (
    SELECT EXISTS (SELECT 1 FROM queue_reserves
                   WHERE namespace = ANY(%(namespaces)s::text[])
                     AND queue = ANY(%(queues)s::text[])) AS needed
),
taken AS (
    SELECT ready.id FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT id, priority + rank_offset AS rank, fair_pass, deadline, run_at FROM jobs
        -- COLLATE "C" and IS TRUE: as in claim_at_once (jobs_ready, never jobs_status).
        WHERE jobs.namespace = ns.namespace AND status = 'queued' COLLATE "C" AND NOT blocked
          AND (queue = ANY(%(queues)s::text[])) IS TRUE
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
          AND NOT (deadline IS NOT NULL AND deadline <= clock_now(%(now)s)
                   AND deadline_policy = 'expire')
          AND NOT (SELECT needed FROM slow)
        ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS ready
    ORDER BY ready.rank DESC, ready.fair_pass, ready.deadline ASC NULLS LAST, ready.run_at,
             ready.id
    LIMIT %(limit)s
),
claimed AS (
    UPDATE jobs
    SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
        lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s, started_at = clock_now(%(now)s)
    WHERE jobs.id = ANY(ARRAY(SELECT id FROM taken))  -- by primary key, never a scan
    RETURNING jobs.*
)
SELECT claimed.*, slow.needed AS slow,
       (SELECT min(first.run_at) FROM claimed_namespaces AS ns
        CROSS JOIN LATERAL (
            SELECT min(run_at) AS run_at FROM jobs
            WHERE jobs.namespace = ns.namespace AND status = 'scheduled') AS first
       ) AS next_due,
       coalesce(%(now)s, extract(epoch FROM clock_timestamp())::float8) AS claimed_at
FROM slow LEFT JOIN claimed ON true

-- name: promote_due
-- The due ones are read as a range of jobs_due from the earliest delayed job on: a lower
-- end the planner cannot know makes the range look narrow under any statistics. (With
-- only run_at <= now, an analysed table whose finished jobs all ran in the past made the
-- planner expect most delayed jobs to be due, and read every one of them through
-- jobs_status, a million on a big table, each time maintenance looked.)
WITH earliest AS (
    SELECT min(first.run_at) AS run_at
    FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace) AS ns
    CROSS JOIN LATERAL (
        SELECT min(run_at) AS run_at FROM jobs
        WHERE jobs.namespace = ns.namespace AND status = 'scheduled') AS first
),
due AS (
    SELECT id FROM jobs
    WHERE namespace = ANY(%(namespaces)s::text[]) AND status = 'scheduled'
      AND run_at >= (SELECT run_at FROM earliest) AND run_at <= clock_now(%(now)s)
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE jobs SET status = 'queued' FROM due WHERE jobs.id = due.id RETURNING 1
)
SELECT count(*) AS promoted FROM promoted

-- name: expire_missed
-- Jobs not started whose deadline passed; waiting ones too when %(waiting)s.
WITH missed AS (
    SELECT id FROM jobs
    WHERE namespace = ANY(%(namespaces)s::text[])
      AND (status IN ('queued', 'scheduled') OR (status = 'waiting' AND %(waiting)s::boolean))
      AND deadline IS NOT NULL AND deadline <= clock_now(%(now)s) AND deadline_policy = 'expire'
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs
SET status = 'expired', finished_at = clock_now(%(now)s),
    last_error = 'deadline passed before the job started'
FROM missed WHERE jobs.id = missed.id
RETURNING jobs.id, jobs.namespace, jobs.status, jobs.workflow_run_id, jobs.step,
          jobs.failure_policy, jobs.schedule_id

-- name: claim_jobs
-- The first ready jobs in dispatch order that nobody else is claiming at this moment
-- (after promote_due and expire_missed, in the same transaction); per namespace as in
-- claim_at_once.
WITH claimed_namespaces AS (
    SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s
),
taken AS (
    SELECT ready.id FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT id, priority + rank_offset AS rank, fair_pass, deadline, run_at FROM jobs
        -- COLLATE "C" and IS TRUE: as in claim_at_once (jobs_ready, never jobs_status).
        WHERE jobs.namespace = ns.namespace AND status = 'queued' COLLATE "C" AND NOT blocked
          AND (queue = ANY(%(queues)s::text[])) IS TRUE
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
        ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS ready
    ORDER BY ready.rank DESC, ready.fair_pass, ready.deadline ASC NULLS LAST, ready.run_at,
             ready.id
    LIMIT %(limit)s
)
UPDATE jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
    lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s, started_at = clock_now(%(now)s)
WHERE jobs.id = ANY(ARRAY(SELECT id FROM taken))  -- by primary key, never a scan
RETURNING jobs.*

-- name: claim_ahead
-- For a claimer that holds each job until its due time (ClaimRequest.ahead), in a claim
-- in steps after the ready ones (claim_at_once takes them itself): up to %(limit)s plain
-- delayed jobs of the namespaces, queues and tasks due within %(ahead)s seconds, in due
-- order off jobs_due, each started at its due time. Not one of a key, blocked, or in a
-- namespace with a pause: those become ready at their due time, where the gates decide.
WITH ahead AS (
    SELECT found.id FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace) AS ns
    CROSS JOIN LATERAL (
        SELECT id, run_at FROM jobs
        WHERE jobs.namespace = ns.namespace AND status = 'scheduled'
          AND run_at > clock_now(%(now)s) AND run_at <= clock_now(%(now)s) + %(ahead)s::float8
          AND (queue = ANY(%(queues)s::text[])) IS TRUE
          AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
          AND gate_key IS NULL AND rate_key IS NULL AND NOT blocked
          AND NOT EXISTS (SELECT 1 FROM pauses WHERE pauses.namespace = ns.namespace)
        ORDER BY run_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    ) AS found
    ORDER BY found.run_at, found.id
    LIMIT %(limit)s
)
UPDATE jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
    lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s, started_at = run_at
WHERE jobs.id = ANY(ARRAY(SELECT id FROM ahead))
RETURNING jobs.*, coalesce(%(now)s, extract(epoch FROM clock_timestamp())::float8) AS claimed_at

-- name: next_due
SELECT min(first.run_at) AS next_due
FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s) AS ns
CROSS JOIN LATERAL (
    SELECT min(run_at) AS run_at FROM jobs
    WHERE jobs.namespace = ns.namespace AND status = 'scheduled') AS first

-- name: next_due_in_queues
-- The same for the jobs of %(queues)s only (a claim of nothing: when will there be work
-- for this worker?): a ready job of the queues (work now: its due time is past), and
-- each namespace's delayed jobs in due order until one of the queues. A job made ready
-- after the last claim that found nothing (by maintenance's promotion, say) counts: a
-- burst worker asks this before it exits.
SELECT min(first.run_at) AS next_due
FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s) AS ns
CROSS JOIN LATERAL (
    (SELECT run_at FROM jobs
     -- COLLATE "C" and IS TRUE: as in claim_at_once (jobs_ready, never jobs_status).
     WHERE jobs.namespace = ns.namespace AND status = 'queued' COLLATE "C" AND NOT blocked
       AND (queue = ANY(%(queues)s::text[])) IS TRUE
     ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
     LIMIT 1)
    UNION ALL
    (SELECT run_at FROM jobs
     WHERE jobs.namespace = ns.namespace AND status = 'scheduled'
       AND (queue = ANY(%(queues)s::text[])) IS TRUE  -- on jobs_due, as in claim_jobs
     ORDER BY run_at LIMIT 1)) AS first

-- name: heartbeat
-- One statement per worker: the leases of the attempts it executes (%(id)s with their
-- %(fence)s), and its own last-seen time. A lease of the worker not named is left to
-- expire.
WITH seen AS (
    UPDATE workers SET last_seen_at = clock_now(%(now)s) WHERE id = %(worker_id)s),
held AS (
    SELECT * FROM unnest(%(id)s::bigint[], %(fence)s::bigint[]) AS h(id, fence))
UPDATE jobs SET lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s
FROM held
WHERE jobs.id = ANY(%(id)s::bigint[])  -- by primary key, as in finish_attempts
  AND jobs.id = held.id AND jobs.fence = held.fence
  AND jobs.worker_id = %(worker_id)s AND (jobs.status = 'running') IS TRUE
RETURNING jobs.id, jobs.cancel_requested

-- name: extend_lease
UPDATE jobs
SET lease_expires_at = greatest(lease_expires_at, clock_now(%(now)s) + %(lease_ttl)s)
WHERE id = %(id)s AND fence = %(fence)s AND status = 'running'
RETURNING id

-- name: finish_attempts
-- A batch of outcomes (at most one per job), each applied only where the fence still
-- matches, and recorded as an attempt. A retry of a job someone asked to cancel ends it
-- cancelled instead. The outcomes come as one JSON array of objects (as insert_jobs'
-- requests: cheaper for the client to encode than eight arrays).
-- With %(alone)s, only jobs whose end moves nothing else (no concurrency key, schedule
-- or workflow run) are applied, the others are left as they are, and the FINISHED
-- wake-up of the namespaces where jobs ended is sent from here: nothing that follows
-- needs the answer, so the report travels with its COMMIT (finish_alone).
WITH reported AS (
    SELECT * FROM json_to_recordset(%(outcomes)s::json) AS r(
        id bigint, fence bigint, status text, outcome text, result text, error text,
        traceback text, retry_delay double precision)
),
finished AS (
    UPDATE jobs
    SET status = CASE WHEN jobs.cancel_requested AND r.status IN ('queued', 'scheduled')
                      THEN 'cancelled' ELSE r.status END,
        result = r.result::json,
        last_error = r.error,
        run_at = CASE WHEN r.status IN ('queued', 'scheduled')
                      THEN clock_now(%(now)s) + r.retry_delay ELSE jobs.run_at END,
        finished_at = CASE WHEN r.status IN ('queued', 'scheduled') AND NOT jobs.cancel_requested
                           THEN NULL ELSE clock_now(%(now)s) END,
        lease_expires_at = NULL
    FROM reported AS r
    -- IS TRUE: the status is no index condition, so the rows are found by id (a probe
    -- of jobs_pkey each), never through jobs_running. That partial index keeps an entry
    -- for every job that ran since the table was last vacuumed, and a bitmap scan of it
    -- read them all (once measured: 7,900 entries and 660 pages to find 100 rows).
    -- The ids as an array too: with statistics taken while nothing ran, a scan of the
    -- whole table for "the one running row", joined with every outcome, looked
    -- cheaper than the lookups (250 outcomes on 5,000 rows: 50-140 ms a report).
    WHERE jobs.id = ANY(ARRAY(SELECT id FROM reported))  -- by primary key, never a scan
      AND jobs.id = r.id AND jobs.fence = r.fence AND (jobs.status = 'running') IS TRUE
      AND (NOT %(alone)s::boolean
           OR (jobs.gate_key IS NULL AND jobs.schedule_id IS NULL
               AND jobs.workflow_run_id IS NULL))
    RETURNING jobs.id, jobs.namespace, jobs.attempt, jobs.fence, jobs.worker_id,
              jobs.started_at, jobs.status, jobs.workflow_run_id, jobs.step,
              jobs.failure_policy, jobs.schedule_id, jobs.gate_key
),
recorded AS (
    INSERT INTO attempts (
        namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
        result, error, traceback)
    SELECT f.namespace, f.id, f.attempt, f.fence, f.worker_id,
           coalesce(f.started_at, clock_now(%(now)s)), clock_now(%(now)s), r.outcome,
           r.result::json, r.error, r.traceback
    FROM finished AS f JOIN reported AS r ON r.id = f.id
),
announced AS (  -- read below, so run: a SELECT in WITH runs only when read
    -- payload_of(namespace, 'finished'): the namespace, then %(finished_tail)s.
    SELECT pg_notify(%(channel)s, ended.namespace || %(finished_tail)s)
    FROM (SELECT DISTINCT namespace FROM finished
          WHERE %(alone)s::boolean AND status = ANY(%(terminal)s::text[])) AS ended
)
SELECT id, namespace, status, workflow_run_id, step, failure_policy, schedule_id, gate_key,
       (SELECT count(*) FROM announced) AS announced
FROM finished

-- name: release_queue_one
-- queue_one: the waiting jobs of the schedules %(schedule_ids)s (whose jobs just ended)
-- become ready once no earlier job of their schedule is unfinished (waiting_on 1 marks
-- one waiting for its turn; 0, one waiting for its rate key's tokens).
UPDATE jobs SET status = 'queued', run_at = greatest(run_at, clock_now(%(now)s)),
    waiting_on = 0
WHERE status = 'waiting' AND waiting_on > 0 AND schedule_id IS NOT NULL
  AND schedule_id = ANY(%(schedule_ids)s::bigint[])
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS earlier
      WHERE earlier.schedule_id = jobs.schedule_id AND earlier.id < jobs.id
        AND earlier.status IN ('scheduled', 'queued', 'running'))

-- name: release_waiting
-- The same for every schedule of the namespaces.
WITH released AS (
    UPDATE jobs SET status = 'queued', run_at = greatest(run_at, clock_now(%(now)s)),
        waiting_on = 0
    WHERE namespace = ANY(%(namespaces)s::text[]) AND status = 'waiting'
      AND schedule_id IS NOT NULL AND waiting_on > 0
      AND NOT EXISTS (
          SELECT 1 FROM jobs AS earlier
          WHERE earlier.schedule_id = jobs.schedule_id AND earlier.id < jobs.id
            AND earlier.status IN ('scheduled', 'queued', 'running'))
    RETURNING 1
)
SELECT count(*) AS released FROM released

-- name: release_jobs
-- A worker gives back leases it holds ({id: fence}): at-least-once jobs go back to the
-- queue without using up an attempt, at-most-once jobs die (they may have run).
WITH given AS (
    SELECT * FROM unnest(%(id)s::bigint[], %(fence)s::bigint[]) AS g(id, fence)
),
released AS (
    UPDATE jobs
    SET status = CASE WHEN guarantee = 'at_least_once' AND NOT cancel_requested THEN 'queued'
                      WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
        attempt = CASE WHEN guarantee = 'at_least_once' THEN attempt - 1 ELSE attempt END,
        last_error = CASE WHEN guarantee = 'at_least_once' THEN last_error
                          ELSE 'interrupted by worker shutdown (at-most-once: not run again)' END,
        finished_at = CASE WHEN guarantee = 'at_least_once' AND NOT cancel_requested
                           THEN NULL ELSE clock_now(%(now)s) END,
        run_at = clock_now(%(now)s),
        lease_expires_at = NULL
    FROM given
    WHERE jobs.id = ANY(%(id)s::bigint[])  -- by primary key, as in finish_attempts
      AND jobs.id = given.id AND jobs.fence = given.fence AND jobs.worker_id = %(worker_id)s
      AND (jobs.status = 'running') IS TRUE
    -- RETURNING sees the new row: the interrupted attempt is the number given back.
    RETURNING jobs.id, jobs.namespace,
              CASE WHEN jobs.guarantee = 'at_least_once' THEN jobs.attempt + 1
                   ELSE jobs.attempt END AS attempt,
              jobs.fence, jobs.worker_id, jobs.started_at, jobs.status, jobs.workflow_run_id,
              jobs.step, jobs.failure_policy, jobs.schedule_id
),
recorded AS (
    INSERT INTO attempts (
        namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
        result, error, traceback)
    SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, clock_now(%(now)s)),
           clock_now(%(now)s), 'interrupted', NULL, 'worker shut down before the job finished',
           NULL
    FROM released
)
SELECT id, namespace, status, workflow_run_id, step, failure_policy, schedule_id
FROM released

-- name: save_checkpoint
UPDATE jobs SET checkpoint = %(state)s::json
WHERE id = %(id)s AND fence = %(fence)s AND status = 'running'
RETURNING id

-- name: rescue_expired
-- Jobs whose lease expired: requeued (at-least-once with attempts left, not cancelled) or
-- ended (dead, or cancelled when that was asked), each with a `lease_expired` attempt.
-- Workers silent for a day are gone for good. Slotted ones (%(slotted)s: a concurrency
-- key, or a workflow step, whose end moves steps that may have one) are rescued after
-- lock_slots, in a transaction of their own per namespace: their rows are locked here, up
-- front, and their ends then take the namespace's slot lock, which a report may hold while
-- it waits for one of those rows.
WITH expired AS (
    SELECT id,
           guarantee = 'at_least_once' AND attempt < max_attempts AND NOT cancel_requested
               AS requeue
    FROM jobs
    WHERE namespace = ANY(%(namespaces)s::text[]) AND status = 'running'
      AND lease_expires_at < clock_now(%(now)s)
      AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL) = %(slotted)s::boolean
    FOR UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE jobs
    SET status = CASE WHEN expired.requeue THEN 'queued'
                      WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
        lease_expires_at = NULL,
        run_at = CASE WHEN expired.requeue THEN clock_now(%(now)s) ELSE run_at END,
        finished_at = CASE WHEN expired.requeue THEN NULL ELSE clock_now(%(now)s) END,
        last_error = CASE
            WHEN expired.requeue THEN last_error
            WHEN guarantee = 'at_most_once'
                THEN 'lease expired: the worker vanished (at-most-once: not run again)'
            ELSE 'lease expired: the worker vanished on the last attempt' END
    FROM expired WHERE jobs.id = expired.id
    RETURNING jobs.id, jobs.namespace, jobs.attempt, jobs.fence, jobs.worker_id,
              jobs.started_at, jobs.status, jobs.workflow_run_id, jobs.step,
              jobs.failure_policy, jobs.schedule_id
),
recorded AS (
    INSERT INTO attempts (
        namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
        result, error, traceback)
    SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, clock_now(%(now)s)),
           clock_now(%(now)s), 'lease_expired', NULL,
           'lease expired: the worker stopped heartbeating', NULL
    FROM rescued
),
forgotten AS (
    DELETE FROM workers
    WHERE namespace = ANY(%(namespaces)s::text[])
      AND last_seen_at < clock_now(%(now)s) - 86400
)
SELECT id, namespace, status, workflow_run_id, step, failure_policy, schedule_id
FROM rescued

-- name: expired_slotted_namespaces
-- The namespaces with a slotted job (see rescue_expired) whose lease expired (jobs_lease),
-- in order.
SELECT DISTINCT namespace FROM jobs
WHERE namespace = ANY(%(namespaces)s::text[]) AND status = 'running'
  AND lease_expires_at < clock_now(%(now)s)
  AND (gate_key IS NOT NULL OR workflow_run_id IS NOT NULL)
ORDER BY namespace

-- name: lock_running_of_worker
-- The jobs a worker is running (on jobs_worker), in id order, locked until the
-- transaction ends.
SELECT * FROM jobs
WHERE worker_id = %(worker_id)s AND status = 'running'
ORDER BY id
FOR UPDATE

-- name: end_attempts_of_worker
-- Attempts of a worker whose process died, (id, fence, retry delay) each: recorded as
-- crashed attempts with %(error)s, requeued after their delay (at-least-once with
-- attempts left, not asked to cancel), else ended (dead, or cancelled when that was
-- asked; an at-most-once job never runs again: its body may have finished).
WITH given AS (
    SELECT * FROM unnest(
        %(id)s::bigint[], %(fence)s::bigint[], %(retry_delay)s::double precision[]
    ) AS g(id, fence, retry_delay)
),
ended AS (
    SELECT jobs.id, given.retry_delay,
           jobs.guarantee = 'at_least_once' AND jobs.attempt < jobs.max_attempts
               AND NOT jobs.cancel_requested AS requeue
    FROM jobs JOIN given ON jobs.id = given.id AND jobs.fence = given.fence
    WHERE jobs.worker_id = %(worker_id)s AND jobs.status = 'running'
),
moved AS (
    UPDATE jobs
    SET status = CASE WHEN ended.requeue AND ended.retry_delay > 0 THEN 'scheduled'
                      WHEN ended.requeue THEN 'queued'
                      WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END,
        run_at = CASE WHEN ended.requeue THEN clock_now(%(now)s) + ended.retry_delay
                      ELSE run_at END,
        finished_at = CASE WHEN ended.requeue THEN NULL ELSE clock_now(%(now)s) END,
        last_error = CASE WHEN guarantee = 'at_most_once'
                          THEN %(error)s::text || ' (at-most-once: not run again)'
                          ELSE %(error)s::text END,
        lease_expires_at = NULL
    FROM ended WHERE jobs.id = ended.id
    RETURNING jobs.id, jobs.namespace, jobs.attempt, jobs.fence, jobs.worker_id,
              jobs.started_at, jobs.status, jobs.workflow_run_id, jobs.step,
              jobs.failure_policy, jobs.schedule_id
),
recorded AS (
    INSERT INTO attempts (
        namespace, job_id, attempt, fence, worker_id, started_at, ended_at, outcome,
        result, error, traceback)
    SELECT namespace, id, attempt, fence, worker_id, coalesce(started_at, clock_now(%(now)s)),
           clock_now(%(now)s), 'crashed', NULL, %(error)s::text, NULL
    FROM moved
)
SELECT id, namespace, status, workflow_run_id, step, failure_policy, schedule_id
FROM moved

-- name: forget_worker
-- A worker that died: its registration, and the leases it held (any namespace).
WITH released AS (DELETE FROM leases WHERE holder = %(worker_id)s)
DELETE FROM workers WHERE id = %(worker_id)s

-- name: lock_jobs
-- In id order, so that two callers locking overlapping sets never wait on each other.
SELECT * FROM jobs
WHERE namespace = %(namespace)s AND id = ANY(%(ids)s::bigint[])
ORDER BY id
FOR UPDATE

-- name: request_cancel
UPDATE jobs SET cancel_requested = true
WHERE namespace = %(namespace)s AND id = %(id)s AND status = 'running'

-- name: cancel_pending
UPDATE jobs SET status = 'cancelled', finished_at = clock_now(%(now)s)
WHERE namespace = %(namespace)s AND id = %(id)s AND status IN ('scheduled', 'waiting', 'queued')
RETURNING id, namespace, status, workflow_run_id, step, failure_policy, schedule_id

-- name: requeue_finished
UPDATE jobs
SET status = 'queued', attempt = 0, run_at = clock_now(%(now)s), finished_at = NULL,
    result = NULL, cancel_requested = false, worker_id = NULL, lease_expires_at = NULL,
    deadline = CASE WHEN status = 'expired' THEN NULL ELSE deadline END
WHERE namespace = %(namespace)s AND id = %(id)s AND status = %(expected)s
RETURNING *

-- name: dead_ids
SELECT id FROM jobs WHERE namespace = %(namespace)s AND status = 'dead' ORDER BY id

-- name: purge_dead
WITH purged AS (
    DELETE FROM jobs WHERE namespace = %(namespace)s AND status = 'dead'
        AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
    RETURNING id
),
forgotten AS (
    DELETE FROM attempts USING purged WHERE attempts.job_id = purged.id
),
unlinked AS (
    -- A deleted job's id is never given again (a sequence), but an edge to nothing
    -- would still count as a dependency.
    DELETE FROM job_deps USING purged
    WHERE job_deps.job_id = purged.id OR job_deps.depends_on = purged.id
)
SELECT count(*) AS purged FROM purged

-- name: delete_jobs
-- The jobs of ids in the namespace whatever their state, with their attempts and edges.
WITH deleted AS (
    DELETE FROM jobs WHERE namespace = %(namespace)s AND id = ANY(%(ids)s::bigint[])
    RETURNING id
),
forgotten AS (
    DELETE FROM attempts USING deleted WHERE attempts.job_id = deleted.id
),
unlinked AS (
    DELETE FROM job_deps USING deleted
    WHERE job_deps.job_id = deleted.id OR job_deps.depends_on = deleted.id
)
SELECT count(*) AS deleted FROM deleted

-- name: get_jobs
SELECT * FROM jobs WHERE namespace = %(namespace)s AND id = ANY(%(ids)s::bigint[]) ORDER BY id

-- name: list_jobs
SELECT * FROM jobs
WHERE namespace = %(namespace)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(task)s::text IS NULL OR task = %(task)s::text)
  AND (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s

-- name: list_attempts
SELECT * FROM attempts WHERE namespace = %(namespace)s AND job_id = %(job_id)s ORDER BY id

-- name: finished_per_minute
SELECT floor(ended_at / 60) * 60 AS minute, outcome, count(*) AS count
FROM attempts WHERE namespace = %(namespace)s AND ended_at >= %(since)s
GROUP BY 1, 2 ORDER BY 1, 2

-- schedules -----------------------------------------------------------------------------------

-- name: upsert_schedule
-- A changed spec takes the caller's first fire time; an unchanged one keeps its own.
-- The writer becomes the schedule's declarer (NULL: written by hand); nothing is
-- written (and nothing returned) when neither changes.
INSERT INTO schedules (
    namespace, name, spec, next_fire_at, declared_by, created_at, updated_at, changed_at)
VALUES (%(namespace)s, %(name)s, %(spec)s, %(next_fire_at)s, %(declared_by)s,
        clock_now(%(now)s), clock_now(%(now)s), clock_now(%(now)s))
ON CONFLICT (namespace, name) DO UPDATE
SET spec = excluded.spec,
    next_fire_at = CASE WHEN schedules.spec <> excluded.spec
                        THEN excluded.next_fire_at ELSE schedules.next_fire_at END,
    declared_by = excluded.declared_by,
    updated_at = excluded.updated_at, changed_at = excluded.changed_at
WHERE schedules.spec <> excluded.spec
   OR schedules.declared_by IS DISTINCT FROM excluded.declared_by
RETURNING id

-- name: schedule_by_name
SELECT s.*, j.status AS last_job_status FROM schedules AS s
LEFT JOIN jobs AS j ON j.id = s.last_job_id
WHERE s.namespace = %(namespace)s AND s.name = %(name)s

-- name: schedules_by_id
SELECT s.*, j.status AS last_job_status FROM schedules AS s
LEFT JOIN jobs AS j ON j.id = s.last_job_id
WHERE s.id = ANY(%(ids)s::bigint[]) AND s.namespace = ANY(%(namespaces)s::text[])

-- name: list_schedules
-- Every schedule of a namespace; with declared_by, only the active ones an app declared
-- (a scheduler's start looks for those its app no longer declares, without reading the
-- others: a namespace may hold a million schedules).
SELECT s.*, j.status AS last_job_status FROM schedules AS s
LEFT JOIN jobs AS j ON j.id = s.last_job_id
WHERE s.namespace = %(namespace)s
  AND (%(declared_by)s::text IS NULL
       OR (s.declared_by = %(declared_by)s AND NOT s.paused AND s.next_fire_at IS NOT NULL))
ORDER BY s.name

-- name: pause_schedule
UPDATE schedules
SET paused = %(paused)s, updated_at = clock_now(%(now)s), changed_at = clock_now(%(now)s)
WHERE namespace = %(namespace)s AND name = %(name)s

-- name: remove_schedule
DELETE FROM schedules WHERE namespace = %(namespace)s AND name = %(name)s RETURNING id

-- name: schedules_due
-- Each namespace's slice off the schedules_due index (see claim_jobs for the form). With
-- partition_count > 0, only the ids whose remainder is in partitions: the other
-- schedulers' rows are filtered in the server, never sent.
SELECT due.id, due.next_fire_at
FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s) AS ns
CROSS JOIN LATERAL (
    SELECT id, next_fire_at FROM schedules
    WHERE schedules.namespace = ns.namespace AND NOT paused AND next_fire_at IS NOT NULL
      AND next_fire_at > %(after)s AND next_fire_at <= %(until)s
      AND (%(partition_count)s = 0
           OR mod(id, %(partition_count)s) = ANY(%(partitions)s::bigint[]))
) AS due

-- name: schedules_changed
SELECT changed.id, changed.next_fire_at
FROM (SELECT unnest(%(namespaces)s::text[]) AS namespace LIMIT %(namespace_count)s) AS ns
CROSS JOIN LATERAL (
    SELECT id, CASE WHEN NOT paused THEN next_fire_at END AS next_fire_at
    FROM schedules
    WHERE schedules.namespace = ns.namespace AND changed_at >= %(since)s
) AS changed

-- name: holders_of
-- The live holder of each of the named leases that has one, its row held FOR SHARE until
-- the caller's transaction ends: nobody can take a lease over while its holder acts under
-- it. The rows are locked in name order (ORDER BY is applied before the lock), the order
-- elect_many takes them, so a firing and an election never wait on each other in a cycle.
SELECT name, holder FROM leases
WHERE namespace = %(namespace)s AND name = ANY(%(names)s::text[])
  AND expires_at >= clock_now(%(now)s)
ORDER BY name
FOR SHARE

-- name: advance_schedules
-- Applies each plan (at most one per schedule) only if its schedule is where the plan
-- found it; the ids of those that moved.
UPDATE schedules
SET next_fire_at = p.next_fire_at,
    last_fire_at = coalesce(p.last_fire_at, schedules.last_fire_at),
    updated_at = clock_now(%(now)s)
FROM unnest(%(id)s::bigint[], %(next_fire_at)s::double precision[],
            %(expected)s::double precision[], %(last_fire_at)s::double precision[])
     AS p(id, next_fire_at, expected, last_fire_at)
WHERE schedules.id = p.id AND schedules.namespace = ANY(%(namespaces)s::text[])
  AND NOT schedules.paused
  AND schedules.next_fire_at = p.expected
RETURNING schedules.id

-- name: unfinished_of_schedule
SELECT status FROM jobs
WHERE schedule_id = %(schedule_id)s AND status IN ('scheduled', 'waiting', 'queued', 'running')

-- name: insert_fired_jobs
-- The jobs of fires, :fires one JSON array of objects (as insert_jobs' requests), their
-- ids ascending in its order, each answered with its schedule and fire time; nothing for
-- a (schedule, fire time) that has one already. Each schedule's last job is set to the
-- one of its latest fire written. A job that waits for its turn (queue_one) is marked so
-- (waiting_on 1): not one waiting for tokens.
WITH fired AS (
    INSERT INTO jobs (
        namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
        max_attempts, guarantee, deadline_policy, created_at, schedule_id, fire_at,
        waiting_on)
    SELECT f.namespace, f.task, f.queue, f.args::json, f.kwargs::json, f.status, f.priority,
           f.run_at, f.deadline, f.timeout, f.max_attempts, f.guarantee, f.deadline_policy,
           clock_now(%(now)s), f.schedule_id, f.fire_at,
           CASE WHEN f.status = 'waiting' THEN 1 ELSE 0 END
    FROM ROWS FROM (json_to_recordset(%(fires)s::json) AS (
        namespace text, task text, queue text, args text, kwargs text, status text,
        priority integer, run_at double precision, deadline double precision,
        timeout double precision, max_attempts integer, guarantee text,
        deadline_policy text, schedule_id bigint, fire_at double precision)
    ) WITH ORDINALITY AS f(
        namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
        max_attempts, guarantee, deadline_policy, schedule_id, fire_at, position)
    ORDER BY f.position
    ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING
    RETURNING id, schedule_id, fire_at
),
noted AS (
    UPDATE schedules SET last_job_id = latest.id
    FROM (SELECT DISTINCT ON (schedule_id) schedule_id, id FROM fired
          ORDER BY schedule_id, fire_at DESC) AS latest
    WHERE schedules.id = latest.schedule_id
)
SELECT id, schedule_id, fire_at FROM fired

-- name: trace_jobs
UPDATE jobs SET trace_parent = %(trace_parent)s
WHERE namespace = %(namespace)s AND id = ANY(%(ids)s::bigint[])

-- name: unfinished_workflow_run
-- Overlap of a workflow schedule: a run it fired that is still going.
SELECT 1 AS running FROM workflow_runs
WHERE schedule_id = %(schedule_id)s AND status = 'running'
LIMIT 1

-- maintenance ---------------------------------------------------------------------------------

-- name: prune
-- Up to %(limit)s jobs that ended before %(before)s with their attempts and edges, the
-- leases that lapsed before it, and the finished runs left without steps. Dead jobs
-- stay: the dead-letter queue is emptied by purge_dead only. The steps of a run still
-- going are kept: its later steps read their results.
WITH lapsed AS (
    DELETE FROM leases WHERE namespace = %(namespace)s AND expires_at < %(before)s
),
prunable AS (
    SELECT id FROM jobs
    WHERE namespace = %(namespace)s AND finished_at < %(before)s
      AND status IN ('succeeded', 'cancelled', 'expired', 'upstream_failed', 'skipped')
      AND NOT EXISTS (
          SELECT 1 FROM workflow_runs AS run
          WHERE run.id = jobs.workflow_run_id AND run.status = 'running')
    ORDER BY finished_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
pruned AS (
    DELETE FROM jobs USING prunable WHERE jobs.id = prunable.id
    RETURNING jobs.id, jobs.workflow_run_id
),
forgotten AS (
    DELETE FROM attempts USING pruned WHERE attempts.job_id = pruned.id
),
unlinked AS (
    DELETE FROM job_deps USING pruned
    WHERE job_deps.job_id = pruned.id OR job_deps.depends_on = pruned.id
),
emptied AS (
    -- Every part of one statement sees the jobs as they were before it: a step pruned
    -- by this statement is still there to the check below, unless told apart.
    DELETE FROM workflow_runs AS run
    WHERE namespace = %(namespace)s AND status <> 'running' AND finished_at < %(before)s
      AND NOT EXISTS (
          SELECT 1 FROM jobs
          WHERE jobs.workflow_run_id = run.id
            AND jobs.id NOT IN (SELECT id FROM pruned WHERE workflow_run_id IS NOT NULL))
)
SELECT count(*) AS pruned FROM pruned

-- workers and leases --------------------------------------------------------------------------

-- name: register_worker
INSERT INTO workers (
    id, namespace, hostname, pid, queues, concurrency, pool, heartbeat_interval,
    started_at, last_seen_at)
VALUES (%(id)s, %(namespace)s, %(hostname)s, %(pid)s, %(queues)s::text[], %(concurrency)s,
        %(pool)s, %(heartbeat_interval)s, clock_now(%(now)s), clock_now(%(now)s))
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at

-- name: unregister_worker
DELETE FROM workers WHERE id = %(worker_id)s

-- name: elect_many
-- Each lease that is free, lapsed or already ours is (re)taken for ttl from now; the
-- names come sorted, so that two electors of overlapping sets lock rows in one order.
INSERT INTO leases (namespace, name, holder, expires_at)
SELECT %(namespace)s, name, %(holder)s, clock_now(%(now)s) + %(ttl)s
FROM unnest(%(names)s::text[]) AS name
ON CONFLICT (namespace, name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at,
    term = leases.term + CASE WHEN leases.holder <> excluded.holder THEN 1 ELSE 0 END
WHERE leases.holder = excluded.holder OR leases.expires_at < clock_now(%(now)s)
RETURNING name

-- name: lease_holders
-- starts_with, not LIKE: the prefix is literal (a "_" in it is no wildcard).
SELECT name, holder FROM leases
WHERE namespace = %(namespace)s AND starts_with(name, %(prefix)s::text)
  AND expires_at >= clock_now(%(now)s)

-- name: resign
DELETE FROM leases
WHERE namespace = %(namespace)s AND name = %(name)s AND holder = %(holder)s

-- stats ---------------------------------------------------------------------------------------

-- name: count_by_state
SELECT queue, status, count(*) AS count FROM jobs WHERE namespace = %(namespace)s
GROUP BY queue, status

-- name: start_waits
-- From ready (due, or created if due before) to started, for the jobs whose latest
-- attempt started at since or later (claims set started_at; retries move run_at on).
SELECT queue, priority, count(*) AS count,
       avg(greatest(0, started_at - greatest(run_at, created_at))) AS mean,
       max(greatest(0, started_at - greatest(run_at, created_at))) AS longest
FROM jobs
WHERE namespace = %(namespace)s AND started_at >= %(since)s::float8
GROUP BY queue, priority

-- name: depth_by_priority
-- The unfinished and dead jobs by queue, state and priority (finished jobs are not
-- read). A job is ready since it was due, or since it was created if it was due before
-- that (enqueued --at a past time).
SELECT queue, status, priority, count(*) AS count,
       min(greatest(run_at, created_at)) FILTER (WHERE status = 'queued') AS first_ready
FROM jobs
WHERE namespace = %(namespace)s
  AND status IN ('scheduled', 'waiting', 'queued', 'running', 'dead')
GROUP BY queue, status, priority

-- name: list_workers
SELECT * FROM workers WHERE namespace = %(namespace)s ORDER BY started_at, id

-- name: slowest_heartbeat
-- The longest heartbeat interval of the workers registered for a namespace or for every
-- namespace (all of them, asked for every namespace), alive or not: how long the rescue
-- gives them once the store is back.
SELECT max(heartbeat_interval) AS slowest FROM workers
WHERE namespace IN (%(namespace)s, %(every_namespace)s)
   OR %(namespace)s = %(every_namespace)s

-- observation (stores/observation.py) --------------------------------------------------------

-- name: jobs_ahead
-- The ready jobs of a job's queue that a claim takes before it, in the claim's order
-- (jobs_ready's: rank, that is priority and aging, then fair pass, deadline with none
-- last, due time, id), counted by priority: the queued jobs of the queue (jobs_status),
-- less those waiting for a concurrency slot (blocked), which no claim takes. The order
-- is one row comparison, every column ascending (the rank negated), with the job's own
-- row as stored: a due time read back through a datetime is rounded to the
-- microsecond, and rounded up it put the job ahead of itself.
SELECT j.priority, count(*) AS count
FROM jobs AS me JOIN jobs AS j ON j.namespace = me.namespace AND j.queue = me.queue
WHERE me.id = %(id)s AND j.status = 'queued' AND NOT j.blocked
  AND (-(j.priority + j.rank_offset), j.fair_pass, coalesce(j.deadline, 'Infinity'),
       j.run_at, j.id)
      < (-(me.priority + me.rank_offset), me.fair_pass, coalesce(me.deadline, 'Infinity'),
         me.run_at, me.id)
GROUP BY j.priority ORDER BY j.priority DESC

-- name: depth_by_band
-- What a metrics scrape reports: every namespace's unfinished and dead jobs by queue,
-- state and priority; for ready ones, when the first became ready (see
-- depth_by_priority). The planner's choice: with the table's statistics, a scan of the
-- table, finished jobs included (a skip over the namespaces with a scan of jobs_status
-- per namespace was planned as a sequential scan per namespace on a table whose
-- statistics were gathered before its jobs finished, and compiled: 170 ms against 15).
SELECT namespace, queue, status, priority, count(*) AS count,
       min(greatest(run_at, created_at)) FILTER (WHERE status = 'queued') AS first_ready
FROM jobs
WHERE status IN ('scheduled', 'waiting', 'queued', 'running', 'dead')
GROUP BY namespace, queue, status, priority

-- name: all_workers
SELECT * FROM workers ORDER BY started_at, id

-- alerts (stores/alerting.py) ------------------------------------------------------------------

-- name: upsert_alert_rule
-- A rule defined again keeps its creation time and where it stands.
INSERT INTO alert_rules (namespace, name, kind, spec, url, secret, created_at)
VALUES (%(namespace)s, %(name)s, %(kind)s, %(spec)s, %(url)s, %(secret)s, %(now)s::float8)
ON CONFLICT (namespace, name) DO UPDATE SET
    kind = excluded.kind, spec = excluded.spec, url = excluded.url, secret = excluded.secret
RETURNING *

-- name: alert_rule
SELECT * FROM alert_rules WHERE namespace = %(namespace)s AND name = %(name)s

-- name: list_alert_rules
SELECT * FROM alert_rules WHERE namespace = %(namespace)s ORDER BY name

-- name: alert_namespaces
SELECT DISTINCT namespace FROM alert_rules ORDER BY namespace

-- name: delete_alert_rule
DELETE FROM alert_rules WHERE namespace = %(namespace)s AND name = %(name)s RETURNING name

-- name: delete_alert_deliveries
DELETE FROM alert_deliveries WHERE namespace = %(namespace)s AND rule = %(name)s

-- name: fire_alert
-- ok -> firing, once: of two evaluators only the first finds it ok. The answer is the
-- number of this firing.
UPDATE alert_rules
SET state = 'firing', firing = firing + 1, changed_at = %(now)s::float8, value = %(value)s::float8,
    evaluated_at = %(now)s::float8
WHERE namespace = %(namespace)s AND name = %(name)s AND state = 'ok'
RETURNING firing

-- name: resolve_alert
-- firing -> ok, once; the answer is the number of the firing it resolves.
UPDATE alert_rules
SET state = 'ok', changed_at = %(now)s::float8, value = %(value)s::float8, evaluated_at = %(now)s::float8
WHERE namespace = %(namespace)s AND name = %(name)s AND state = 'firing'
RETURNING firing

-- name: note_alert_value
UPDATE alert_rules SET value = %(value)s::float8, evaluated_at = %(now)s::float8
WHERE namespace = %(namespace)s AND name = %(name)s

-- name: insert_alert_delivery
-- Nothing when this (rule, firing, event) has one already.
INSERT INTO alert_deliveries (namespace, rule, firing, event, url, body, next_at, created_at)
VALUES (%(namespace)s, %(name)s, %(firing)s::integer, %(event)s, %(url)s, %(body)s, %(now)s::float8, %(now)s::float8)
ON CONFLICT (namespace, rule, firing, event) DO NOTHING
RETURNING *

-- name: due_alert_deliveries
SELECT * FROM alert_deliveries
WHERE namespace = %(namespace)s AND status = 'pending' AND next_at <= %(now)s::float8
ORDER BY next_at, id
LIMIT %(limit)s

-- name: record_alert_delivery
UPDATE alert_deliveries
SET attempts = attempts + 1, status = %(status)s::text, next_at = %(next_at)s::float8,
    last_status_code = %(status_code)s, last_error = %(error)s,
    delivered_at = CASE WHEN %(status)s::text = 'delivered' THEN %(now)s::float8 END
WHERE id = %(id)s
RETURNING *

-- name: list_alert_deliveries
SELECT * FROM alert_deliveries
WHERE namespace = %(namespace)s AND rule = %(name)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: alert_attempts
-- failure_rate: the task's attempts that ended since :since, and those that failed (an
-- attempt cancelled or given back at shutdown is neither).
SELECT count(*) AS total,
       coalesce(sum(CASE WHEN a.outcome IN ('failed', 'timed_out', 'crashed', 'lease_expired')
                         THEN 1 ELSE 0 END), 0) AS failed
FROM attempts AS a JOIN jobs AS j ON j.id = a.job_id
WHERE a.namespace = %(namespace)s AND j.task = %(task)s AND a.ended_at >= %(since)s::float8
  AND a.outcome NOT IN ('cancelled', 'interrupted')

-- name: alert_dead_since
-- dlq_growing: jobs (of :queue, when given) that went dead since :since.
SELECT count(*) AS count FROM jobs
WHERE namespace = %(namespace)s AND status = 'dead' AND finished_at >= %(since)s::float8
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)

-- name: alert_first_ready
-- oldest_ready: when the oldest ready job of :queue (at :priority, when given) became
-- ready (see depth_by_priority).
SELECT min(greatest(run_at, created_at)) AS first_ready FROM jobs
WHERE namespace = %(namespace)s AND status = 'queued' AND queue = %(queue)s
  AND (%(priority)s::integer IS NULL OR priority = %(priority)s)

-- name: alert_late_schedules
-- schedule_missed: active schedules (:schedule, when given) whose fire time is before
-- :before: nobody fired them.
SELECT name, next_fire_at FROM schedules
WHERE namespace = %(namespace)s AND NOT paused AND next_fire_at IS NOT NULL
  AND next_fire_at < %(before)s::float8 AND (%(schedule)s::text IS NULL OR name = %(schedule)s)
ORDER BY next_fire_at
LIMIT 20

-- workflows (postgres/workflow_steps.py) ------------------------------------------------------

-- name: insert_run
-- A run, a job per step and the edges, in one statement; nothing when the (schedule,
-- fire time) has a run already. Step ids ascend in the order of the steps; the roots
-- are ready, or due at %(run_at)s when that is later; the others wait on their count.
-- Edges come as (dependency, dependent) step names.
WITH run AS (
    INSERT INTO workflow_runs (
        namespace, name, status, on_failure, created_at, schedule_id, fire_at)
    VALUES (%(namespace)s, %(name)s, 'running', %(on_failure)s, clock_now(%(now)s),
            %(schedule_id)s, %(fire_at)s)
    ON CONFLICT (schedule_id, fire_at) WHERE schedule_id IS NOT NULL DO NOTHING
    RETURNING id
),
steps AS (
    INSERT INTO jobs (
        namespace, task, queue, args, kwargs, status, priority, run_at, deadline, timeout,
        max_attempts, guarantee, deadline_policy, created_at, workflow_run_id, step,
        failure_policy, waiting_on)
    SELECT %(namespace)s, s.task, s.queue, s.args::json, s.kwargs::json,
           CASE WHEN s.waiting_on > 0 THEN 'waiting'
                WHEN %(run_at)s::double precision > clock_now(%(now)s) THEN 'scheduled'
                ELSE 'queued' END,
           s.priority, %(run_at)s, s.deadline, s.timeout, s.max_attempts, s.guarantee,
           s.deadline_policy, clock_now(%(now)s), run.id, s.step, s.failure_policy,
           s.waiting_on
    FROM run CROSS JOIN unnest(
        %(task)s::text[], %(queue)s::text[], %(args)s::text[], %(kwargs)s::text[],
        %(priority)s::integer[], %(deadline)s::double precision[],
        %(timeout)s::double precision[], %(max_attempts)s::integer[], %(guarantee)s::text[],
        %(deadline_policy)s::text[], %(step)s::text[], %(failure_policy)s::text[],
        %(waiting_on)s::integer[]
    ) WITH ORDINALITY AS s(task, queue, args, kwargs, priority, deadline, timeout,
                           max_attempts, guarantee, deadline_policy, step, failure_policy,
                           waiting_on, position)
    ORDER BY s.position
    RETURNING jobs.id, jobs.step
),
edges AS (
    INSERT INTO job_deps (namespace, run_id, depends_on, job_id)
    SELECT %(namespace)s, run.id, dependency.id, dependent.id
    FROM run
    CROSS JOIN unnest(%(edge_from)s::text[], %(edge_to)s::text[]) AS e(dependency, dependent)
    JOIN steps AS dependency ON dependency.step = e.dependency
    JOIN steps AS dependent ON dependent.step = e.dependent
)
SELECT id FROM run

-- name: release_dependents
-- The steps after the ones that ended wait for as many dependencies fewer; those that
-- reach none become ready (and the trigger wakes the workers).
WITH released AS (
    SELECT d.job_id, count(*) AS ended FROM job_deps AS d
    WHERE d.depends_on = ANY(%(ids)s::bigint[])
    GROUP BY d.job_id
)
UPDATE jobs
SET waiting_on = greatest(waiting_on - released.ended, 0),
    status = CASE WHEN waiting_on <= released.ended THEN 'queued' ELSE status END,
    run_at = CASE WHEN waiting_on <= released.ended
                  THEN greatest(run_at, clock_now(%(now)s)) ELSE run_at END
FROM released
WHERE jobs.id = released.job_id AND jobs.status = 'waiting' AND jobs.waiting_on > 0

-- name: block_downstream
-- Every step still waiting behind a failed one can never run.
WITH RECURSIVE downstream(id) AS (
    SELECT d.job_id FROM job_deps AS d
    JOIN jobs AS j ON j.id = d.job_id
    WHERE d.depends_on = %(id)s AND j.status = 'waiting'
    UNION
    SELECT d.job_id FROM downstream
    JOIN job_deps AS d ON d.depends_on = downstream.id
    JOIN jobs AS j ON j.id = d.job_id
    WHERE j.status = 'waiting'
)
UPDATE jobs
SET status = 'upstream_failed', finished_at = clock_now(%(now)s), waiting_on = 0,
    last_error = %(error)s
WHERE id IN (SELECT id FROM downstream) AND status = 'waiting'

-- name: cancel_pending_steps
UPDATE jobs
SET status = 'cancelled', finished_at = clock_now(%(now)s), waiting_on = 0,
    last_error = %(error)s
WHERE workflow_run_id = %(run_id)s AND status IN ('waiting', 'queued', 'scheduled')

-- name: request_cancel_running_steps
WITH asked AS (
    UPDATE jobs SET cancel_requested = true
    WHERE workflow_run_id = %(run_id)s AND status = 'running' AND NOT cancel_requested
    RETURNING 1
)
SELECT count(*) AS asked FROM asked

-- name: settlement
-- A running run whose steps have all ended: its counts of steps by state, to judge its
-- final state by (nothing when a step is unfinished, or the run is not running).
SELECT run.cancel_requested, j.status, count(*) AS count
FROM workflow_runs AS run JOIN jobs AS j ON j.workflow_run_id = run.id
WHERE run.id = %(run_id)s AND run.status = 'running'
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS u
      WHERE u.workflow_run_id = run.id
        AND u.status IN ('scheduled', 'waiting', 'queued', 'running'))
GROUP BY run.cancel_requested, j.status

-- name: finish_run
UPDATE workflow_runs SET status = %(status)s, finished_at = clock_now(%(now)s)
WHERE id = %(run_id)s AND status = 'running'

-- name: lock_run
-- Retries and cancellations of one run wait for each other.
SELECT id FROM workflow_runs WHERE namespace = %(namespace)s AND id = %(run_id)s FOR UPDATE

-- name: request_cancel_run
UPDATE workflow_runs SET cancel_requested = true
WHERE namespace = %(namespace)s AND id = %(run_id)s AND status = 'running'

-- name: reopen_run
UPDATE workflow_runs SET status = 'running', finished_at = NULL, cancel_requested = false
WHERE id = %(run_id)s

-- name: reset_steps
-- Retried steps start afresh, each only while it is still in its expected state; a
-- deadline already passed would expire one at once.
UPDATE jobs
SET status = r.status, waiting_on = r.waiting_on, attempt = 0, run_at = clock_now(%(now)s),
    finished_at = NULL, result = NULL, cancel_requested = false, worker_id = NULL,
    lease_expires_at = NULL,
    deadline = CASE WHEN jobs.deadline <= clock_now(%(now)s) THEN NULL ELSE jobs.deadline END
FROM unnest(%(id)s::bigint[], %(status)s::text[], %(waiting_on)s::integer[],
            %(expected)s::text[]) AS r(id, status, waiting_on, expected)
WHERE jobs.id = r.id AND jobs.status = r.expected

-- name: workflow_run
SELECT * FROM workflow_runs WHERE namespace = %(namespace)s AND id = %(run_id)s

-- name: list_workflow_runs
SELECT * FROM workflow_runs
WHERE namespace = %(namespace)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
ORDER BY id DESC
LIMIT %(limit)s

-- name: workflow_steps
SELECT * FROM jobs WHERE workflow_run_id = %(run_id)s ORDER BY id

-- name: workflow_edges
SELECT d.depends_on, d.job_id
FROM jobs AS j JOIN job_deps AS d ON d.job_id = j.id
WHERE j.workflow_run_id = %(run_id)s
ORDER BY d.job_id, d.depends_on

-- name: step_counts
SELECT workflow_run_id, status, count(*) AS count FROM jobs
WHERE workflow_run_id = ANY(%(run_ids)s::bigint[])
GROUP BY workflow_run_id, status

-- name: upstream_outcomes
SELECT j.id, j.step, j.status, j.result, j.last_error
FROM job_deps AS d JOIN jobs AS j ON j.id = d.depends_on
WHERE d.job_id = %(job_id)s AND j.namespace = %(namespace)s
ORDER BY j.id

-- API keys and quotas ---------------------------------------------------------------------------

-- name: insert_api_key
INSERT INTO api_keys (prefix, digest, namespace, role, name, created_at)
VALUES (%(prefix)s, %(digest)s, %(namespace)s, %(role)s, %(name)s, clock_now(%(now)s))
RETURNING *

-- name: api_key
SELECT * FROM api_keys WHERE prefix = %(prefix)s

-- name: list_api_keys
SELECT * FROM api_keys
WHERE %(namespace)s::text IS NULL OR namespace = %(namespace)s::text
ORDER BY created_at, prefix

-- name: revoke_api_key
-- Revoking twice keeps the first time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, clock_now(%(now)s))
WHERE prefix = %(prefix)s
RETURNING *

-- name: upsert_webhook
-- A webhook defined again keeps its creation time.
INSERT INTO webhooks (namespace, name, task, queue, secret, idempotency_header,
                      idempotency_pointer, created_at)
VALUES (%(namespace)s, %(name)s, %(task)s, %(queue)s, %(secret)s, %(idempotency_header)s,
        %(idempotency_pointer)s, clock_now(%(now)s))
ON CONFLICT (namespace, name) DO UPDATE SET
    task = excluded.task, queue = excluded.queue, secret = excluded.secret,
    idempotency_header = excluded.idempotency_header,
    idempotency_pointer = excluded.idempotency_pointer
RETURNING *

-- name: webhook
SELECT * FROM webhooks WHERE namespace = %(namespace)s AND name = %(name)s

-- name: list_webhooks
SELECT * FROM webhooks WHERE namespace = %(namespace)s ORDER BY name

-- name: delete_webhook
DELETE FROM webhooks WHERE namespace = %(namespace)s AND name = %(name)s
RETURNING name

-- name: get_quota
SELECT * FROM quotas WHERE namespace = %(namespace)s

-- name: set_quota
-- A changed quota keeps its rate bucket (refilled to the new rate at the next enqueue).
INSERT INTO quotas (namespace, max_queued, max_enqueue_rate, max_active_schedules)
VALUES (%(namespace)s, %(max_queued)s, %(max_enqueue_rate)s, %(max_active_schedules)s)
ON CONFLICT (namespace) DO UPDATE
SET max_queued = EXCLUDED.max_queued, max_enqueue_rate = EXCLUDED.max_enqueue_rate,
    max_active_schedules = EXCLUDED.max_active_schedules

-- name: remove_quota
DELETE FROM quotas WHERE namespace = %(namespace)s

-- name: quota_usage
-- The quota of an enqueue's namespace, locked until the enqueue commits (enqueues of a
-- namespace with a quota take turns), with its jobs waiting to run counted up to one
-- past the limit (no count at all without one).
SELECT quotas.*,
       (SELECT count(*) FROM (
            SELECT 1 FROM jobs
            WHERE namespace = %(namespace)s AND status IN ('queued', 'scheduled', 'waiting')
            LIMIT (SELECT coalesce(max_queued + 1, 0) FROM quotas
                   WHERE namespace = %(namespace)s)) AS counted) AS queued
FROM quotas WHERE namespace = %(namespace)s
FOR UPDATE

-- name: spend_tokens
UPDATE quotas SET tokens = %(tokens)s, tokens_at = %(tokens_at)s
WHERE namespace = %(namespace)s

-- name: count_active_schedules
SELECT count(*) AS active FROM schedules
WHERE namespace = %(namespace)s AND NOT paused AND next_fire_at IS NOT NULL

-- dispatch control (stores/dispatch.py) ---------------------------------------------------------
-- A gate (a paused queue or task) holds the queued jobs it matches blocked, out of the ready
-- index; the triggers of migration 0008 block the jobs that become queued while it stands.

-- name: lock_gates
-- Taken by a pause or resume before it reads the jobs, until it commits: the triggers
-- that judge a job becoming ready by the gates take it shared (migration 0008), so no
-- transaction that judged a job by the gates as they were before is still to commit.
SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':gates'))

-- name: arm_gates
-- Nothing to do here: PostgreSQL's gate triggers are permanent (migration 0008). Unlike
-- SQLite's, they cost nothing measurable without gates: one call per INSERT statement,
-- and a WHEN clause checked without a call for rows that do not become queued. (The
-- executor does not send this; the block keeps the query names of both stores alike.)
SELECT 1

-- name: disarm_gates
-- As arm_gates: nothing to do.
SELECT 1

-- name: any_pauses
SELECT EXISTS (SELECT 1 FROM pauses) AS found

-- name: insert_pause
-- Nothing when the gate stands already (it keeps the time it was first paused).
INSERT INTO pauses (namespace, kind, name, paused_at, until)
VALUES (%(namespace)s, %(kind)s, %(name)s, clock_now(%(now)s), %(until)s)
ON CONFLICT (namespace, kind, name) DO NOTHING
RETURNING name

-- name: set_pause_until
-- A gate paused again: its new end (NULL: none).
UPDATE pauses SET until = %(until)s
WHERE namespace = %(namespace)s AND kind = %(kind)s AND name = %(name)s

-- name: due_pauses
-- The gates of %(namespace)s whose time is up.
SELECT kind, name FROM pauses
WHERE namespace = %(namespace)s AND until <= clock_now(%(now)s)
ORDER BY kind, name

-- name: block_jobs
-- The queued jobs of the queue or task (%(kind)s, %(name)s) leave the ready index.
UPDATE jobs SET blocked = true
WHERE namespace = %(namespace)s AND status = 'queued' AND NOT blocked
  AND CASE %(kind)s WHEN 'queue' THEN queue = %(name)s ELSE task = %(name)s END
RETURNING id

-- name: delete_pause
DELETE FROM pauses WHERE namespace = %(namespace)s AND kind = %(kind)s AND name = %(name)s
RETURNING name

-- name: unblock_jobs
-- After delete_pause: the queued jobs of the queue or task go back to the ready index,
-- unless another gate still holds them; keyed jobs wait for their keys' slots
-- (held_keys, then admit_waiting for each key). (Nothing wakes the workers by itself: the
-- store asks for it.)
UPDATE jobs SET blocked = false
WHERE namespace = %(namespace)s AND status = 'queued' AND blocked
  AND gate_key IS NULL
  AND CASE %(kind)s WHEN 'queue' THEN queue = %(name)s ELSE task = %(name)s END
  AND NOT EXISTS (
      SELECT 1 FROM pauses AS p
      WHERE p.namespace = jobs.namespace
        AND ((p.kind = 'queue' AND p.name = jobs.queue)
             OR (p.kind = 'task' AND p.name = jobs.task)))
RETURNING id

-- name: held_keys
-- The keys of the queued jobs the queue or task (%(kind)s, %(name)s) held: after
-- delete_pause, each key's waiting jobs are admitted to its free slots.
SELECT DISTINCT gate_key AS key FROM jobs
WHERE namespace = %(namespace)s AND status = 'queued' AND blocked AND gate_key IS NOT NULL
  AND CASE %(kind)s WHEN 'queue' THEN queue = %(name)s ELSE task = %(name)s END
ORDER BY gate_key

-- name: list_pauses
-- A namespace's gates, with how many queued jobs each holds (a job two gates hold counts
-- in both).
SELECT p.namespace, p.kind, p.name, p.paused_at, p.until,
       (SELECT count(*) FROM jobs AS j
        WHERE j.namespace = p.namespace AND j.status = 'queued' AND j.blocked
          AND CASE p.kind WHEN 'queue' THEN j.queue = p.name ELSE j.task = p.name END) AS held
FROM pauses AS p
WHERE p.namespace = %(namespace)s
ORDER BY p.kind, p.name

-- name: set_queue_limit
INSERT INTO queue_limits (namespace, queue, max_depth)
VALUES (%(namespace)s, %(queue)s, %(max_depth)s)
ON CONFLICT (namespace, queue) DO UPDATE SET max_depth = excluded.max_depth

-- name: delete_queue_limit
DELETE FROM queue_limits WHERE namespace = %(namespace)s AND queue = %(queue)s
RETURNING queue

-- name: list_queue_limits
-- A namespace's queues with a maximum depth, and their depth now.
SELECT l.namespace, l.queue, l.max_depth,
       (SELECT count(*) FROM jobs AS j
        WHERE j.namespace = l.namespace AND j.queue = l.queue
          AND j.status IN ('queued', 'scheduled', 'waiting')) AS depth
FROM queue_limits AS l
WHERE l.namespace = %(namespace)s
ORDER BY l.queue

-- name: lock_queue_limit
-- The maximum depth of an enqueue's queue, locked until the enqueue commits (enqueues
-- into a queue with a maximum depth take turns); nothing without one.
SELECT max_depth FROM queue_limits WHERE namespace = %(namespace)s AND queue = %(queue)s
FOR UPDATE

-- name: queue_depth
-- Then, in a statement of its own (whose snapshot is taken once the lock is held, so it
-- sees the jobs of the enqueue that held it before), the queue's jobs waiting to run,
-- counted up to %(up_to)s at most.
SELECT count(*) AS depth FROM (
    SELECT 1 FROM jobs
    WHERE namespace = %(namespace)s AND status IN ('queued', 'scheduled', 'waiting')
      AND queue = %(queue)s
    LIMIT %(up_to)s) AS counted

-- key gates (stores/dispatch.py) --------------------------------------------------------------
-- A keyed job holds a slot of its key while it is queued and not blocked, or running; the
-- triggers of migration 0012 keep the slots under the namespace's slot lock.

-- name: lock_slots
-- Taken by an operation on a key's gate before it reads or moves its jobs, until it
-- commits (as the slot triggers take it).
--
-- A statement that moves many keyed rows takes the lock at its first keyed row and
-- holds it while it goes on locking the next rows, so it can wait for a row lock while
-- holding a namespace's slot lock: a worker's finish_attempts does when it queues a
-- keyed job again (slot_taken; rows locked one by one as it updates them; the slots it
-- frees it gives back after its rows, release_slots). A statement that locks its rows
-- up front and only then asks for the slot lock would wait on it in a cycle when a job
-- is in both; rescue_expired locks its rows up front, so the store takes this lock
-- before it rescues the jobs whose end needs it (tests/postgres/test_lock_order.py).
SELECT lock_slots(%(namespace)s)

-- name: defer_slot_release
-- Before a report's finish_attempts: the slots its rows free are not given back row by
-- row (jobs_slot_freed leaves them alone while this holds) but by release_slots after
-- it, for all of its keys at once (migration 0018).
SELECT set_config('taskwheel.slots_freed', 'by_statement', true)

-- name: release_slots
-- After it: rows free their slots row by row again, and the keys the report freed
-- (%(namespace)s[i], %(key)s[i]) admit their waiting jobs, a namespace at a time in
-- namespace order (each under its slot lock, taken now); how many were admitted.
SELECT set_config('taskwheel.slots_freed', '', true) AS reset,
       (SELECT coalesce(sum(admit_keys(freed.namespace, freed.keys)), 0)
        FROM (SELECT namespace, array_agg(key ORDER BY key) AS keys
              FROM unnest(%(namespace)s::text[], %(key)s::text[]) AS f(namespace, key)
              GROUP BY namespace ORDER BY namespace) AS freed)::integer AS admitted

-- name: arm_limits
-- Nothing to arm: the slot triggers are permanent (a row that has no key never calls
-- them: their WHEN clauses look at the row alone).
SELECT 1

-- name: admit_waiting
-- The free slots of the keys %(keys)s go to the jobs waiting for one, in dispatch order,
-- by one statement (admit_keys, migration 0018); the answer is how many were admitted.
SELECT admit_keys(%(namespace)s, %(keys)s::text[]) AS admitted

-- name: job_gate
-- A job's key and whether it waits blocked (for `taskwheel jobs explain`).
SELECT gate_key, blocked FROM jobs WHERE namespace = %(namespace)s AND id = %(id)s

-- name: any_limits
-- Whether any key is known (SQLite's slot triggers exist then).
SELECT EXISTS (SELECT 1 FROM limits) AS found

-- name: declare_limits
-- The keys of an enqueue (%(limits)s, JSON [{namespace, key, capacity, failures, window,
-- cooldown, rate}]) with the slots and breaker rule their tasks declare; a limit set by
-- hand stays as it is. In key order: two enqueues lock the rows in one order.
INSERT INTO limits (namespace, key, capacity, created_at, breaker_failures, breaker_window,
                    breaker_cooldown, breaker_failure_rate)
SELECT d.namespace, d.key, d.capacity, clock_now(%(now)s), d.failures, d.window, d.cooldown,
       d.rate
FROM json_to_recordset(%(limits)s::json)
     AS d(namespace text, key text, capacity integer, failures integer,
          "window" double precision, cooldown double precision, rate double precision)
ORDER BY d.namespace, d.key
ON CONFLICT (namespace, key) DO UPDATE
SET capacity = CASE WHEN limits.set_by_hand THEN limits.capacity ELSE excluded.capacity END,
    breaker_failures = excluded.breaker_failures, breaker_window = excluded.breaker_window,
    breaker_cooldown = excluded.breaker_cooldown,
    breaker_failure_rate = excluded.breaker_failure_rate
WHERE (NOT limits.set_by_hand AND limits.capacity IS DISTINCT FROM excluded.capacity)
   OR limits.breaker_failures IS DISTINCT FROM excluded.breaker_failures
   OR limits.breaker_window IS DISTINCT FROM excluded.breaker_window
   OR limits.breaker_cooldown IS DISTINCT FROM excluded.breaker_cooldown
   OR limits.breaker_failure_rate IS DISTINCT FROM excluded.breaker_failure_rate

-- name: set_gate_keys
-- The enqueue's new jobs get their keys (%(keys)s, JSON [{id, key}]): each takes a
-- slot or waits (jobs_slot_taken).
UPDATE jobs SET gate_key = k.key
FROM json_to_recordset(%(keys)s::json) AS k(id bigint, key text)
WHERE jobs.id = k.id

-- name: set_limit
-- A key's slots set by hand (a declaration no longer changes them); the row is created
-- if the key has none yet.
INSERT INTO limits (namespace, key, capacity, set_by_hand, created_at)
VALUES (%(namespace)s, %(key)s, %(capacity)s, true, clock_now(%(now)s))
ON CONFLICT (namespace, key) DO UPDATE SET capacity = excluded.capacity, set_by_hand = true

-- name: pause_key
-- A key's gate closed (it keeps the time it was first paused), until %(until)s (NULL:
-- a resume); nothing when the key has no row.
UPDATE limits SET paused_at = coalesce(paused_at, clock_now(%(now)s)),
                  paused_until = %(until)s
WHERE namespace = %(namespace)s AND key = %(key)s
RETURNING key

-- name: block_key
-- The ready jobs of a paused key leave the ready index (giving their slots back).
UPDATE jobs SET blocked = true
WHERE namespace = %(namespace)s AND gate_key = %(key)s AND status = 'queued' AND NOT blocked
RETURNING id

-- name: resume_key
-- Nothing when the key is not paused.
UPDATE limits SET paused_at = NULL, paused_until = NULL
WHERE namespace = %(namespace)s AND key = %(key)s AND paused_at IS NOT NULL
RETURNING key

-- name: due_key_pauses
-- The keys of %(namespace)s whose pause's time is up.
SELECT key FROM limits
WHERE namespace = %(namespace)s AND paused_until <= clock_now(%(now)s)
ORDER BY key

-- name: waiting_keys
-- The keys of %(namespace)s with jobs waiting for a slot: a skip along jobs_gated.
WITH RECURSIVE waiting(key) AS (
    SELECT min(gate_key) FROM jobs
    WHERE namespace = %(namespace)s AND gate_key IS NOT NULL AND status = 'queued' AND blocked
    UNION ALL
    SELECT (SELECT min(gate_key) FROM jobs
            WHERE namespace = %(namespace)s AND gate_key > seen.key AND status = 'queued'
              AND blocked)
    FROM waiting AS seen WHERE seen.key IS NOT NULL
)
SELECT key FROM waiting WHERE key IS NOT NULL

-- name: list_limits
-- A namespace's keys (one key with %(key)s; all with NULL), with the slots in use and
-- the jobs waiting for one.
SELECT l.namespace, l.key, l.capacity, l.set_by_hand, l.paused_at, l.paused_until,
       l.breaker_state, l.breaker_until, l.failures, l.attempts, l.window_started,
       l.breaker_failures, l.breaker_window, l.breaker_cooldown, l.breaker_failure_rate,
       (SELECT count(*) FROM jobs AS h
        WHERE h.namespace = l.namespace AND h.gate_key = l.key
          AND h.status IN ('queued', 'running') AND NOT h.blocked) AS in_use,
       (SELECT count(*) FROM jobs AS w
        WHERE w.namespace = l.namespace AND w.gate_key = l.key
          AND w.status = 'queued' AND w.blocked) AS waiting
FROM limits AS l
WHERE l.namespace = %(namespace)s AND (%(key)s::text IS NULL OR l.key = %(key)s)
ORDER BY l.key

-- name: touch_limit
-- A key's row, created without a limit when it has none (a breaker opened for a key
-- no job declared).
INSERT INTO limits (namespace, key, created_at)
VALUES (%(namespace)s, %(key)s, clock_now(%(now)s))
ON CONFLICT (namespace, key) DO NOTHING

-- name: breaker_states
-- The breakers of the keyed jobs among %(ids)s (JSON) that have a breaker rule, or a
-- breaker that is not closed, or are in %(tripped)s (JSON: jobs whose task opened one);
-- nothing, at the cost of one probe, while no key has a breaker.
SELECT j.id, j.namespace, j.gate_key AS key, l.breaker_state, l.failures, l.attempts,
       l.window_started, l.breaker_until, l.breaker_failures, l.breaker_window,
       l.breaker_cooldown, l.breaker_failure_rate
FROM jobs AS j
JOIN limits AS l ON l.namespace = j.namespace AND l.key = j.gate_key
WHERE (EXISTS (SELECT 1 FROM limits
               WHERE breaker_failures IS NOT NULL OR breaker_state <> 'closed')
       OR json_array_length(%(tripped)s::json) > 0)
  AND j.id IN (SELECT value::bigint FROM json_array_elements_text(%(ids)s::json))
  AND j.gate_key IS NOT NULL
  AND (l.breaker_failures IS NOT NULL OR l.breaker_state <> 'closed'
       OR j.id IN (SELECT value::bigint FROM json_array_elements_text(%(tripped)s::json)))

-- name: key_breaker
-- One key's breaker (nothing without a row).
SELECT namespace, key, breaker_state, failures, attempts, window_started, breaker_until,
       breaker_failures, breaker_window, breaker_cooldown, breaker_failure_rate
FROM limits WHERE namespace = %(namespace)s AND key = %(key)s

-- name: set_breaker
UPDATE limits
SET breaker_state = %(state)s, failures = %(failures)s, attempts = %(attempts)s,
    window_started = %(window_started)s, breaker_until = %(until)s
WHERE namespace = %(namespace)s AND key = %(key)s

-- name: due_breakers
-- The keys of %(namespace)s whose open breaker's time is up.
SELECT key FROM limits
WHERE namespace = %(namespace)s AND breaker_state = 'open'
  AND breaker_until <= clock_now(%(now)s)
ORDER BY key
-- name: uses_placing
-- Whether jobs written in the namespace need places (`taskwheel.fairness`): it has a
-- fairness flow or a queue that ages. One statement: a fire asks it each time.
SELECT EXISTS (SELECT 1 FROM fair_flows WHERE namespace = %(namespace)s)
       OR EXISTS (SELECT 1 FROM queue_aging WHERE namespace = %(namespace)s) AS found

-- name: is_fair
-- Fair shares and aging (`taskwheel.fairness`): whether the namespace has a fairness flow.
SELECT EXISTS (SELECT 1 FROM fair_flows WHERE namespace = %(namespace)s) AS found

-- name: lock_fair_flow
-- A flow's weight and last pass, locked until the enqueue's transaction ends (two
-- enqueues of one flow take their passes one after the other).
SELECT weight, last_pass FROM fair_flows
WHERE namespace = %(namespace)s AND key = %(key)s
FOR UPDATE

-- name: save_fair_flow
INSERT INTO fair_flows (namespace, key, last_pass)
VALUES (%(namespace)s, %(key)s, %(last_pass)s)
ON CONFLICT (namespace, key) DO UPDATE SET last_pass = excluded.last_pass

-- name: pass_frontier
-- The lowest pass of the ready jobs of a rank: the first of the rank's range of
-- jobs_ready (whose condition compares status under COLLATE "C", migration 0019).
SELECT min(fair_pass) AS frontier FROM jobs
WHERE namespace = %(namespace)s AND priority + rank_offset = %(rank)s
  AND status = 'queued' COLLATE "C" AND NOT blocked

-- name: fair_ceiling
SELECT coalesce(max(last_pass), 0) AS ceiling FROM fair_flows
WHERE namespace = %(namespace)s

-- name: place_job
UPDATE jobs
SET fairness_key = %(fairness_key)s, rank_offset = %(rank_offset)s,
    fair_pass = %(fair_pass)s
WHERE id = %(id)s

-- name: set_fair_weight
INSERT INTO fair_flows (namespace, key, weight)
VALUES (%(namespace)s, %(key)s, %(weight)s)
ON CONFLICT (namespace, key) DO UPDATE SET weight = excluded.weight

-- name: list_fair_flows
SELECT namespace, key, weight, last_pass FROM fair_flows
WHERE namespace = %(namespace)s ORDER BY key

-- name: set_queue_aging
INSERT INTO queue_aging (namespace, queue, rate, cap)
VALUES (%(namespace)s, %(queue)s, %(rate)s, %(cap)s)
ON CONFLICT (namespace, queue) DO UPDATE SET rate = excluded.rate, cap = excluded.cap

-- name: delete_queue_aging
DELETE FROM queue_aging WHERE namespace = %(namespace)s AND queue = %(queue)s
RETURNING queue

-- name: list_queue_aging
SELECT namespace, queue, rate, cap FROM queue_aging
WHERE namespace = %(namespace)s ORDER BY queue

-- name: set_queue_reserve
INSERT INTO queue_reserves (namespace, queue, share, below)
VALUES (%(namespace)s, %(queue)s, %(share)s, %(below)s)
ON CONFLICT (namespace, queue) DO UPDATE SET share = excluded.share, below = excluded.below

-- name: delete_queue_reserve
DELETE FROM queue_reserves WHERE namespace = %(namespace)s AND queue = %(queue)s
RETURNING queue

-- name: list_queue_reserves
SELECT namespace, queue, share, below FROM queue_reserves
WHERE namespace = %(namespace)s ORDER BY queue

-- name: claimed_reserves
-- The reserves of a claim's queues, each with its queue's aging.
SELECT reserve.namespace, reserve.queue, reserve.share, reserve.below, aging.rate, aging.cap
FROM queue_reserves AS reserve
LEFT JOIN queue_aging AS aging
    ON aging.namespace = reserve.namespace AND aging.queue = reserve.queue
WHERE reserve.namespace = ANY(%(namespaces)s::text[])
  AND reserve.queue = ANY(%(queues)s::text[])
ORDER BY reserve.namespace, reserve.queue

-- name: claim_reserved
-- claim_jobs for one queue's ready jobs ranked below %(rank_below)s (a reserve's bands),
-- read off jobs_ready from that rank down (COLLATE "C": its condition, migration 0019).
WITH taken AS (
    SELECT id FROM jobs
    WHERE namespace = %(namespace)s AND priority + rank_offset < %(rank_below)s
      AND status = 'queued' COLLATE "C" AND NOT blocked AND (queue = %(queue)s) IS TRUE
      AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
    ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
    lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s, started_at = clock_now(%(now)s)
WHERE jobs.id = ANY(ARRAY(SELECT id FROM taken))
RETURNING jobs.*

-- rate limits (stores/rating.py, taskwheel.rates) -----------------------------------------------
-- A rate-limited job waits (status 'waiting', jobs_rate_wait; waiting_on 0: a workflow
-- step waiting for its dependencies or a fire for its turn has waiting_on > 0) until the
-- holder of the maintenance lease admits it from its key's bucket; the waiting ones are
-- read in dispatch order off jobs_rate_waiting, the admitted ones counted on
-- jobs_rate_admitted (migrations 0014, 0017).

-- name: any_rates
-- Whether any bucket is known (SQLite's rate trigger exists then).
SELECT EXISTS (SELECT 1 FROM rates) AS found

-- name: arm_rates
-- Nothing to arm: the trigger is permanent (its WHEN clause looks at the row alone).
SELECT 1

-- name: declare_rates
-- The buckets of an enqueue (%(rates)s, JSON [{namespace, key, rate, burst}]) with the
-- rate and burst their tasks declare, full when new; one set by hand stays as it is. In
-- key order: two enqueues lock the rows in one order.
INSERT INTO rates (namespace, key, rate, burst, created_at, tokens, refilled_at)
SELECT d.namespace, d.key, d.rate, d.burst, clock_now(%(now)s), d.burst, clock_now(%(now)s)
FROM json_to_recordset(%(rates)s::json)
     AS d(namespace text, key text, rate double precision, burst integer)
ORDER BY d.namespace, d.key
ON CONFLICT (namespace, key) DO UPDATE
SET rate = excluded.rate, burst = excluded.burst
WHERE NOT rates.set_by_hand
  AND (rates.rate <> excluded.rate OR rates.burst <> excluded.burst)

-- name: set_rate_keys
-- The enqueue's new jobs get their rate keys and costs (%(keys)s, JSON [{id, key,
-- cost}]), before their concurrency keys: a ready one waits for its admission instead.
UPDATE jobs
SET rate_key = k.key, rate_cost = k.cost,
    status = CASE WHEN jobs.status = 'queued' THEN 'waiting' ELSE jobs.status END,
    blocked = false
FROM json_to_recordset(%(keys)s::json) AS k(id bigint, key text, cost integer)
WHERE jobs.id = k.id

-- name: set_rate
-- A key's rate and burst set by hand (a declaration no longer changes them); the bucket
-- is created full if the key has none yet.
INSERT INTO rates (namespace, key, rate, burst, set_by_hand, created_at, tokens, refilled_at)
VALUES (%(namespace)s, %(key)s, %(rate)s, %(burst)s, true, clock_now(%(now)s), %(burst)s,
        clock_now(%(now)s))
ON CONFLICT (namespace, key) DO UPDATE
SET rate = excluded.rate, burst = excluded.burst, set_by_hand = true

-- name: lock_rate_buckets
-- The buckets of %(namespace)s with jobs waiting for tokens (%(key)s: that one alone;
-- NULL: all), locked until the admission commits: two holders overlapping in a
-- handover admit one after the other, each from the bucket the other left.
SELECT r.key, r.rate, r.burst, r.tokens, r.held, r.refilled_at
FROM rates AS r
WHERE r.namespace = %(namespace)s AND (%(key)s::text IS NULL OR r.key = %(key)s::text)
  AND EXISTS (SELECT 1 FROM jobs AS w
              WHERE w.namespace = r.namespace AND w.rate_key = r.key
                AND w.status = 'waiting' AND w.waiting_on = 0)
ORDER BY r.key
FOR UPDATE OF r

-- name: rate_outstanding
-- What the admitted and not started jobs of each key of %(namespace)s cost.
SELECT rate_key AS key, sum(rate_cost) AS cost
FROM jobs
WHERE namespace = %(namespace)s AND rate_key IS NOT NULL AND status = 'queued'
GROUP BY rate_key

-- name: rate_waiting_jobs
-- The first jobs of each key waiting for tokens (%(keys)s, JSON [{key, limit}]: at most
-- limit of that key), in dispatch order, but those a paused queue or task holds, each
-- with its concurrency key's free slots (room: NULL when no limit holds it; 0 when the
-- key is paused or its breaker open). One statement for all of a pass's keys, not a
-- round trip per key. One someone else holds locked now (a cancel) is left for the
-- next pass.
SELECT k.key, w.id, w.rate_cost, w.gate_key,
       CASE WHEN w.gate_key IS NULL THEN NULL
            ELSE slot_room(%(namespace)s, w.gate_key, 0) END AS room
FROM json_to_recordset(%(keys)s::json) AS k(key text, "limit" integer)
CROSS JOIN LATERAL (
    SELECT w.id, w.rate_cost, w.gate_key, w.priority, w.deadline, w.run_at
    FROM jobs AS w
    WHERE w.namespace = %(namespace)s AND w.rate_key = k.key AND w.status = 'waiting'
      AND w.waiting_on = 0
      AND NOT EXISTS (SELECT 1 FROM pauses AS p
                      WHERE p.namespace = w.namespace
                        AND ((p.kind = 'queue' AND p.name = w.queue)
                             OR (p.kind = 'task' AND p.name = w.task)))
    ORDER BY w.priority DESC, w.deadline ASC NULLS LAST, w.run_at, w.id
    LIMIT k."limit"
    FOR UPDATE OF w SKIP LOCKED
) AS w
ORDER BY k.key, w.priority DESC, w.deadline ASC NULLS LAST, w.run_at, w.id

-- name: admit_rated
-- The jobs %(ids)s (JSON) admitted: queued with their admission (their fence); how many.
-- The statement passes them through the pause gate itself, all at once: it takes the
-- gates' shared lock first (as gate_became_ready does for one row), and each row is
-- blocked if a pause holds its queue or task. While it runs, taskwheel.admitting tells
-- the row triggers of that gate and of the wake-up to leave its rows alone (migration
-- 0020; the store sends one wake-up); the slot gate still passes a keyed one. The
-- setting is cleared once every row is written (the count reads them all first).
WITH admitting AS MATERIALIZED (
    SELECT pg_advisory_xact_lock_shared(hashtext(current_schema() || ':gates')) AS locked,
           set_config('taskwheel.admitting', 'by_statement', true) AS flag
),
admitted AS (
    UPDATE jobs SET status = 'queued', rate_fence = fence,
                    blocked = EXISTS (SELECT 1 FROM pauses AS p
                                      WHERE p.namespace = jobs.namespace
                                        AND ((p.kind = 'queue' AND p.name = jobs.queue)
                                             OR (p.kind = 'task' AND p.name = jobs.task)))
    FROM admitting
    WHERE jobs.id IN (SELECT value::bigint FROM json_array_elements_text(%(ids)s::json))
      AND jobs.status = 'waiting' AND jobs.waiting_on = 0
    RETURNING jobs.id
),
counted AS MATERIALIZED (SELECT count(*)::integer AS admitted FROM admitted)
SELECT counted.admitted, set_config('taskwheel.admitting', '', true) AS reset
FROM counted

-- name: save_buckets
-- The buckets an admission pass leaves (%(buckets)s, JSON [{key, tokens, held}]), now.
UPDATE rates SET tokens = b.tokens, held = b.held, refilled_at = clock_now(%(now)s)
FROM json_to_recordset(%(buckets)s::json) AS b(key text, tokens double precision, held integer)
WHERE rates.namespace = %(namespace)s AND rates.key = b.key

-- name: list_rates
-- A namespace's buckets (one key with %(key)s; all with NULL), with the jobs waiting for
-- tokens and those admitted and not started.
SELECT r.namespace, r.key, r.rate, r.burst, r.set_by_hand, r.tokens, r.refilled_at,
       (SELECT count(*) FROM jobs AS w
        WHERE w.namespace = r.namespace AND w.rate_key = r.key
          AND w.status = 'waiting' AND w.waiting_on = 0) AS waiting,
       (SELECT count(*) FROM jobs AS a
        WHERE a.namespace = r.namespace AND a.rate_key = r.key
          AND a.status = 'queued') AS admitted
FROM rates AS r
WHERE r.namespace = %(namespace)s AND (%(key)s::text IS NULL OR r.key = %(key)s::text)
ORDER BY r.key

-- name: job_rate_key
-- The key whose tokens a job waits for (nothing while it waits for its dependencies or
-- its turn).
SELECT rate_key FROM jobs WHERE id = %(id)s AND status = 'waiting' AND waiting_on = 0

-- weights between namespaces (0016) ---------------------------------------------------------

-- name: namespace_weights
-- The weights of those of %(namespaces)s that have one (a primary-key probe each).
SELECT namespace, weight FROM namespace_weights
WHERE namespace = ANY(%(namespaces)s::text[])

-- name: set_namespace_weight
INSERT INTO namespace_weights (namespace, weight) VALUES (%(namespace)s, %(weight)s)
ON CONFLICT (namespace) DO UPDATE SET weight = excluded.weight

-- name: delete_namespace_weight
DELETE FROM namespace_weights WHERE namespace = %(namespace)s RETURNING namespace

-- name: list_namespace_weights
SELECT namespace, weight FROM namespace_weights ORDER BY namespace

-- name: claim_shares
-- claim_jobs for a claim whose namespaces have weights (`fairness.NamespaceStride`):
-- each namespace's first ready jobs in its dispatch order, read off its own range of
-- jobs_ready as in claim_jobs, the n-th of a namespace placed at start + n / weight;
-- the lowest places are taken (ties: the heavier namespace, then the first named).
WITH claimed_namespaces AS (
    SELECT * FROM unnest(%(namespaces)s::text[], %(starts)s::float8[], %(weights)s::float8[])
        WITH ORDINALITY AS ns (namespace, start, weight, place)
    LIMIT %(namespace_count)s
),
taken AS (
    SELECT ready.id FROM claimed_namespaces AS ns
    CROSS JOIN LATERAL (
        SELECT locked.id, row_number() OVER (
                   ORDER BY locked.rank DESC, locked.fair_pass, locked.deadline ASC NULLS LAST,
                            locked.run_at, locked.id) AS n
        FROM (
            SELECT id, priority + rank_offset AS rank, fair_pass, deadline, run_at FROM jobs
            WHERE jobs.namespace = ns.namespace AND status = 'queued' COLLATE "C" AND NOT blocked
              AND (queue = ANY(%(queues)s::text[])) IS TRUE  -- as in claim_jobs
              AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
            ORDER BY priority + rank_offset DESC, fair_pass, deadline ASC NULLS LAST, run_at, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ) AS locked
    ) AS ready
    ORDER BY ns.start + ready.n / ns.weight, ns.weight DESC, ns.place
    LIMIT %(limit)s
)
UPDATE jobs
SET status = 'running', attempt = attempt + 1, fence = fence + 1, worker_id = %(worker_id)s,
    lease_expires_at = clock_now(%(now)s) + %(lease_ttl)s, started_at = clock_now(%(now)s)
WHERE jobs.id = ANY(ARRAY(SELECT id FROM taken))  -- by primary key, never a scan
RETURNING jobs.*
