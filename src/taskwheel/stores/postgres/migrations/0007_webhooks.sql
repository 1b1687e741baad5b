-- Webhooks (version 7): a request to POST /hooks/{namespace}/{name} becomes a job of
-- the webhook's task (see taskwheel/webhooks.py). Mirrors the SQLite store's
-- 0007_webhooks. Times are double precision epoch seconds (UTC).

-- secret is kept as given: checking a delivery's HMAC-SHA256 signature needs it.
-- idempotency_header or idempotency_pointer (a JSON pointer into the body), when set,
-- names where a delivery carries its id, which makes a redelivery create no second job.
CREATE TABLE webhooks (
    namespace           text             NOT NULL,
    name                text             NOT NULL,
    task                text             NOT NULL,
    queue               text,
    secret              text             NOT NULL,
    idempotency_header  text,
    idempotency_pointer text,
    created_at          double precision NOT NULL,
    PRIMARY KEY (namespace, name)
);
