-- Key gates, cheaper per job (version 15). Mirrors the SQLite store's 0015_key_room.

-- slot_room (version 12) stays the one definition of the room left in a key.

-- The keys with a breaker rule or a breaker not closed: every report of a keyed job
-- asks whether there is any (breaker_states), which read the whole table before.
CREATE INDEX limits_breakers ON limits (namespace, key)
    WHERE breaker_failures IS NOT NULL OR breaker_state <> 'closed';

-- A job admitted to a slot (blocked true -> false by admit_waiting, which counted the
-- room under the namespace's slot lock) no longer asks for it a second time: the
-- trigger runs for a keyed job that becomes queued or is given its key while queued,
-- not for one a statement admits. A queue or task resumed admits its keyed jobs
-- through admit_waiting too (queries.sql, held_keys). Every freed slot paid a second
-- lock, a second count and a trigger call for the job it admitted.
DROP TRIGGER jobs_slot_taken ON jobs;
CREATE TRIGGER jobs_slot_taken
    BEFORE UPDATE OF status, gate_key ON jobs
    FOR EACH ROW WHEN (NEW.gate_key IS NOT NULL AND NEW.status = 'queued'
                       AND (OLD.status <> 'queued' OR OLD.gate_key IS NULL))
    EXECUTE FUNCTION slot_taken();

CREATE OR REPLACE FUNCTION admit_waiting(ns text, k text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    room integer;
    admitted integer;
BEGIN
    PERFORM lock_slots(ns);
    room := slot_room(ns, k, 0);
    IF room IS NOT NULL AND room <= 0 THEN
        RETURN 0;
    END IF;
    -- Exact: the room was counted under the slot lock, and at most that many are
    -- admitted (jobs_slot_taken no longer asks again for a job admitted here).
    WITH asked AS (
    UPDATE jobs SET blocked = false
    WHERE id IN (SELECT w.id FROM jobs AS w
                 WHERE w.namespace = ns AND w.gate_key = k AND w.status = 'queued'
                   AND w.blocked
                   AND NOT EXISTS (SELECT 1 FROM pauses AS p
                                   WHERE p.namespace = w.namespace
                                     AND ((p.kind = 'queue' AND p.name = w.queue)
                                          OR (p.kind = 'task' AND p.name = w.task)))
                 ORDER BY w.priority DESC, w.deadline ASC NULLS LAST, w.run_at, w.id
                 LIMIT room
                 FOR UPDATE SKIP LOCKED)
    RETURNING blocked)
    SELECT count(*) FILTER (WHERE NOT blocked) INTO admitted FROM asked;
    IF admitted > 0 THEN
        PERFORM pg_notify('taskwheel:' || current_schema(), ns || E'\njobs');
    END IF;
    RETURN admitted;
END
$$;

