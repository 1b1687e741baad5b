-- Key gates, cheaper per job (version 15). Mirrors the PostgreSQL store's 0015_key_room.

-- How many more jobs of a key may hold a slot now (room; NULL: any number): its slots
-- (none while it is paused or its breaker open, one while the breaker is half-open)
-- less the jobs holding one, counted on taskwheel_jobs_holding. The one definition the
-- slot triggers (queries.sql, arm_limits), admit_waiting and the explanations read.
CREATE VIEW taskwheel_key_room AS
SELECT l.namespace, l.key,
       CASE WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open' THEN 0
            WHEN l.breaker_state = 'half_open' THEN 1
            ELSE l.capacity END
       - (SELECT count(*) FROM taskwheel_jobs AS h INDEXED BY taskwheel_jobs_holding
          WHERE h.namespace = l.namespace AND h.gate_key = l.key AND h.gate_key IS NOT NULL
            AND h.status IN ('queued', 'running') AND h.blocked = 0) AS room
FROM taskwheel_limits AS l;

-- The keys with a breaker rule or a breaker not closed: every report of a keyed job
-- asks whether there is any (breaker_states), which read the whole table before (a
-- thousand keys cost a report most of a millisecond).
CREATE INDEX taskwheel_limits_breakers ON taskwheel_limits (namespace, key)
    WHERE breaker_failures IS NOT NULL OR breaker_state <> 'closed';

-- The slot triggers of version 12 are replaced by arm_limits' new ones (the store arms
-- them again after this migration when the database has keys): a job admitted to a
-- slot no longer asks for it a second time, which cost every freed slot a second
-- trigger and a second write of the admitted row.
DROP TRIGGER IF EXISTS taskwheel_jobs_slot_taken;
DROP TRIGGER IF EXISTS taskwheel_jobs_slot_freed;
