-- Pruning (version 10): the finished jobs a pruner may delete, by when they finished.
-- Without it a pruner's pass read every finished job of its namespace to find the oldest;
-- with it a pass reads only the jobs it deletes. Mirrors the SQLite store's
-- 0010_prunable. Dead jobs are not in it: only `dlq purge` deletes them.
CREATE INDEX jobs_prunable ON jobs (namespace, finished_at)
    WHERE status IN ('succeeded', 'cancelled', 'expired', 'upstream_failed', 'skipped');
