-- An admission pass queues its jobs in one statement (version 20): PostgreSQL's store
-- changes, this one does not. There, each job an admission pass queued ran two trigger
-- functions (the pause gate and the wake-up), most of the pass's cost; its migration
-- 0020 lets admit_rated do both for all of its rows at once. Here the triggers are
-- statements of the writer's own process, and the store wakes the workers once anyway.
SELECT 1;
