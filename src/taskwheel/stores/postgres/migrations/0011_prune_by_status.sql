-- Pruning (version 11): nothing to do here. The SQLite store's 0011_prune_by_status finds
-- prunable jobs through its status index instead of an index of their own; PostgreSQL
-- keeps jobs_prunable (its reports are not bound by the cost of one more index entry the
-- way SQLite's single writer is), and the number keeps the two stores' versions in step.
SELECT 1;
