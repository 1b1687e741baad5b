-- A report gives back its slots in one pass (version 18). Mirrors the SQLite store's
-- 0018_slots_released_by_report.

-- The room left in each key, as SQLite's taskwheel_key_room (its migration 0015): its
-- slots (none while paused or open, one while half-open; NULL: no limit) less the jobs
-- holding one. Planned into the statements that read it, where slot_room's plpgsql call
-- per key was a function call and a plan of its own.
CREATE VIEW key_room AS
SELECT l.namespace, l.key,
       CASE WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open' THEN 0
            WHEN l.breaker_state = 'half_open' THEN 1
            ELSE l.capacity END
       - (SELECT count(*) FROM jobs AS h
          WHERE h.namespace = l.namespace AND h.gate_key = l.key
            AND h.status IN ('queued', 'running') AND NOT h.blocked)::integer AS room
FROM limits AS l;

-- slot_room stays (slot_taken asks it for one job), now read off the view: one
-- definition of the room.
CREATE OR REPLACE FUNCTION slot_room(ns text, k text, except_id bigint) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT r.room + (SELECT count(*) FROM jobs AS h
                             WHERE h.id = except_id AND h.namespace = ns AND h.gate_key = k
                               AND h.status IN ('queued', 'running')
                               AND NOT h.blocked)::integer
            FROM key_room AS r WHERE r.namespace = ns AND r.key = k);
END
$$;

-- admit_waiting's admission for many keys of a namespace at once: each key's room is
-- counted under the namespace's slot lock (as before), and its waiting jobs admitted up
-- to it, in dispatch order, by one statement.
CREATE FUNCTION admit_keys(ns text, keys text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    admitted integer;
BEGIN
    PERFORM lock_slots(ns);
    -- Exact: the room was counted under the slot lock (this statement's snapshot is
    -- taken after it), and at most that many are admitted per key; a job locked by
    -- someone else is skipped (the next freed slot, or maintenance, admits it).
    -- (A join with the view counted every key of the namespace in the plan plpgsql
    -- keeps: one scalar lookup per key asked.)
    WITH room AS MATERIALIZED (
        SELECT k.key, (SELECT r.room FROM key_room AS r
                       WHERE r.namespace = ns AND r.key = k.key) AS room
        FROM (SELECT DISTINCT key FROM unnest(keys) AS u(key)) AS k),
    chosen AS (
        SELECT w.id FROM room CROSS JOIN LATERAL (
            SELECT w.id FROM jobs AS w
            WHERE w.namespace = ns AND w.gate_key = room.key AND w.status = 'queued'
              AND w.blocked
              AND NOT EXISTS (SELECT 1 FROM pauses AS p
                              WHERE p.namespace = w.namespace
                                AND ((p.kind = 'queue' AND p.name = w.queue)
                                     OR (p.kind = 'task' AND p.name = w.task)))
            ORDER BY w.priority DESC, w.deadline ASC NULLS LAST, w.run_at, w.id
            LIMIT room.room  -- NULL (no limit row): all of them
            FOR UPDATE SKIP LOCKED) AS w
        WHERE room.room IS NULL OR room.room > 0),
    asked AS (
        UPDATE jobs SET blocked = false WHERE id IN (SELECT id FROM chosen) RETURNING 1)
    SELECT count(*) INTO admitted FROM asked;
    IF admitted > 0 THEN
        PERFORM pg_notify('taskwheel:' || current_schema(), ns || E'\njobs');
    END IF;
    RETURN admitted;
END
$$;

CREATE OR REPLACE FUNCTION admit_waiting(ns text, k text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN admit_keys(ns, ARRAY[k]);
END
$$;

-- A worker's report (finish_attempts) frees the slots of up to a batch of jobs. Row by
-- row, each freed slot ran admit_waiting inside the report's statement: a function call,
-- a count and an update per job, with the namespace's slot lock held from the first
-- keyed row to the commit, so two workers' reports ran one after the other. The report
-- now sets taskwheel.slots_freed to 'by_statement' for its statement (queries.sql,
-- defer_slot_release), which this trigger then leaves alone, and admits the keys it
-- freed with admit_keys right after (release_slots): the slot lock is taken once, after
-- the rows are written, and held only for the admission and the commit. Every other
-- statement (a cancel, a rescue, a pause, an update by hand) still frees row by row.
DROP TRIGGER jobs_slot_freed ON jobs;
CREATE TRIGGER jobs_slot_freed
    AFTER UPDATE OF status, blocked ON jobs
    FOR EACH ROW WHEN (OLD.gate_key IS NOT NULL AND OLD.status IN ('queued', 'running')
                       AND NOT OLD.blocked
                       AND NOT (NEW.status IN ('queued', 'running') AND NOT NEW.blocked)
                       AND current_setting('taskwheel.slots_freed', true)
                           IS DISTINCT FROM 'by_statement')
    EXECUTE FUNCTION slot_freed();
