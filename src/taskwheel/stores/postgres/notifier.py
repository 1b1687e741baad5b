"""Wake-ups over PostgreSQL's LISTEN/NOTIFY.

Notifications are sent by the database in the transactions that make work ready (a
trigger on the jobs table, see migrations/0001_initial.sql) or that change schedules
(the store), so they reach listeners when, and only if, those transactions commit. The
channel is per schema (``taskwheel:<schema>``): deployments sharing a database do not
wake each other. The payload is ``<namespace>\\n<event>``.

One connection per process listens, whatever the number of listeners in it (a worker
and a scheduler in one ``taskwheel dev``, say): it belongs to a small thread outside the
pool that waits on the connection's socket, hands every notification to each listener,
checks a quiet connection now and then, and, when the connection breaks, reconnects
with backoff and LISTENs again.

Why each listener has a socket pair: callers register ``fileno()`` with their event
loop (or ``select``) once. The LISTEN connection's own socket would not do: when the
connection is replaced, so is its socket, and the closed one's descriptor number may by
then belong to something else. Notifications sent while the connection was being
replaced are lost; that costs the listeners a poll interval, never a job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import psycopg
from psycopg import sql

from taskwheel.notify import FINISHED, UNFINISHED, checked_hears, kind_of
from taskwheel.stores.postgres.connection import readable
from taskwheel.stores.sql_files import load_queries

if TYPE_CHECKING:
    from taskwheel.stores.postgres.connection import Connection, Database

log = logging.getLogger(__name__)
_Q = load_queries("taskwheel.stores.postgres", "connection.sql")


def channel_of(schema: str) -> str:
    """The NOTIFY channel of the store in ``schema`` (the trigger builds the same)."""
    return f"taskwheel:{schema}"


def payload_of(namespace: str, event: str) -> str:
    return f"{namespace}\n{event}"


# What follows the namespace in a FINISHED wake-up: a report statement that announces
# it in SQL appends this to each namespace.
FINISHED_TAIL = payload_of("", FINISHED)


def _event(payload: str) -> tuple[str, str]:
    namespace, _, event = payload.partition("\n")
    return namespace, event


class PostgresNotifier:
    """`Notifier` on the store's NOTIFY channel.

    Example:
        >>> listener = store.notifier.listen()  # doctest: +SKIP
        >>> store.notifier.notify("default", "jobs")  # doctest: +SKIP
        >>> listener.read()  # doctest: +SKIP
        [('default', 'jobs')]
    """

    def __init__(self, database: Database, *, idle_check: float = 30.0) -> None:
        self._database = database
        self.channel = channel_of(database.schema)
        self._idle_check = idle_check

    def notify(self, namespace: str, event: str) -> None:
        """Send a wake-up now, outside any transaction. A hint: a failure is logged."""
        try:
            with self._database.connection("notify") as conn:
                conn.execute(
                    _Q["notify"],
                    {"channel": self.channel, "payload": payload_of(namespace, event)},
                )
        except Exception as exc:
            log.warning("could not send the %s wake-up for %s: %s", event, namespace, exc)

    def listen(self, *, hears: frozenset[str] = UNFINISHED) -> PostgresListener:
        """A listener sharing this process's LISTEN connection (made by the first),
        woken only by the kinds of notification it ``hears``."""
        database = self._database
        return _ListenConnection.subscribe(
            hears=checked_hears(hears),
            key=(os.getpid(), database.conninfo, self.channel),
            connect=lambda: database.connect(
                connect_timeout=10, application_name=f"{database.application_name}:listen"[:63],
                # A silent network failure must not leave the connection waiting forever.
                keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
            ),
            idle_check=self._idle_check,
        )


class PostgresListener:
    """One listener: its own wake-up descriptor and queue of events, fed by the
    process's LISTEN connection."""

    def __init__(self, source: _ListenConnection, hears: frozenset[str]) -> None:
        self._source = source
        self._hears = hears
        self._events: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closed = False

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection; None while there is none."""
        return self._source.backend_pid

    @property
    def reconnects(self) -> int:
        """How many times the LISTEN connection was made again after it broke."""
        return self._source.reconnects

    def fileno(self) -> int:
        return self._wake_r.fileno()

    def read(self) -> list[tuple[str, str]]:
        if self._closed:
            return []
        # Drain the signal first: an event queued after this signals again.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._source.leave(self)
        self._wake_r.close()
        self._wake_w.close()

    def _deliver(self, events: list[tuple[str, str]]) -> None:
        events = [e for e in events if kind_of(e[1]) in self._hears]
        if not events:
            return  # no wake-up for what it ignores
        with self._lock:
            if self._closed:
                return
            self._events.extend(events)
            with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
                self._wake_w.send(b"x")  # a full buffer means a wake-up is pending


class _ListenConnection:
    """The LISTEN connection of one process for one channel, and its thread."""

    _shared: ClassVar[dict[tuple[int, str, str], _ListenConnection]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def subscribe(
        cls,
        *,
        key: tuple[int, str, str],
        connect: Callable[[], Connection],
        idle_check: float,
        hears: frozenset[str],
    ) -> PostgresListener:
        with cls._shared_lock:
            source = cls._shared.get(key)
            if source is None:
                source = cls._shared[key] = cls(key, connect, idle_check)
            listener = PostgresListener(source, hears)
            with source._lock:
                source._listeners.add(listener)
        return listener

    def __init__(
        self,
        key: tuple[int, str, str],
        connect: Callable[[], Connection],
        idle_check: float,
        max_backoff: float = 10.0,
    ) -> None:
        self.key = key
        self.channel = key[2]
        self._connect = connect
        self._idle_check = idle_check
        self._max_backoff = max_backoff
        self._listeners: set[PostgresListener] = set()
        self._lock = threading.Lock()
        self._stop_r, self._stop_w = socket.socketpair()
        self.reconnects = 0
        # LISTEN before the first listener is handed out when the database is reachable,
        # so that nothing sent after listen() returns is missed; otherwise the thread
        # keeps trying (and listeners poll meanwhile).
        self._conn: Connection | None = None
        try:
            self._conn = self._listening_connection()
        except psycopg.Error as exc:
            log.warning("cannot LISTEN for wake-ups yet (retrying; polling meanwhile): %s", exc)
        self._thread = threading.Thread(
            target=self._run, name=f"taskwheel-listen[{self.channel}]", daemon=True
        )
        self._thread.start()

    @property
    def backend_pid(self) -> int | None:
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    def leave(self, listener: PostgresListener) -> None:
        """Forget a listener; the last one out closes the connection."""
        with self._shared_lock:
            with self._lock:
                self._listeners.discard(listener)
                last = not self._listeners
            if last and self._shared.get(self.key) is self:
                del self._shared[self.key]
        if last:
            with contextlib.suppress(OSError):
                self._stop_w.send(b"x")
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=10)

    # -- the thread ----------------------------------------------------------------------------

    def _listening_connection(self) -> Connection:
        conn = self._connect()
        try:
            conn.execute(sql.SQL(_Q["listen"]).format(channel=sql.Identifier(self.channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        backoff = 0.0  # the first attempt after a break is at once
        try:
            while True:
                if self._conn is None:
                    if self._stopped(timeout=backoff):
                        return
                    try:
                        self._conn = self._listening_connection()
                    except psycopg.Error as exc:
                        backoff = min(max(backoff * 2, 0.1), self._max_backoff)
                        log.warning("cannot LISTEN for wake-ups (retrying in %.1fs): %s",
                                    backoff, exc)
                        continue
                    self.reconnects += 1
                    backoff = 0.0
                    log.info("LISTENing again on %s", self.channel)
                if not self._wait_and_dispatch(self._conn):
                    return
        finally:
            self._discard_connection()
            self._stop_r.close()
            self._stop_w.close()

    def _wait_and_dispatch(self, conn: Connection) -> bool:
        """Wait for notifications and hand them out; False once stopped."""
        stop = self._stop_r.fileno()
        try:
            ready = readable([conn.pgconn.socket, stop], self._idle_check)
            if stop in ready:
                return False
            if not ready:
                # Quiet for a while: make sure the connection is still there.
                conn.execute(_Q["ping"])
            received = [
                _event(n.payload) for n in conn.notifies(timeout=0) if n.channel == self.channel
            ]
        except (psycopg.Error, OSError, ValueError) as exc:
            log.warning("lost the LISTEN connection on %s: %s", self.channel, exc)
            self._discard_connection()
            return True
        except Exception:  # never let the thread die: listeners would wait in vain
            log.exception("unexpected error on the LISTEN connection on %s", self.channel)
            self._discard_connection()
            return True
        if received:
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                listener._deliver(received)
        return True

    def _stopped(self, timeout: float) -> bool:
        return bool(readable([self._stop_r.fileno()], timeout))

    def _discard_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
