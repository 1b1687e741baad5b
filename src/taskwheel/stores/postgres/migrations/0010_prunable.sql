-- Pruning (version 10): nothing to do here. PostgreSQL has had the index of the finished
-- jobs a pruner may delete since 0001 (jobs_prunable); this version gives the SQLite store
-- the same index (its 0010_prunable), and the number keeps the two stores' versions in
-- step.
SELECT 1;
