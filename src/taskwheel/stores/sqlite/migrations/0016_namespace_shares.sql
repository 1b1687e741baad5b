-- Weights between namespaces (version 16).

-- A namespace's share of the claims of a worker that serves it with other namespaces,
-- against their weights (a namespace without a row weighs 1). A claim of several
-- namespaces of which one has a row divides its jobs between them by weight
-- (`taskwheel.fairness.NamespaceStride`); other claims are as they were.
CREATE TABLE taskwheel_namespace_weights (
    namespace TEXT PRIMARY KEY,
    weight    REAL NOT NULL CHECK (weight > 0)
) WITHOUT ROWID;
