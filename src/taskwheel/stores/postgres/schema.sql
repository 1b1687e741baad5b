-- The PostgreSQL schema that applying every migration in migrations/ yields, as the
-- catalogs describe it: functions, tables (columns, constraints, storage parameters),
-- views, indexes, triggers; each kind sorted by name. Generated for review; the migrations are
-- the source of truth (and say why). After changing them, regenerate with
--     TASKWHEEL_UPDATE_SCHEMA=1 .venv/bin/pytest tests/contract/test_migrations.py

CREATE OR REPLACE FUNCTION admit_keys(ns text, keys text[])
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
    admitted integer;
BEGIN
    PERFORM lock_slots(ns);
    -- Exact: the room was counted under the slot lock (this statement's snapshot is
    -- taken after it), and at most that many are admitted per key; a job locked by
    -- someone else is skipped (the next freed slot, or maintenance, admits it).
    -- (A join with the view counted every key of the namespace in the plan plpgsql
    -- keeps: one scalar lookup per key asked.)
    WITH room AS MATERIALIZED (
        SELECT k.key, (SELECT r.room FROM key_room AS r
                       WHERE r.namespace = ns AND r.key = k.key) AS room
        FROM (SELECT DISTINCT key FROM unnest(keys) AS u(key)) AS k),
    chosen AS (
        SELECT w.id FROM room CROSS JOIN LATERAL (
            SELECT w.id FROM jobs AS w
            WHERE w.namespace = ns AND w.gate_key = room.key AND w.status = 'queued'
              AND w.blocked
              AND NOT EXISTS (SELECT 1 FROM pauses AS p
                              WHERE p.namespace = w.namespace
                                AND ((p.kind = 'queue' AND p.name = w.queue)
                                     OR (p.kind = 'task' AND p.name = w.task)))
            ORDER BY w.priority DESC, w.deadline ASC NULLS LAST, w.run_at, w.id
            LIMIT room.room  -- NULL (no limit row): all of them
            FOR UPDATE SKIP LOCKED) AS w
        WHERE room.room IS NULL OR room.room > 0),
    asked AS (
        UPDATE jobs SET blocked = false WHERE id IN (SELECT id FROM chosen) RETURNING 1)
    SELECT count(*) INTO admitted FROM asked;
    IF admitted > 0 THEN
        PERFORM pg_notify('taskwheel:' || current_schema(), ns || E'\njobs');
    END IF;
    RETURN admitted;
END
$function$;

CREATE OR REPLACE FUNCTION admit_waiting(ns text, k text)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
BEGIN
    RETURN admit_keys(ns, ARRAY[k]);
END
$function$;

CREATE OR REPLACE FUNCTION clock_now(given double precision)
 RETURNS double precision
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$ SELECT coalesce(given, extract(epoch FROM now())::double precision) $function$;

CREATE OR REPLACE FUNCTION gate_became_ready()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    held boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA || ':gates'));
    IF current_schema() = TG_TABLE_SCHEMA THEN  -- as in gate_inserted
        held := EXISTS (SELECT 1 FROM pauses
                        WHERE namespace = NEW.namespace
                          AND ((kind = 'queue' AND name = NEW.queue)
                               OR (kind = 'task' AND name = NEW.task)));
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.pauses WHERE namespace = $1'
                       ' AND ((kind = ''queue'' AND name = $2)'
                       ' OR (kind = ''task'' AND name = $3)))', TG_TABLE_SCHEMA)
            INTO held USING NEW.namespace, NEW.queue, NEW.task;
    END IF;
    NEW.blocked := held;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION gate_inserted()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(TG_TABLE_SCHEMA || ':gates'));
    -- The store's sessions have its schema first in their search_path: static SQL,
    -- planned once. Anyone else's insert (an operator's, with another search_path)
    -- names the schema.
    IF current_schema() = TG_TABLE_SCHEMA THEN
        IF EXISTS (SELECT 1 FROM pauses) THEN
            UPDATE jobs SET blocked = true
            FROM inserted
            WHERE jobs.id = inserted.id AND inserted.status = 'queued'
              AND EXISTS (SELECT 1 FROM pauses AS p
                          WHERE p.namespace = inserted.namespace
                            AND ((p.kind = 'queue' AND p.name = inserted.queue)
                                 OR (p.kind = 'task' AND p.name = inserted.task)));
        END IF;
    ELSE
        EXECUTE format(
            'UPDATE %1$I.jobs SET blocked = true FROM inserted'
            ' WHERE jobs.id = inserted.id AND inserted.status = ''queued'''
            ' AND EXISTS (SELECT 1 FROM %1$I.pauses AS p'
            ' WHERE p.namespace = inserted.namespace'
            ' AND ((p.kind = ''queue'' AND p.name = inserted.queue)'
            ' OR (p.kind = ''task'' AND p.name = inserted.task)))', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION lock_slots(ns text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext(current_schema() || ':gates'));
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || ':slots:' || ns));
END
$function$;

