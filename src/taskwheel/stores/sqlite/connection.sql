-- Settings of every connection to the file, and what `describe` reads back.

-- name: busy_timeout
PRAGMA busy_timeout = {milliseconds}

-- name: journal_mode
PRAGMA journal_mode = WAL

-- name: synchronous
PRAGMA synchronous = NORMAL

-- name: wal_autocheckpoint
-- SQLite copies the WAL back into the database (a checkpoint, with its syncs) inside the
-- COMMIT that grows it past this many pages, while that writer still holds the write
-- lock of every process. A writing process checkpoints from a thread of its own instead
-- (connection.py's `Checkpointer`): this is only the bound should that thread fall
-- behind, ten times SQLite's default of 1,000.
PRAGMA wal_autocheckpoint = 10000

-- name: checkpoint
-- What the checkpointer runs: copy what it can without waiting for anyone (readers and
-- writers go on; a WAL wholly copied is started again by the next writer).
PRAGMA wal_checkpoint(PASSIVE)

-- name: temp_store
-- The transient tables of a statement (an IN list read from json_each, an ORDER BY the
-- index does not give) in memory: kept in temporary files, they cost a claim more than
-- the claim itself. They are small: a claim's, or a prune's ids.
PRAGMA temp_store = MEMORY

-- name: settings
-- What `describe` reads back, one value a statement, in the order of connection.py's
-- `SETTINGS`.
PRAGMA journal_mode;
PRAGMA synchronous;
PRAGMA temp_store;
PRAGMA busy_timeout;
PRAGMA wal_autocheckpoint;
PRAGMA page_size;

-- Transactional enqueue (sqlite/commits.py): what tells that the caller's transaction
-- committed what an operation wrote in it.

-- name: job_exists
SELECT 1 FROM taskwheel_jobs WHERE id = :id

-- name: run_exists
SELECT 1 FROM taskwheel_workflow_runs WHERE id = :id

-- name: schedule_written
SELECT 1 FROM taskwheel_schedules
WHERE namespace = :namespace AND name = :name AND updated_at = :now

-- name: database_list
-- The files a connection has open (the caller's must be the store's: sqlite/caller.py).
PRAGMA database_list
