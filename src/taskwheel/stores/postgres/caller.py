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
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from taskwheel.clock import Clock
from taskwheel.errors import InvalidInput, StoreError, StoreUnavailable
from taskwheel.stores.caller import CallerConnection
from taskwheel.stores.executor import Executor
from taskwheel.stores.postgres.connection import Connection, _reason
from taskwheel.stores.sql_files import load_queries

_C = load_queries("taskwheel.stores.postgres", "connection.sql")


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
            raise InvalidInput("connection", "a psycopg AsyncConnection needs an async "
                               "client, which taskwheel does not have: give a "
                               "psycopg.Connection")
        if not isinstance(connection, psycopg.Connection):
            raise InvalidInput("connection", "expected a psycopg 3 Connection (or a "
                               f"SQLAlchemy session over one), got {type(connection).__name__}")
        if connection.closed:
            raise InvalidInput("connection", "the connection is closed")
        self._conn: psycopg.Connection[Any] = connection
        self._rows = cast(Connection, _DictRows(connection))
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
        try:
            with conn.transaction() if own else contextlib.nullcontext(), conn.pipeline():
                conn.execute(_C["save_search_path"])
                conn.execute(_C["use_schema"], {"schema": self._schema})
                try:
                    yield self._make_executor(self._rows, now)
                finally:
                    if conn.info.transaction_status is not TransactionStatus.INERROR:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute(_C["restore_search_path"])
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(operation, _reason(exc)) from exc
        except psycopg.Error as exc:
            raise StoreError(operation, _reason(exc)) from exc


class _DictRows:
    """The caller's connection answering rows as dicts, as the store's statements
    read them, whatever row factory the caller chose for its own."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[DictRow]:
        return self._conn.cursor(row_factory=dict_row).execute(query, params)

    def cursor(self) -> psycopg.Cursor[DictRow]:
        return self._conn.cursor(row_factory=dict_row)
