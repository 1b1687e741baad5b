"""Enqueueing from a coroutine: the store's operations are synchronous, so
`run_awaited` runs one in a thread and the event loop stays free.

An async connection of the application's (psycopg's ``AsyncConnection``), whose open
transaction the operation is to join, is handed to the store as an
`AwaitedConnection`: the thread sends each of its statements to the loop that owns the
connection and waits for the answer, so the connection is only ever used from that loop
(see ``stores/postgres/caller.py``).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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
    this thread, for it may belong to it (a ``sqlite3`` connection does).

    Example:
        >>> await run_awaited(lambda conn: app.enqueue_many(batch, connection=conn),
        ...                   aconn)  # doctest: +SKIP
    """
    if connection is None:
        return await asyncio.to_thread(operation, None)
    if is_async_connection(connection):
        awaited = AwaitedConnection(connection, asyncio.get_running_loop())
        return await asyncio.to_thread(operation, awaited)
    return operation(connection)
