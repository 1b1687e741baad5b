-- Observability (version 9). Times are REAL epoch seconds (UTC).

-- The W3C traceparent of the code that enqueued a job (taskwheel.tracing), so the span
-- of each of its attempts is a child of the enqueue's; NULL when nobody traces.
ALTER TABLE taskwheel_jobs ADD COLUMN trace_parent TEXT;

-- Alert rules (taskwheel/alerts.py): what each watches (spec, JSON), where it is
-- delivered and the secret that signs its deliveries; and where it stands: state, the
-- number of its current or last firing, when it last changed, the last value read.
CREATE TABLE taskwheel_alert_rules (
    namespace    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    created_at   REAL    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    firing       INTEGER NOT NULL DEFAULT 0,
    changed_at   REAL,
    value        REAL,
    evaluated_at REAL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

-- One row per delivery of a rule's event, and how its attempts went. A firing and its
-- resolution are each delivered once: (rule, firing, event) is unique (test deliveries
-- have no firing).
CREATE TABLE taskwheel_alert_deliveries (
    id               INTEGER PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    rule             TEXT    NOT NULL,
    firing           INTEGER,
    event            TEXT    NOT NULL CHECK (event IN ('firing', 'resolved', 'test')),
    url              TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          REAL    NOT NULL,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       REAL    NOT NULL,
    delivered_at     REAL,
    UNIQUE (namespace, rule, firing, event)
);

CREATE INDEX taskwheel_alert_deliveries_due
    ON taskwheel_alert_deliveries (namespace, next_at) WHERE status = 'pending';