CREATE OR REPLACE FUNCTION notify_became_ready()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_notify('taskwheel:' || TG_TABLE_SCHEMA, NEW.namespace || E'\njobs');
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION notify_inserted_ready()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_notify('taskwheel:' || TG_TABLE_SCHEMA, ready.namespace || E'\njobs')
    FROM (SELECT DISTINCT namespace FROM inserted WHERE status = 'queued') AS ready;
    PERFORM pg_notify('taskwheel:' || TG_TABLE_SCHEMA,
                      delayed.namespace || E'\ndue:' || delayed.first_due::text)
    FROM (SELECT namespace, min(run_at) AS first_due FROM inserted
          WHERE status = 'scheduled' GROUP BY namespace) AS delayed;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION rate_wait()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    NEW.status := 'waiting';
    NEW.blocked := false;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION slot_freed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM admit_waiting(OLD.namespace, OLD.gate_key);
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION slot_room(ns text, k text, except_id bigint)
 RETURNS integer
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    RETURN (SELECT r.room + (SELECT count(*) FROM jobs AS h
                             WHERE h.id = except_id AND h.namespace = ns AND h.gate_key = k
                               AND h.status IN ('queued', 'running')
                               AND NOT h.blocked)::integer
            FROM key_room AS r WHERE r.namespace = ns AND r.key = k);
END
$function$;

CREATE OR REPLACE FUNCTION slot_taken()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    room integer;
BEGIN
    IF NEW.blocked OR (OLD.gate_key IS NOT NULL AND OLD.status = 'queued'
                       AND NOT OLD.blocked) THEN
        RETURN NEW;  -- waits, or was ready with its slot already
    END IF;
    -- Asked again when it comes back from running (a retry, a rescue): its key may have
    -- been paused, its breaker opened or its limit lowered meanwhile.
    PERFORM lock_slots(NEW.namespace);
    room := slot_room(NEW.namespace, NEW.gate_key, NEW.id);
    NEW.blocked := room IS NOT NULL AND room <= 0;
    RETURN NEW;
END
$function$;

CREATE TABLE alert_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    namespace text NOT NULL,
    rule text NOT NULL,
    firing integer,
    event text NOT NULL,
    url text NOT NULL,
    body text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_at double precision NOT NULL,
    last_status_code integer,
    last_error text,
    created_at double precision NOT NULL,
    delivered_at double precision,
    CONSTRAINT alert_deliveries_event_check CHECK ((event = ANY (ARRAY['firing'::text, 'resolved'::text, 'test'::text]))),
    CONSTRAINT alert_deliveries_namespace_rule_firing_event_key UNIQUE (namespace, rule, firing, event),
    CONSTRAINT alert_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT alert_deliveries_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text])))
);

CREATE TABLE alert_rules (
    namespace text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    spec text NOT NULL,
    url text NOT NULL,
    secret text NOT NULL,
    created_at double precision NOT NULL,
    state text DEFAULT 'ok'::text NOT NULL,
    firing integer DEFAULT 0 NOT NULL,
    changed_at double precision,
    value double precision,
    evaluated_at double precision,
    CONSTRAINT alert_rules_pkey PRIMARY KEY (namespace, name),
    CONSTRAINT alert_rules_state_check CHECK ((state = ANY (ARRAY['ok'::text, 'firing'::text])))
);

