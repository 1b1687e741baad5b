-- The claims read jobs_ready whatever the table's statistics say (version 19). Mirrors
-- the SQLite store's 0019_ready_jobs_whatever_the_statistics.
--
-- A claim reads the first ready jobs of a namespace in dispatch order off jobs_ready
-- and stops at its limit. Its plan is made once per connection (the claims run with the
-- server's generic plan), from the statistics of the moment. When the table was last
-- analysed while no job was queued (a quiet system between bursts, which is when
-- autovacuum comes by; or a backlog all waiting for rate tokens), the statistics say a
-- queued job is all but impossible: to the planner, reading "every" queued job of the
-- namespace through jobs_status and sorting it costs the same as jobs_ready, and it
-- chose jobs_status. Every claim then read and sorted the whole backlog, until the next
-- analyse happened to see queued jobs (with 20,000 queued: one process claiming 100 at
-- a time and reporting them drained 5,712-5,906 jobs/s; 8,117-9,077 with this change).
--
-- The index's condition compares status under the "C" collation, and so do the claims
-- that read it (queries.sql): that comparison is the same for a status, but jobs_status
-- (the column's own collation) cannot answer it, so a claim can only be a range of
-- jobs_ready, read in order. (Building the index reads the table once.)
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready
    ON jobs (namespace, (priority + rank_offset) DESC, fair_pass, deadline ASC NULLS LAST,
             run_at, id)
    WHERE status = 'queued' COLLATE "C" AND NOT blocked;
