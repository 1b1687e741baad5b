"""The SQLite store on the caller's ``sqlite3`` connection (transactional enqueue).

The caller's connection must be to the store's own file. An operation joins the
transaction the caller has open, or begins the one the caller's next statement would
have begun (Python's ``sqlite3`` opens one before a write unless the connection is in
autocommit mode; this one takes the write lock at once, as ``BEGIN IMMEDIATE``): either
way the caller's commit or rollback ends it. A transaction the caller opened with a read
should be ``BEGIN IMMEDIATE`` too (``isolation_level="IMMEDIATE"``): a deferred one that
another writer's commit overtakes cannot write any more ("database is locked"). Its statements
run inside a savepoint of that transaction, so that an operation that fails halfway
leaves nothing and the caller's transaction goes on. (SQLite, unlike PostgreSQL, does
not abort a transaction whose statement failed, and its savepoints cost nothing.)

What the operation would wake is left with the store's `CommitWatcher`, which sends it
once the caller has committed (see ``commits.py``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from taskwheel.errors import InvalidInput
from taskwheel.stores.caller import CallerConnection
from taskwheel.stores.executor import Executor
from taskwheel.stores.sql_files import load_queries
from taskwheel.stores.sqlite.commits import CommitWatcher, PendingWakes, WitnessedExecutor
from taskwheel.stores.sqlite.connection import translated

if TYPE_CHECKING:
    from taskwheel.notify import Notifier

_Q = load_queries("taskwheel.stores.sqlite", "connection.sql")
_SAVEPOINT = "taskwheel_operation"


class SQLiteCaller(CallerConnection):
    """A ``sqlite3.Connection`` of the application's, to the store's file."""

    def __init__(
        self, connection: object, *, path: str, notifier: Notifier,
        commits: CommitWatcher | None,
        executor: Callable[[sqlite3.Connection], WitnessedExecutor],
    ) -> None:
        if not isinstance(connection, sqlite3.Connection):
            raise InvalidInput("connection", "expected a sqlite3.Connection to the store's "
                               f"file (or a SQLAlchemy session over one), got "
                               f"{type(connection).__name__}")
        if commits is None:
            raise InvalidInput("connection", "an in-memory store has no file another "
                               "connection could share: use a database file")
        try:
            files = connection.execute(_Q["database_list"]).fetchall()
        except sqlite3.ProgrammingError as exc:
            raise InvalidInput("connection", str(exc)) from None
        main = next((row[2] for row in files if row[1] == "main"), "")
        if not main or not os.path.exists(path) or not os.path.samefile(main, path):
            raise InvalidInput("connection", f"the connection is to {main or 'memory'!r}, "
                               f"not to the store's file {path!r}")
        self._conn = connection
        self._make_executor = executor
        self._notifier = notifier
        self._commits = commits

    @contextlib.contextmanager
    def executor(self, operation: str) -> Iterator[Executor]:
        conn = self._conn
        # The store reads rows by column name, and text as text.
        row_factory, text_factory = conn.row_factory, conn.text_factory
        conn.row_factory, conn.text_factory = sqlite3.Row, str
        executor = self._make_executor(conn)
        try:
            with translated(operation):
                if not conn.in_transaction and _begins_implicitly(conn):
                    # The one sqlite3 would open, but IMMEDIATE, as the store's writes
                    # are: the operation reads before it writes, and a deferred
                    # transaction that another commit overtakes meanwhile could not write.
                    conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                try:
                    yield executor
                except BaseException:
                    conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    conn.execute(f"RELEASE {_SAVEPOINT}")
                    raise
                conn.execute(f"RELEASE {_SAVEPOINT}")
        finally:
            conn.row_factory, conn.text_factory = row_factory, text_factory
        if not executor.wakes:
            return
        if conn.in_transaction:
            self._commits.after_commit(PendingWakes(executor.witnesses, executor.wakes))
        else:  # autocommit: released, so committed
            for namespace, event in executor.wakes:
                self._notifier.notify(namespace, event)


def _begins_implicitly(conn: sqlite3.Connection) -> bool:
    """Whether ``sqlite3`` opens a transaction before the connection's next write
    (legacy transaction control with an isolation level; ``autocommit=False`` keeps
    one open at all times)."""
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
    mode = getattr(conn, "autocommit", legacy)
    return conn.isolation_level is not None if mode == legacy else mode is False
