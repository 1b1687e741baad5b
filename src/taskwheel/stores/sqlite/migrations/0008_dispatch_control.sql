-- Dispatch control (version 8): paused queues and tasks, and a queue's maximum depth.
-- Times are REAL epoch seconds (UTC).

-- A gate holds the jobs it matches out of dispatch: a paused queue or task. A held job
-- stays queued (nothing is lost; its place in the dispatch order is kept) but is
-- blocked, and blocked rows are not in the ready index: a claim never reads them, and
-- a claim pays nothing for gates that hold nothing. Only a queued row's flag means
-- anything; while a gate is closed, triggers set it whenever a row becomes queued.
ALTER TABLE taskwheel_jobs ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;

DROP INDEX taskwheel_jobs_ready;
CREATE INDEX taskwheel_jobs_ready
    ON taskwheel_jobs (namespace, priority DESC, coalesce(deadline, 1e308), run_at, id)
    WHERE status = 'queued' AND blocked = 0;

-- One row per paused queue or task of a namespace (resumed: the row is deleted).
-- until: when maintenance resumes it by itself (NULL: only by hand).
CREATE TABLE taskwheel_pauses (
    namespace TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('queue', 'task')),
    name      TEXT NOT NULL,
    paused_at REAL NOT NULL,
    until     REAL,
    PRIMARY KEY (namespace, kind, name)
) WITHOUT ROWID;

-- Whoever makes a job ready (an enqueue, a fire, a workflow step, a promotion, a retry,
-- a rescue, a replay) must leave it blocked while a gate holds it: two triggers on the
-- jobs table do it (queries.sql, arm_gates). They exist only while a gate is closed --
-- the first pause creates them, the resume of the last drops them -- because a trigger
-- costs every insert a call of its program even when its WHEN clause finds no gate (a
-- quarter more CPU per enqueued job): without pauses, nothing pays for them.

-- A queue's maximum depth: its jobs waiting to run (queued, scheduled, waiting). An
-- enqueue that would pass it is refused (QueueFull) and writes nothing. A namespace
-- without rows here pays one probe of this table per enqueue, in the statement that
-- reserves the ids.
CREATE TABLE taskwheel_queue_limits (
    namespace TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    max_depth INTEGER NOT NULL CHECK (max_depth >= 1),
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;