CREATE TABLE api_keys (
    prefix text NOT NULL,
    digest text NOT NULL,
    namespace text NOT NULL,
    role text NOT NULL,
    name text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision,
    CONSTRAINT api_keys_pkey PRIMARY KEY (prefix),
    CONSTRAINT api_keys_role_check CHECK ((role = ANY (ARRAY['read'::text, 'operate'::text, 'admin'::text])))
);

CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    namespace text NOT NULL,
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    fence bigint NOT NULL,
    worker_id text,
    started_at double precision NOT NULL,
    ended_at double precision NOT NULL,
    outcome text NOT NULL,
    result json,
    error text,
    traceback text,
    CONSTRAINT attempts_pkey PRIMARY KEY (id)
);

CREATE TABLE fair_flows (
    namespace text NOT NULL,
    key text NOT NULL,
    weight double precision,
    last_pass double precision DEFAULT 0 NOT NULL,
    CONSTRAINT fair_flows_pkey PRIMARY KEY (namespace, key),
    CONSTRAINT fair_flows_weight_check CHECK ((weight > (0)::double precision))
);

CREATE TABLE job_deps (
    namespace text NOT NULL,
    run_id bigint NOT NULL,
    depends_on bigint NOT NULL,
    job_id bigint NOT NULL,
    CONSTRAINT job_deps_pkey PRIMARY KEY (depends_on, job_id)
);

CREATE TABLE jobs (
    id bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL,
    namespace text NOT NULL,
    task text NOT NULL,
    queue text NOT NULL,
    args json NOT NULL,
    kwargs json NOT NULL,
    status text NOT NULL,
    priority integer NOT NULL,
    run_at double precision NOT NULL,
    deadline double precision,
    timeout double precision,
    max_attempts integer NOT NULL,
    attempt integer DEFAULT 0 NOT NULL,
    fence bigint DEFAULT 0 NOT NULL,
    guarantee text NOT NULL,
    deadline_policy text NOT NULL,
    idempotency_key text,
    worker_id text,
    lease_expires_at double precision,
    started_at double precision,
    created_at double precision NOT NULL,
    finished_at double precision,
    cancel_requested boolean DEFAULT false NOT NULL,
    result json,
    last_error text,
    checkpoint json,
    schedule_id bigint,
    fire_at double precision,
    workflow_run_id bigint,
    step text,
    failure_policy text,
    waiting_on integer DEFAULT 0 NOT NULL,
    blocked boolean DEFAULT false NOT NULL,
    trace_parent text,
    gate_key text,
    fairness_key text,
    rank_offset bigint DEFAULT 0 NOT NULL,
    fair_pass double precision DEFAULT 0 NOT NULL,
    rate_key text,
    rate_cost integer DEFAULT 1 NOT NULL,
    rate_fence bigint,
    CONSTRAINT jobs_deadline_policy_check CHECK ((deadline_policy = ANY (ARRAY['expire'::text, 'run_late'::text]))),
    CONSTRAINT jobs_guarantee_check CHECK ((guarantee = ANY (ARRAY['at_least_once'::text, 'at_most_once'::text]))),
    CONSTRAINT jobs_max_attempts_check CHECK ((max_attempts >= 1)),
    CONSTRAINT jobs_pkey PRIMARY KEY (id),
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['scheduled'::text, 'waiting'::text, 'queued'::text, 'running'::text, 'succeeded'::text, 'cancelled'::text, 'dead'::text, 'expired'::text, 'upstream_failed'::text, 'skipped'::text])))
) WITH (fillfactor=80, autovacuum_vacuum_scale_factor=0.01, autovacuum_vacuum_threshold=1000, autovacuum_vacuum_cost_delay=0, autovacuum_vacuum_insert_scale_factor=0.05, autovacuum_analyze_scale_factor=0.02);

CREATE TABLE leases (
    namespace text NOT NULL,
    name text NOT NULL,
    holder text NOT NULL,
    expires_at double precision NOT NULL,
    term bigint DEFAULT 1 NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (namespace, name)
) WITH (fillfactor=50);

