-- An admission pass queues its jobs in one statement (version 20). Mirrors the SQLite
-- store's 0020_admission_by_statement.
--
-- A job that becomes queued passes the pause gate (jobs_gate_ready: the gates' shared
-- lock, then whether a pause holds its queue or task) and wakes the workers
-- (jobs_became_ready), a trigger function call each, row by row. An admission pass of
-- rate-limited jobs (admit_rated) queued thousands at once, and those two calls were
-- about a third of its cost (48-62 µs a job admitted; 33-40 without them). The pass
-- now sets taskwheel.admitting to
-- 'by_statement' for its statement (queries.sql, admit_rated), which these triggers
-- then leave alone: the statement takes the gates' lock once, judges the pauses of all
-- of its rows, and the store sends one wake-up for the namespace. Every other
-- statement (a release, a retry, a promotion) still passes them row by row; the slot
-- gate (jobs_slot_taken) is not concerned.
DROP TRIGGER jobs_gate_ready ON jobs;
CREATE TRIGGER jobs_gate_ready
    BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued'
                       AND current_setting('taskwheel.admitting', true)
                           IS DISTINCT FROM 'by_statement')
    EXECUTE FUNCTION gate_became_ready();

DROP TRIGGER jobs_became_ready ON jobs;
CREATE TRIGGER jobs_became_ready
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued'
                       AND current_setting('taskwheel.admitting', true)
                           IS DISTINCT FROM 'by_statement')
    EXECUTE FUNCTION notify_became_ready();
