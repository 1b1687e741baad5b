-- Weights between namespaces (version 16). Mirrors the SQLite store's
-- 0016_namespace_shares.

-- A namespace's share of the claims of a worker that serves it with other namespaces,
-- against their weights (a namespace without a row weighs 1). A claim of several
-- namespaces of which one has a row divides its jobs between them by weight
-- (`taskwheel.fairness.NamespaceStride`); other claims are as they were.
CREATE TABLE namespace_weights (
    namespace text             PRIMARY KEY,
    weight    double precision NOT NULL CHECK (weight > 0)
);