CREATE TABLE limits (
    namespace text NOT NULL,
    key text NOT NULL,
    capacity integer,
    set_by_hand boolean DEFAULT false NOT NULL,
    created_at double precision NOT NULL,
    paused_at double precision,
    paused_until double precision,
    breaker_state text DEFAULT 'closed'::text NOT NULL,
    breaker_until double precision,
    failures integer DEFAULT 0 NOT NULL,
    window_started double precision,
    breaker_failures integer,
    breaker_window double precision,
    breaker_cooldown double precision,
    breaker_failure_rate double precision,
    attempts integer DEFAULT 0 NOT NULL,
    CONSTRAINT limits_breaker_failure_rate_check CHECK (((breaker_failure_rate IS NULL) OR ((breaker_failure_rate > (0)::double precision) AND (breaker_failure_rate <= (1)::double precision)))),
    CONSTRAINT limits_breaker_failures_check CHECK (((breaker_failures IS NULL) OR (breaker_failures >= 1))),
    CONSTRAINT limits_breaker_state_check CHECK ((breaker_state = ANY (ARRAY['closed'::text, 'open'::text, 'half_open'::text]))),
    CONSTRAINT limits_capacity_check CHECK (((capacity IS NULL) OR (capacity >= 1))),
    CONSTRAINT limits_pkey PRIMARY KEY (namespace, key)
);

CREATE TABLE migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at double precision NOT NULL,
    CONSTRAINT migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE namespace_weights (
    namespace text NOT NULL,
    weight double precision NOT NULL,
    CONSTRAINT namespace_weights_pkey PRIMARY KEY (namespace),
    CONSTRAINT namespace_weights_weight_check CHECK ((weight > (0)::double precision))
);

CREATE TABLE pauses (
    namespace text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    paused_at double precision NOT NULL,
    until double precision,
    CONSTRAINT pauses_kind_check CHECK ((kind = ANY (ARRAY['queue'::text, 'task'::text]))),
    CONSTRAINT pauses_pkey PRIMARY KEY (namespace, kind, name)
);

CREATE TABLE queue_aging (
    namespace text NOT NULL,
    queue text NOT NULL,
    rate double precision NOT NULL,
    cap bigint,
    CONSTRAINT queue_aging_pkey PRIMARY KEY (namespace, queue),
    CONSTRAINT queue_aging_rate_check CHECK ((rate > (0)::double precision))
);

CREATE TABLE queue_limits (
    namespace text NOT NULL,
    queue text NOT NULL,
    max_depth integer NOT NULL,
    CONSTRAINT queue_limits_max_depth_check CHECK ((max_depth >= 1)),
    CONSTRAINT queue_limits_pkey PRIMARY KEY (namespace, queue)
);

CREATE TABLE queue_reserves (
    namespace text NOT NULL,
    queue text NOT NULL,
    share double precision NOT NULL,
    below bigint NOT NULL,
    CONSTRAINT queue_reserves_pkey PRIMARY KEY (namespace, queue),
    CONSTRAINT queue_reserves_share_check CHECK (((share > (0)::double precision) AND (share < (1)::double precision)))
);

CREATE TABLE quotas (
    namespace text NOT NULL,
    max_queued integer,
    max_enqueue_rate double precision,
    max_active_schedules integer,
    tokens double precision DEFAULT 0 NOT NULL,
    tokens_at double precision DEFAULT 0 NOT NULL,
    CONSTRAINT quotas_pkey PRIMARY KEY (namespace)
);

CREATE TABLE rates (
    namespace text NOT NULL,
    key text NOT NULL,
    rate double precision NOT NULL,
    burst integer NOT NULL,
    set_by_hand boolean DEFAULT false NOT NULL,
    created_at double precision NOT NULL,
    tokens double precision NOT NULL,
    held integer DEFAULT 0 NOT NULL,
    refilled_at double precision NOT NULL,
    CONSTRAINT rates_burst_check CHECK ((burst >= 1)),
    CONSTRAINT rates_pkey PRIMARY KEY (namespace, key),
    CONSTRAINT rates_rate_check CHECK ((rate > (0)::double precision))
);

