-- A report gives back its slots in one pass (version 18): PostgreSQL's store changes, this
-- one does not. There, each slot a worker's report freed ran an admission inside the
-- report's statement with the namespace's slot lock held to the commit, so two workers'
-- reports ran one after the other; its migration 0018 admits all of a report's keys in
-- one statement after the report's rows are written. Here one writer holds the whole
-- database's write lock for any write, there is no slot lock to hold for less, and the
-- slot triggers (0012, 0015) give each freed slot back in the writer's own process.
SELECT 1;
