-- The PostgreSQL store's plumbing: what its connections, its migrations lock, its clock,
-- its wake-ups and its settings need, and the SQLite store has no use for. The
-- statements of the store's executor are in queries.sql.
--
-- A block with {placeholders} is an identifier template the store fills in with
-- psycopg.sql; the others take %(named)s parameters.

-- name: lock_migrations
-- Two processes migrating at once: the second waits here, then finds nothing to do.
SELECT pg_advisory_xact_lock(%(key)s)

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: drop_schema
DROP SCHEMA IF EXISTS {schema} CASCADE

-- name: transaction_now
-- The instant the current transaction judges time by (see clock_now in
-- migrations/0001_initial.sql).
SELECT clock_now(%(now)s) AS now

-- name: database_clock
-- The database's wall clock, for `DatabaseClock` (not the transaction's instant).
SELECT extract(epoch FROM clock_timestamp())::double precision AS now

-- name: notify
-- Sent when the transaction commits, never if it rolls back.
SELECT pg_notify(%(channel)s, %(payload)s)

-- name: listen
LISTEN {channel}

-- name: commit_unflushed
-- This transaction's COMMIT returns once the server has it, before its WAL is flushed
-- (see Executor.commit_unflushed): for outcomes, whose loss costs a rerun, not a job.
SET LOCAL synchronous_commit TO off

-- name: ping
SELECT 1

-- name: settings
SELECT name, current_setting(name) AS value FROM unnest(%(names)s::text[]) AS name

-- name: save_search_path
-- Transactional enqueue runs the store's unqualified statements on the caller's own
-- connection: its search_path is kept aside (in a setting of the transaction), the
-- store's schema put in its place, and the caller's given back after the operation.
SELECT set_config('taskwheel.caller_search_path', current_setting('search_path'), true)

-- name: use_schema
-- pg_temp last: a temporary table of the caller's named like one of ours (jobs, say)
-- would otherwise come first.
SELECT set_config('search_path', %(schema)s || ', pg_temp', true)

-- name: restore_search_path
SELECT set_config('search_path', current_setting('taskwheel.caller_search_path'), true)

-- name: jobs_statistics_behind
-- Whether the jobs table has no statistics yet (reltuples is -1 until the first ANALYZE
-- or VACUUM, PostgreSQL 14 and later), or its pages now are %(growth)s times those its
-- statistics counted (or 10, for statistics of an empty table). The file's size, not
-- the server's row counts: those reach the catalogue a second or more late.
SELECT reltuples < 0
       OR pg_relation_size(oid) / current_setting('block_size')::bigint
          > %(growth)s * greatest(relpages, 10) AS behind
FROM pg_class WHERE oid = 'jobs'::regclass

-- name: analyse_lock_timeout
-- For the ANALYZE after it, in the same transaction: a lock it cannot have at once
-- (a VACUUM at work, another process analysing) and it gives up.
SET LOCAL lock_timeout = '100ms'

-- name: analyse_jobs
ANALYZE jobs