CREATE TABLE schedules (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    namespace text NOT NULL,
    name text NOT NULL,
    spec text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    next_fire_at double precision,
    last_fire_at double precision,
    last_job_id bigint,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    changed_at double precision NOT NULL,
    declared_by text,
    CONSTRAINT schedules_namespace_name_key UNIQUE (namespace, name),
    CONSTRAINT schedules_pkey PRIMARY KEY (id)
) WITH (fillfactor=80);

CREATE TABLE webhooks (
    namespace text NOT NULL,
    name text NOT NULL,
    task text NOT NULL,
    queue text,
    secret text NOT NULL,
    idempotency_header text,
    idempotency_pointer text,
    created_at double precision NOT NULL,
    CONSTRAINT webhooks_pkey PRIMARY KEY (namespace, name)
);

CREATE TABLE workers (
    id text NOT NULL,
    namespace text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues text[] NOT NULL,
    concurrency integer NOT NULL,
    pool text NOT NULL,
    heartbeat_interval double precision NOT NULL,
    started_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    CONSTRAINT workers_pkey PRIMARY KEY (id)
) WITH (fillfactor=50);

CREATE TABLE workflow_runs (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    namespace text NOT NULL,
    name text NOT NULL,
    status text NOT NULL,
    on_failure text NOT NULL,
    cancel_requested boolean DEFAULT false NOT NULL,
    created_at double precision NOT NULL,
    finished_at double precision,
    schedule_id bigint,
    fire_at double precision,
    CONSTRAINT workflow_runs_on_failure_check CHECK ((on_failure = ANY (ARRAY['fail_fast'::text, 'fail_downstream'::text, 'continue'::text]))),
    CONSTRAINT workflow_runs_pkey PRIMARY KEY (id),
    CONSTRAINT workflow_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text])))
);

CREATE VIEW key_room AS
 SELECT l.namespace,
    l.key,
        CASE
            WHEN l.paused_at IS NOT NULL OR l.breaker_state = 'open'::text THEN 0
            WHEN l.breaker_state = 'half_open'::text THEN 1
            ELSE l.capacity
        END - (( SELECT count(*) AS count
           FROM jobs h
          WHERE h.namespace = l.namespace AND h.gate_key = l.key AND (h.status = ANY (ARRAY['queued'::text, 'running'::text])) AND NOT h.blocked))::integer AS room
   FROM limits l;

CREATE INDEX alert_deliveries_due ON alert_deliveries USING btree (namespace, next_at) WHERE (status = 'pending'::text);

CREATE INDEX attempts_job ON attempts USING btree (job_id, id);

CREATE INDEX fair_flows_last_pass ON fair_flows USING btree (namespace, last_pass);

CREATE INDEX job_deps_job ON job_deps USING btree (job_id, depends_on);

CREATE INDEX jobs_deadline ON jobs USING btree (namespace, deadline) WHERE ((status = ANY (ARRAY['scheduled'::text, 'waiting'::text, 'queued'::text])) AND (deadline IS NOT NULL));

CREATE INDEX jobs_due ON jobs USING btree (namespace, run_at) WHERE (status = 'scheduled'::text);

CREATE UNIQUE INDEX jobs_fire ON jobs USING btree (schedule_id, fire_at) WHERE (schedule_id IS NOT NULL);

CREATE INDEX jobs_gated ON jobs USING btree (namespace, gate_key, priority DESC, deadline, run_at, id) WHERE ((gate_key IS NOT NULL) AND (status = 'queued'::text) AND blocked);

CREATE INDEX jobs_holding ON jobs USING btree (namespace, gate_key) WHERE ((gate_key IS NOT NULL) AND (status = ANY (ARRAY['queued'::text, 'running'::text])) AND (NOT blocked));

CREATE UNIQUE INDEX jobs_idempotency ON jobs USING btree (namespace, idempotency_key) WHERE (idempotency_key IS NOT NULL);

CREATE INDEX jobs_prunable ON jobs USING btree (namespace, finished_at) WHERE (status = ANY (ARRAY['succeeded'::text, 'cancelled'::text, 'expired'::text, 'upstream_failed'::text, 'skipped'::text]));

CREATE INDEX jobs_rate_admitted ON jobs USING btree (namespace, rate_key) WHERE ((rate_key IS NOT NULL) AND (status = 'queued'::text));

