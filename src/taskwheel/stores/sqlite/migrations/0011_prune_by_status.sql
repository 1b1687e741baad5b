-- Pruning without an index of its own (version 11). 0010's taskwheel_jobs_prunable took
-- an entry at every job's end: a fifth of what a report costs (about 4 µs a job, on the
-- drain's hot path). The index every job's end already rewrites, taskwheel_jobs_status
-- (its status changes), now also holds finished_at: a pruner's pass finds the jobs it
-- deletes by a range of it per (ended status, queue), at no cost to a report.
DROP INDEX taskwheel_jobs_prunable;
DROP INDEX taskwheel_jobs_status;
CREATE INDEX taskwheel_jobs_status ON taskwheel_jobs (namespace, status, queue, finished_at);
