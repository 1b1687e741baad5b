"""The PostgreSQL store on the caller's psycopg connection (transactional enqueue).

The store's statements name its tables unqualified, for the pool's connections have
the store's schema as their ``search_path``. On the caller's connection the schema is
put in front for the operation only, with ``set_config(..., is_local)``, and the
caller's path given back after it, the three travelling in the operation's pipeline:
the caller's own tables keep their names, whatever ours are called.

No savepoint: an operation either fails in SQL, which aborts the caller's transaction
(it can only roll back), or refuses before it writes (`QuotaExceeded`, `InvalidInput`).
A savepoint per enqueue would cost a subtransaction each: ten thousand enqueues in one
transaction would overflow PostgreSQL's per-backend cache of subtransactions and slow
every other session's snapshots.

Wake-ups need nothing: NOTIFY is transactional, so the jobs table's trigger and
`Executor.wake` are heard when the caller commits, and never if it rolls back.

A psycopg ``AsyncConnection`` comes as an `AwaitedConnection` (see `run_awaited`): the
operation runs in a thread and `_AwaitedLink` sends its statements to the connection's
event loop, queued as a pipeline would queue them and sent together when a result is
read or the operation ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar, cast

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from taskwheel.awaited import AwaitedConnection
from taskwheel.clock import Clock
from taskwheel.errors import InvalidInput, StoreError
from taskwheel.stores.caller import CallerConnection
from taskwheel.stores.executor import Executor
from taskwheel.stores.postgres.connection import Connection, translated
from taskwheel.stores.sql_files import load_queries

_C = load_queries("taskwheel.stores.postgres", "connection.sql")
T = TypeVar("T")


class PostgresCaller(CallerConnection):
    """A psycopg 3 connection of the application's, in whatever state it is: inside a
    transaction (the operation joins it); idle and not in autocommit mode (its next
    statement begins the transaction the caller will end, as psycopg does); idle in
    autocommit mode (the operation is a transaction of its own, committed at once)."""

    def __init__(
        self, connection: object, *, schema: str, clock: Clock | None,
        executor: Callable[[Connection, float | None], Executor],
    ) -> None:
        if isinstance(connection, psycopg.AsyncConnection):
            raise InvalidInput("connection", "a psycopg AsyncConnection is awaited: use "
                               "`await app.enqueue_async(..., connection=conn)` or "
                               "`await task.enqueue_async(..., using=conn)`")
        link: psycopg.Connection[Any] | _AwaitedLink
        if isinstance(connection, AwaitedConnection):
            if not isinstance(connection.connection, psycopg.AsyncConnection):
                raise InvalidInput("connection", "expected a psycopg 3 AsyncConnection, got "
                                   f"{type(connection.connection).__name__}")
            link = _AwaitedLink(connection.connection, connection.loop)
            rows = cast(Connection, link)
        elif isinstance(connection, psycopg.Connection):
            link = connection
            rows = cast(Connection, _DictRows(link))
        else:
            raise InvalidInput("connection", "expected a psycopg 3 Connection (or a "
                               f"SQLAlchemy session over one), got {type(connection).__name__}")
        if link.closed:
            raise InvalidInput("connection", "the connection is closed")
        self._conn = link
        self._rows = rows
        self._schema = schema
        self._make_executor = executor
        self._clock = clock

    @contextlib.contextmanager
    def executor(self, operation: str) -> Iterator[Executor]:
        conn = self._conn
        status = conn.info.transaction_status
        if status is TransactionStatus.INERROR:
            raise StoreError(operation, "the caller's transaction has failed (a statement of "
                             "it raised): roll it back first")
        own = conn.autocommit and status is TransactionStatus.IDLE
        now = None if self._clock is None else self._clock.now()
        with translated(operation), \
                conn.transaction() if own else contextlib.nullcontext(), conn.pipeline():
            conn.execute(_C["save_search_path"])
            conn.execute(_C["use_schema"], {"schema": self._schema})
            try:
                yield self._make_executor(self._rows, now)
            finally:
                if conn.info.transaction_status is not TransactionStatus.INERROR:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute(_C["restore_search_path"])


class _DictRows:
    """The caller's connection answering rows as dicts, as the store's statements
    read them, whatever row factory the caller chose for its own."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[DictRow]:
        return self._conn.cursor(row_factory=dict_row).execute(query, params)

    def cursor(self) -> psycopg.Cursor[DictRow]:
        return self._conn.cursor(row_factory=dict_row)


class _AwaitedLink:
    """The parts of a psycopg connection an operation uses, over an async connection
    whose event loop runs the statements while this thread waits (see the module).

    As in a pipeline, a statement is queued, and the queue sent in one trip to the loop
    when a result is read or the block ends: the statements an enqueue needs before its
    answer (the schema put on the path, the insert) cost one crossing, not one each.
    Rows come as dicts."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop
        self._queued: list[_Queued] = []

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def info(self) -> Any:
        return self._conn.info

    @property
    def autocommit(self) -> bool:
        return self._conn.autocommit

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        transaction = self._conn.transaction()
        self._run(transaction.__aenter__())
        try:
            yield
        except BaseException as exc:
            if not self._run(transaction.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self._run(transaction.__aexit__(None, None, None))

    @contextlib.contextmanager
    def pipeline(self) -> Iterator[None]:
        """What the block queued is sent when it ends, however it ends (giving the
        caller's search path back included)."""
        try:
            yield
        finally:
            self.flush()

    def execute(self, query: Any, params: Any = None) -> _Queued:
        queued = _Queued(self, query, params)
        self._queued.append(queued)
        return queued

    def flush(self) -> None:
        """Send the queued statements, in order, in one trip to the loop; the first that
        fails raises, and those after it are not sent."""
        queued, self._queued = self._queued, []
        if queued:
            self._run(self._send(queued))

    async def _send(self, queued: Sequence[_Queued]) -> None:
        for statement in queued:
            cursor = self._conn.cursor(row_factory=dict_row)
            await cursor.execute(statement.query, statement.params)
            found = await cursor.fetchall() if cursor.description is not None else []
            statement.answer(found, cursor.rowcount)


class _Queued:
    """A statement queued on an `_AwaitedLink`, read like a cursor: reading it sends
    the queue."""

    def __init__(self, link: _AwaitedLink, query: Any, params: Any) -> None:
        self._link = link
        self.query = query
        self.params = params
        self._rows: list[DictRow] | None = None
        self._next = 0
        self._rowcount = -1

    def answer(self, found: Sequence[DictRow], rowcount: int) -> None:
        self._rows = list(found)
        self._rowcount = rowcount

    def _answered(self) -> list[DictRow]:
        if self._rows is None:
            self._link.flush()
        if self._rows is None:
            raise StoreError("statement", "not sent: a statement before it failed")
        return self._rows

    @property
    def rowcount(self) -> int:
        self._answered()
        return self._rowcount

    def fetchone(self) -> DictRow | None:
        rows = self._answered()
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def fetchall(self) -> list[DictRow]:
        rows = self._answered()
        rest = rows[self._next:]
        self._next = len(rows)
        return rest

    def __iter__(self) -> Iterator[DictRow]:
        return iter(self.fetchall())
