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
what the operation wrote (see ``sqlite/commits.py``).

An async connection (psycopg's ``AsyncConnection``) is awaited: `run_awaited` runs the
operation, which is synchronous like every store operation, in a thread, and hands the
dialect the connection as an `AwaitedConnection`, whose statements the thread sends to
the caller's event loop and waits for. The loop stays free meanwhile, and the
connection is only ever used from the loop that owns it.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from taskwheel.stores.executor import Executor

T = TypeVar("T")


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


@dataclass(frozen=True)
class AwaitedConnection:
    """The caller's async connection, seen from the thread that runs an operation on
    it: each statement is a coroutine run on ``loop``, the loop that owns it."""

    connection: object
    loop: asyncio.AbstractEventLoop


def is_async_connection(connection: object) -> bool:
    """Whether ``connection`` answers its statements with coroutines."""
    return inspect.iscoroutinefunction(getattr(connection, "execute", None))


async def run_awaited(operation: Callable[[object | None], T], connection: object | None) -> T:
    """``operation(connection)`` from a coroutine without blocking its event loop: an
    async connection is handed over as an `AwaitedConnection` and the operation run in
    a thread; none (the store's own connections) in a thread too; a synchronous one in
    this thread, for it may belong to it (a ``sqlite3`` connection does)."""
    if connection is None:
        return await asyncio.to_thread(operation, None)
    if is_async_connection(connection):
        awaited = AwaitedConnection(connection, asyncio.get_running_loop())
        return await asyncio.to_thread(operation, awaited)
    return operation(connection)
