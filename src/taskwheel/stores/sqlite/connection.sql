-- Settings of every connection to the file, and what `describe` reads back.

-- name: busy_timeout
PRAGMA busy_timeout = {milliseconds}

-- name: journal_mode
PRAGMA journal_mode = WAL

-- name: synchronous
PRAGMA synchronous = NORMAL
