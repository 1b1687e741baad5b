-- Webhooks (version 7): a request to POST /hooks/{namespace}/{name} becomes a job of
-- the webhook's task (see taskwheel/webhooks.py). Times are REAL epoch seconds (UTC).

-- secret is kept as given: checking a delivery's HMAC-SHA256 signature needs it.
-- idempotency_header or idempotency_pointer (a JSON pointer into the body), when set,
-- names where a delivery carries its id, which makes a redelivery create no second job.
CREATE TABLE taskwheel_webhooks (
    namespace           TEXT NOT NULL,
    name                TEXT NOT NULL,
    task                TEXT NOT NULL,
    queue               TEXT,
    secret              TEXT NOT NULL,
    idempotency_header  TEXT,
    idempotency_pointer TEXT,
    created_at          REAL NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
