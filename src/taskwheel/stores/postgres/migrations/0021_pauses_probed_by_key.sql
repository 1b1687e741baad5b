-- The pause gates look a pause up by its key, and a pass's outstanding cost is read off
-- its index (version 21). Mirrors the SQLite store's 0021_pauses_probed_by_key.
--
-- There, a lookup of a job's pause with an OR (its queue or its task) ran as a row set
-- built for every probe, and the triggers now probe the primary key twice instead; and
-- the index of admitted jobs carries their cost, so that an admission pass sums it
-- without reading the rows. PostgreSQL plans the first as an anti-join on the key, and
-- would read the rows for the second anyway (admitted rows were just written, so their
-- pages are not all-visible to an index-only scan): nothing changes here.
SELECT 1;