CREATE INDEX jobs_rate_waiting ON jobs USING btree (namespace, rate_key, priority DESC, deadline, run_at, id) WHERE ((rate_key IS NOT NULL) AND (status = 'waiting'::text) AND (waiting_on = 0));

CREATE INDEX jobs_ready ON jobs USING btree (namespace, ((priority + rank_offset)) DESC, fair_pass, deadline, run_at, id) WHERE ((status = ('queued'::text COLLATE "C")) AND (NOT blocked));

CREATE INDEX jobs_running ON jobs USING btree (namespace) WHERE (status = 'running'::text);

CREATE INDEX jobs_schedule_unfinished ON jobs USING btree (schedule_id) WHERE ((schedule_id IS NOT NULL) AND (status = ANY (ARRAY['scheduled'::text, 'waiting'::text, 'queued'::text, 'running'::text])));

CREATE INDEX jobs_status ON jobs USING btree (namespace, status, queue);

CREATE INDEX jobs_worker ON jobs USING btree (worker_id) WHERE (status = 'running'::text);

CREATE INDEX jobs_workflow_status ON jobs USING btree (workflow_run_id, status) WHERE (workflow_run_id IS NOT NULL);

CREATE UNIQUE INDEX jobs_workflow_step ON jobs USING btree (workflow_run_id, step) WHERE (workflow_run_id IS NOT NULL);

CREATE INDEX limits_breakers ON limits USING btree (namespace, key) WHERE ((breaker_failures IS NOT NULL) OR (breaker_state <> 'closed'::text));

CREATE INDEX schedules_changed ON schedules USING btree (namespace, changed_at);

CREATE INDEX schedules_due ON schedules USING btree (namespace, next_fire_at) WHERE ((NOT paused) AND (next_fire_at IS NOT NULL));

CREATE UNIQUE INDEX workflow_runs_fire ON workflow_runs USING btree (schedule_id, fire_at) WHERE (schedule_id IS NOT NULL);

CREATE INDEX workflow_runs_list ON workflow_runs USING btree (namespace, status, id);

CREATE TRIGGER jobs_became_ready AFTER UPDATE OF status ON jobs FOR EACH ROW WHEN (new.status = 'queued'::text AND old.status <> 'queued'::text AND current_setting('taskwheel.admitting'::text, true) IS DISTINCT FROM 'by_statement'::text) EXECUTE FUNCTION notify_became_ready();

CREATE TRIGGER jobs_gate_inserted AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION gate_inserted();

CREATE TRIGGER jobs_gate_ready BEFORE UPDATE OF status ON jobs FOR EACH ROW WHEN (new.status = 'queued'::text AND old.status <> 'queued'::text AND current_setting('taskwheel.admitting'::text, true) IS DISTINCT FROM 'by_statement'::text) EXECUTE FUNCTION gate_became_ready();

CREATE TRIGGER jobs_inserted_ready AFTER INSERT ON jobs REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION notify_inserted_ready();

CREATE TRIGGER jobs_rate_wait BEFORE UPDATE OF status ON jobs FOR EACH ROW WHEN (new.status = 'queued'::text AND old.status <> 'queued'::text AND new.rate_key IS NOT NULL AND new.rate_fence IS DISTINCT FROM new.fence) EXECUTE FUNCTION rate_wait();

CREATE TRIGGER jobs_slot_freed AFTER UPDATE OF status, blocked ON jobs FOR EACH ROW WHEN (old.gate_key IS NOT NULL AND (old.status = ANY (ARRAY['queued'::text, 'running'::text])) AND NOT old.blocked AND NOT ((new.status = ANY (ARRAY['queued'::text, 'running'::text])) AND NOT new.blocked) AND current_setting('taskwheel.slots_freed'::text, true) IS DISTINCT FROM 'by_statement'::text) EXECUTE FUNCTION slot_freed();

CREATE TRIGGER jobs_slot_taken BEFORE UPDATE OF status, gate_key ON jobs FOR EACH ROW WHEN (new.gate_key IS NOT NULL AND new.status = 'queued'::text AND (old.status <> 'queued'::text OR old.gate_key IS NULL)) EXECUTE FUNCTION slot_taken();
