-- The pause gates look a pause up by its key, and a pass's outstanding cost is read off
-- its index (version 21). Mirrors the PostgreSQL store's 0021_pauses_probed_by_key.
--
-- Whether a pause holds a job was one lookup with an OR (its queue or its task), which
-- SQLite runs as a MULTI-INDEX OR: a row set built and read for every probe. In the slot
-- trigger that admits a waiting job (taskwheel_jobs_slot_freed) that cost about 28,000
-- of the 473,000 instructions of a keyed job's claim and report (callgrind, 2,000 jobs
-- of 1,000 keys of one slot). queries.sql now probes the primary key twice, once for
-- the queue and once for the task. The triggers are dropped here and created again with
-- the new text: the slot triggers by the store after this migration when the database
-- has keys, the gate triggers likewise when a queue or task is paused.
DROP TRIGGER IF EXISTS taskwheel_jobs_slot_taken;
DROP TRIGGER IF EXISTS taskwheel_jobs_slot_freed;
DROP TRIGGER IF EXISTS taskwheel_jobs_gate_inserted;
DROP TRIGGER IF EXISTS taskwheel_jobs_gate_ready;

-- Every admission pass sums what the admitted and not started jobs of each key cost
-- (rate_outstanding), a pass every tenth of the maintenance interval while jobs wait,
-- and read each such row from the table for its rate_cost. The index carries the cost
-- now, and the status its condition names (without it, SQLite marks the row to be read
-- for the statement's own status = 'queued'): the sum reads the index alone. 10,000
-- admitted jobs of 100 keys: 4.7 ms a sum before, 1.1 ms after (median of 30).
DROP INDEX taskwheel_jobs_rate_admitted;
CREATE INDEX taskwheel_jobs_rate_admitted
    ON taskwheel_jobs (namespace, rate_key, rate_cost, status)
    WHERE rate_key IS NOT NULL AND status = 'queued';
