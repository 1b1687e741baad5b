-- Due-time wake-ups (version 4): an INSERT of delayed jobs also tells the listeners when
-- the earliest of them falls due, "<namespace>\ndue:<epoch seconds>", so a sleeping
-- worker moves its alarm to that instant instead of finding the job at its next poll.
-- Still once per INSERT (or COPY) statement, per namespace.
CREATE OR REPLACE FUNCTION notify_inserted_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskwheel:' || TG_TABLE_SCHEMA, ready.namespace || E'\njobs')
    FROM (SELECT DISTINCT namespace FROM inserted WHERE status = 'queued') AS ready;
    PERFORM pg_notify('taskwheel:' || TG_TABLE_SCHEMA,
                      delayed.namespace || E'\ndue:' || delayed.first_due::text)
    FROM (SELECT namespace, min(run_at) AS first_due FROM inserted
          WHERE status = 'scheduled' GROUP BY namespace) AS delayed;
    RETURN NULL;
END
$$;
