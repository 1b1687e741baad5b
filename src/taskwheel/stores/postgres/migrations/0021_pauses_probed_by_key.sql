-- The pause gates look a pause up by its key (version 21). Mirrors the SQLite store's
-- 0021_pauses_probed_by_key.
--
-- There, a lookup of a job's pause with an OR (its queue or its task) ran as a row set
-- built for every probe, and the slot trigger now probes the primary key twice instead.
-- PostgreSQL plans the same lookup as an anti-join on the primary key: nothing changes
-- here.
SELECT 1;
