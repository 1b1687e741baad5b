"""The caller's transaction: a store's operations run on the application's own
connection, inside the transaction the application commits or rolls back.

This is transactional enqueue (DESIGN.md, "Stores"): the job is created by the same
transaction as the row that caused it, or not at all. `SQLStore.within` answers a
`CallerTransaction`, which is `SQLStore` itself -- every decision written once -- over
the executor a dialect opens on the caller's connection (`CallerConnection`) instead
of one from its pool. Nothing here commits: an operation's statements join the
caller's transaction (the dialect may wrap them in a savepoint of it).

Wake-ups follow the transaction. PostgreSQL's NOTIFY is transactional: the jobs
table's trigger and `Executor.wake` send theirs when the caller commits, and nothing
when it rolls back. SQLite has no such thing: its dialect hands what the operation
would wake to a watcher that sends it once the caller's transaction has committed
what the operation wrote (see ``sqlite/caller.py``).

An async connection (psycopg's ``AsyncConnection``) comes as an `AwaitedConnection`
(see ``taskwheel/awaited.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from taskwheel.stores.executor import Executor


class CallerConnection(ABC):
    """A dialect's hold on the caller's connection: executors on it, one operation
    at a time, in whatever transaction the caller has open."""

    @abstractmethod
    def executor(self, operation: str) -> AbstractContextManager[Executor]:
        """An executor whose statements run in the caller's transaction (begun, as the
        caller's own next statement would begin it, if none is open). If the block
        raises, what it wrote is undone where the dialect can (a savepoint) and the
        error propagates; the caller's transaction is the caller's to end."""


def unwrap_connection(connection: object) -> object:
    """The DB-API connection under what an application holds: a SQLAlchemy
    ``Session`` or ``Connection`` (its current transaction's connection), a Django
    connection (``django.db.connection``: connected if it was not), or the connection
    itself. Duck-typed: taskwheel depends on neither."""
    if type(connection).__module__.startswith("django.") and hasattr(
            connection, "ensure_connection"):
        connection.ensure_connection()
        return getattr(connection, "connection", connection)
    get_connection = getattr(connection, "connection", None)
    if callable(get_connection) and _is_sqlalchemy(connection):  # a Session
        connection = get_connection()
    if _is_sqlalchemy(connection):  # a Connection: its pooled DB-API connection
        pooled = getattr(connection, "connection", None)
        driver = getattr(pooled, "driver_connection", None)
        if driver is not None:
            return driver
    return connection


def _is_sqlalchemy(value: object) -> bool:
    return type(value).__module__.startswith("sqlalchemy.")

