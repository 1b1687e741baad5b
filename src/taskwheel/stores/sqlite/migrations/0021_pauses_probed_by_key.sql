-- The pause gates look a pause up by its key (version 21). Mirrors the PostgreSQL
-- store's 0021_pauses_probed_by_key.
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
