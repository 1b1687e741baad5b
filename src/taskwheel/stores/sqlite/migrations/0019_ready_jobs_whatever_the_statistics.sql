-- The claims read the ready jobs' index whatever the statistics say (version 19):
-- PostgreSQL's store changes, this one does not. There, a table analysed while no job
-- was queued made the planner read every queued job through jobs_status and sort them,
-- at every claim; its migration 0019 gives jobs_ready a condition that only the claims
-- ask. Here every claim names its index (INDEXED BY taskwheel_jobs_ready).
SELECT 1;
