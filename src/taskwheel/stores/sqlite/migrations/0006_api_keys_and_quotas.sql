-- API keys and namespace quotas (version 6), for the HTTP server. Times are REAL epoch
-- seconds (UTC).

-- A key is found by its public prefix; only a SHA-256 digest of the whole key is kept
-- (see taskwheel/keys.py for why an unsalted digest is enough). namespace is '*' for an
-- operator's key, which acts in every namespace.
CREATE TABLE taskwheel_api_keys (
    prefix     TEXT    PRIMARY KEY,
    digest     TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'operate', 'admin')),
    name       TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;

-- At most one row per namespace; a namespace without a row has no quota, and its
-- enqueues read nothing more than before. A NULL limit is no limit. tokens and
-- tokens_at are the enqueue rate's bucket: how many jobs may still be enqueued at once,
-- as of tokens_at.
CREATE TABLE taskwheel_quotas (
    namespace            TEXT    PRIMARY KEY,
    max_queued           INTEGER,
    max_enqueue_rate     REAL,
    max_active_schedules INTEGER,
    tokens               REAL    NOT NULL DEFAULT 0,
    tokens_at            REAL    NOT NULL DEFAULT 0
) WITHOUT ROWID;
