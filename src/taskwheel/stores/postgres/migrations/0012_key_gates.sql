-- Gates per key (version 12): concurrency limits, paused keys and circuit breakers.
-- Mirrors the SQLite store's 0012_key_gates. Times are double precision epoch seconds.

-- A job's key (a task's ConcurrencyLimit key rendered over the job's arguments), NULL
-- for a job no key gate holds. A keyed job holds a slot of its key while it is queued
-- and not blocked, or running: the ready index then has it. One that finds no slot
-- waits queued and blocked, out of the ready index, so a claim never reads it.
ALTER TABLE jobs ADD COLUMN gate_key text;

-- The slots a key's jobs hold: counted on this index (at most capacity rows) when a
-- job asks for one.
CREATE INDEX jobs_holding ON jobs (namespace, gate_key)
    WHERE gate_key IS NOT NULL AND status IN ('queued', 'running') AND NOT blocked;

-- The jobs waiting for a slot, in dispatch order: a freed slot goes to the first.
CREATE INDEX jobs_gated
    ON jobs (namespace, gate_key, priority DESC, deadline ASC NULLS LAST, run_at, id)
    WHERE gate_key IS NOT NULL AND status = 'queued' AND blocked;

-- One row per key of a namespace: its slots (capacity; NULL: no limit), whether a task
-- declared it or someone set it by hand (a declaration then no longer changes it), a
-- pause (paused_at, until paused_until or a resume), and its circuit breaker (state,
-- failures counted since window_started, opened until breaker_until; the thresholds
-- the task declared or someone set). A closed gate (paused, or breaker open) admits
-- nothing; a half-open breaker admits one job at a time.
CREATE TABLE limits (
    namespace         text             NOT NULL,
    key               text             NOT NULL,
    capacity          integer          CHECK (capacity IS NULL OR capacity >= 1),
    set_by_hand       boolean          NOT NULL DEFAULT false,
    created_at        double precision NOT NULL,
    paused_at         double precision,
    paused_until      double precision,
    breaker_state     text             NOT NULL DEFAULT 'closed'
                      CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    breaker_until     double precision,
    failures          integer          NOT NULL DEFAULT 0,
    window_started    double precision,
    breaker_failures  integer          CHECK (breaker_failures IS NULL OR breaker_failures >= 1),
    breaker_window    double precision,
    breaker_cooldown  double precision,
    PRIMARY KEY (namespace, key)
);

-- How many more jobs of a key may hold a slot now (NULL: any number), not counting
-- job :except. Read under the namespace's slot lock (lock_slots).
CREATE FUNCTION slot_room(ns text, k text, except_id bigint) RETURNS integer
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT CASE WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open' THEN 0
                        WHEN l.breaker_state = 'half_open' THEN 1
                        ELSE l.capacity END
                   - (SELECT count(*) FROM jobs AS h
                      WHERE h.namespace = ns AND h.gate_key = k AND h.id <> except_id
                        AND h.status IN ('queued', 'running') AND NOT h.blocked)::integer
            FROM limits AS l WHERE l.namespace = ns AND l.key = k);
END
$$;

-- The functions read the tables of the schema first in the search_path, as the store's
-- sessions have it (an update of a keyed job's status by hand needs the same).

-- Every change of who holds a key's slots takes the namespace's slot lock, after the
-- gates' lock (shared, as the gate triggers take it): one order, so two transactions
-- never wait on each other's slot locks, and a count read under the lock sees every
-- slot taken or freed before it (each statement of a trigger reads a fresh snapshot).
CREATE FUNCTION lock_slots(ns text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(current_schema() || ':gates'));
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || ':slots:' || ns));
END
$$;

-- Give the key's free slots to the jobs waiting for one, in dispatch order (not those a
-- paused queue or task holds); a job locked by someone else now is skipped (the next
-- freed slot, or maintenance, admits it). How many were admitted; the workers of the
-- namespace are woken when any was.
CREATE FUNCTION admit_waiting(ns text, k text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    room integer;
    admitted integer;
BEGIN
    PERFORM lock_slots(ns);
    room := slot_room(ns, k, 0);
    IF room IS NOT NULL AND room <= 0 THEN
        RETURN 0;
    END IF;
    -- Each row asks for its slot again (jobs_slot_taken): the count stays exact.
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

-- A keyed job that would hold a slot (it becomes ready, a pause lets it go, or it is
-- given its key) takes one, or stays blocked; one queued again after running keeps its
-- slot only if its key still has room for it. Runs after jobs_gate_ready (triggers run
-- in the order of their names), which has blocked it already if a pause holds it.
CREATE FUNCTION slot_taken() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    room integer;
BEGIN
    IF NEW.blocked OR (OLD.gate_key IS NOT NULL AND OLD.status = 'queued'
                       AND NOT OLD.blocked) THEN
        RETURN NEW;  -- waits, or was ready with its slot already
    END IF;
    -- Asked again when it comes back from running (a retry, a rescue): its key may have
    -- been paused, its breaker opened or its limit lowered meanwhile.
    PERFORM lock_slots(NEW.namespace);
    room := slot_room(NEW.namespace, NEW.gate_key, NEW.id);
    NEW.blocked := room IS NOT NULL AND room <= 0;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_slot_taken
    BEFORE UPDATE OF status, blocked, gate_key ON jobs
    FOR EACH ROW WHEN (NEW.gate_key IS NOT NULL AND NEW.status = 'queued')
    EXECUTE FUNCTION slot_taken();

-- A job that held a slot and holds it no more (it ended, was cancelled, expired, went
-- back to wait for a retry, or a pause blocked it) gives it to the next waiting job.
-- Its fencing token made the move happen once: a stale report moves nothing.
CREATE FUNCTION slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM admit_waiting(OLD.namespace, OLD.gate_key);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_slot_freed
    AFTER UPDATE OF status, blocked ON jobs
    FOR EACH ROW WHEN (OLD.gate_key IS NOT NULL AND OLD.status IN ('queued', 'running')
                       AND NOT OLD.blocked
                       AND NOT (NEW.status IN ('queued', 'running') AND NOT NEW.blocked))
    EXECUTE FUNCTION slot_freed();
