-- Observability (version 9). Mirrors the SQLite store's 0009_observability. Times are
-- double precision epoch seconds (UTC).

-- The W3C traceparent of the code that enqueued a job (taskwheel.tracing), so the span
-- of each of its attempts is a child of the enqueue's; NULL when nobody traces.
ALTER TABLE jobs ADD COLUMN trace_parent text;

-- Alert rules (taskwheel/alerts.py): what each watches (spec, JSON), where it is
-- delivered and the secret that signs its deliveries; and where it stands: state, the
-- number of its current or last firing, when it last changed, the last value read.
CREATE TABLE alert_rules (
    namespace    text             NOT NULL,
    name         text             NOT NULL,
    kind         text             NOT NULL,
    spec         text             NOT NULL,
    url          text             NOT NULL,
    secret       text             NOT NULL,
    created_at   double precision NOT NULL,
    state        text             NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    firing       integer          NOT NULL DEFAULT 0,
    changed_at   double precision,
    value        double precision,
    evaluated_at double precision,
    PRIMARY KEY (namespace, name)
);

-- One row per delivery of a rule's event, and how its attempts went. A firing and its
-- resolution are each delivered once: (rule, firing, event) is unique (test deliveries
-- have no firing).
CREATE TABLE alert_deliveries (
    id               bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace        text             NOT NULL,
    rule             text             NOT NULL,
    firing           integer,
    event            text             NOT NULL CHECK (event IN ('firing', 'resolved', 'test')),
    url              text             NOT NULL,
    body             text             NOT NULL,
    status           text             NOT NULL DEFAULT 'pending'
                                      CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer          NOT NULL DEFAULT 0,
    next_at          double precision NOT NULL,
    last_status_code integer,
    last_error       text,
    created_at       double precision NOT NULL,
    delivered_at     double precision,
    UNIQUE (namespace, rule, firing, event)
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (namespace, next_at)
    WHERE status = 'pending';
