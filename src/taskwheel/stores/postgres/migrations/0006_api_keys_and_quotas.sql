-- API keys and namespace quotas (version 6), for the HTTP server. Mirrors the SQLite
-- store's 0006_api_keys_and_quotas. Times are double precision epoch seconds (UTC).

-- A key is found by its public prefix; only a SHA-256 digest of the whole key is kept
-- (see taskwheel/keys.py for why an unsalted digest is enough). namespace is '*' for an
-- operator's key, which acts in every namespace.
CREATE TABLE api_keys (
    prefix     text             PRIMARY KEY,
    digest     text             NOT NULL,
    namespace  text             NOT NULL,
    role       text             NOT NULL CHECK (role IN ('read', 'operate', 'admin')),
    name       text             NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);

-- At most one row per namespace; a namespace without a row has no quota, and its
-- enqueues cost no extra round trip (insert_jobs looks for the row in the same
-- statement). A NULL limit is no limit. tokens and tokens_at are the enqueue rate's
-- bucket: how many jobs may still be enqueued at once, as of tokens_at.
CREATE TABLE quotas (
    namespace            text             PRIMARY KEY,
    max_queued           integer,
    max_enqueue_rate     double precision,
    max_active_schedules integer,
    tokens               double precision NOT NULL DEFAULT 0,
    tokens_at            double precision NOT NULL DEFAULT 0
);
