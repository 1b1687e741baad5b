-- Due-time wake-ups (version 4). No table changes here: the SQLite store sends its
-- wake-ups itself after each commit, and an INSERT of delayed jobs now sends
-- "due:<epoch seconds>" of the earliest (stores/sqlite/store.py, insert_jobs), as
-- PostgreSQL's trigger does from its version 4. Kept so both stores count the same
-- schema versions; the file's header records the version too.
PRAGMA user_version = 4;
