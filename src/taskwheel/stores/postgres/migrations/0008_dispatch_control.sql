-- Dispatch control (version 8): paused queues and tasks, and a queue's maximum depth.
-- Mirrors the SQLite store's 0008_dispatch_control. Times are double precision epoch
-- seconds (UTC).

-- A gate holds the jobs it matches out of dispatch: a paused queue or task. A held job
-- stays queued (nothing is lost; its place in the dispatch order is kept) but is
-- blocked, and blocked rows are not in the ready index: a claim never reads them, and
-- a claim pays nothing for gates that hold nothing. Only a queued row's flag means
-- anything; the triggers below set it whenever a row becomes queued.
ALTER TABLE jobs ADD COLUMN blocked boolean NOT NULL DEFAULT false;

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready
    ON jobs (namespace, priority DESC, deadline ASC NULLS LAST, run_at, id)
    WHERE status = 'queued' AND NOT blocked;

-- One row per paused queue or task of a namespace (resumed: the row is deleted).
-- until: when maintenance resumes it by itself (NULL: only by hand).
CREATE TABLE pauses (
    namespace text             NOT NULL,
    kind      text             NOT NULL CHECK (kind IN ('queue', 'task')),
    name      text             NOT NULL,
    paused_at double precision NOT NULL,
    until     double precision,
    PRIMARY KEY (namespace, kind, name)
);

-- Whoever makes a job ready leaves it blocked when a gate holds it. A pause or resume
-- takes the gates' advisory lock exclusively (lock_gates) before it reads the jobs, and
-- these triggers take it shared before they read the pauses: a job made ready by a
-- transaction that has not committed when a pause or resume reads the jobs is judged by
-- the gates as they are after it, never as they were before.
CREATE FUNCTION gate_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA || ':gates'));
    -- The store's sessions have its schema first in their search_path: static SQL,
    -- planned once. Anyone else's insert (an operator's, with another search_path)
    -- names the schema.
    IF current_schema() = TG_TABLE_SCHEMA THEN
        IF EXISTS (SELECT 1 FROM pauses) THEN
            UPDATE jobs SET blocked = true
            FROM inserted
            WHERE jobs.id = inserted.id AND inserted.status = 'queued'
              AND EXISTS (SELECT 1 FROM pauses AS p
                          WHERE p.namespace = inserted.namespace
                            AND ((p.kind = 'queue' AND p.name = inserted.queue)
                                 OR (p.kind = 'task' AND p.name = inserted.task)));
        END IF;
    ELSE
        EXECUTE format(
            'UPDATE %1$I.jobs SET blocked = true FROM inserted'
            ' WHERE jobs.id = inserted.id AND inserted.status = ''queued'''
            ' AND EXISTS (SELECT 1 FROM %1$I.pauses AS p'
            ' WHERE p.namespace = inserted.namespace'
            ' AND ((p.kind = ''queue'' AND p.name = inserted.queue)'
            ' OR (p.kind = ''task'' AND p.name = inserted.task)))', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;

-- Once per INSERT (or COPY) statement, not per row.
CREATE TRIGGER jobs_gate_inserted
    AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION gate_inserted();

CREATE FUNCTION gate_became_ready() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA || ':gates'));
    IF current_schema() = TG_TABLE_SCHEMA THEN  -- as in gate_inserted
        held := EXISTS (SELECT 1 FROM pauses
                        WHERE namespace = NEW.namespace
                          AND ((kind = 'queue' AND name = NEW.queue)
                               OR (kind = 'task' AND name = NEW.task)));
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.pauses WHERE namespace = $1'
                       ' AND ((kind = ''queue'' AND name = $2)'
                       ' OR (kind = ''task'' AND name = $3)))', TG_TABLE_SCHEMA)
            INTO held USING NEW.namespace, NEW.queue, NEW.task;
    END IF;
    NEW.blocked := held;
    RETURN NEW;
END
$$;

-- Per row, only for rows that become queued (a retry, a promotion, a rescue): a claim,
-- which makes rows running, does not call it.
CREATE TRIGGER jobs_gate_ready
    BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION gate_became_ready();

-- A queue's maximum depth: its jobs waiting to run (queued, scheduled, waiting). An
-- enqueue that would pass it is refused (QueueFull) and writes nothing; the row is
-- locked by the enqueues that check it, so two cannot both take the last room. A
-- namespace without rows here pays one probe of this table per enqueue, in the
-- statement that writes the jobs.
CREATE TABLE queue_limits (
    namespace text    NOT NULL,
    queue     text    NOT NULL,
    max_depth integer NOT NULL CHECK (max_depth >= 1),
    PRIMARY KEY (namespace, queue)
);
