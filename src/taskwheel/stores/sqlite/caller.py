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
once the caller has committed (below).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskwheel.errors import InvalidInput
from taskwheel.stores.caller import CallerConnection
from taskwheel.stores.executor import Executor
from taskwheel.stores.sql_files import load_queries
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


# -- wake-ups after the caller commits --------------------------------------------------
#
# SQLite tells nobody when a transaction commits: Python's ``sqlite3`` has no commit
# hook, and the caller may commit by ``commit()``, by ``with conn:``, by executing
# ``COMMIT`` or from another thread. So the operation leaves, with the `CommitWatcher`,
# what it would wake and a witness: a query that finds a row only once the caller's
# transaction has committed what the operation wrote (a job, a run, a schedule as
# written). A thread watches:
#
# - the witness found: the caller committed -- the wake-ups go out;
# - the write lock free and the witness still missing: the caller's transaction, which
#   held that lock from the operation's first write until it ended, ended without it
#   (rolled back, to a savepoint or whole) -- nothing goes out.
#
# Both are looked at every millisecond at first, then less often (up to every 20 ms)
# while the caller's transaction stays open; the thread leaves when nothing is pending.
# Taking the lock is ``BEGIN IMMEDIATE`` with no busy wait, given back at once.

_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.02


@dataclass(frozen=True)
class Witness:
    """A query of connection.sql that finds a row once the write is committed."""

    query: str
    params: dict[str, Any]


class WitnessedExecutor(Executor):
    """An executor on the caller's connection that notes, besides what to wake, how to
    find each row it creates once the caller has committed it."""

    wakes: set[tuple[str, str]]
    witnesses: list[Witness]


@dataclass(eq=False)
class PendingWakes:
    """What one operation in the caller's transaction would wake, and how to tell
    that the caller committed it. Without witnesses (an operation that creates
    nothing: a cancel, a pause), the wake-ups go out when the transaction ends, commit
    or rollback: a wake-up is a hint, and one too many costs a look."""

    witnesses: list[Witness]
    wakes: set[tuple[str, str]]
    seen_at: float = field(default_factory=time.monotonic)


class CommitWatcher:
    """Sends the wake-ups of operations run in callers' transactions once those
    commit (never if they roll back); one thread per store, while anything waits."""

    def __init__(self, path: str, notify: Callable[[str, str], None]) -> None:
        self._path = path
        self._notify = notify
        self._pending: list[PendingWakes] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def after_commit(self, pending: PendingWakes) -> None:
        """Send ``pending.wakes`` once its witnesses are committed."""
        with self._lock:
            if self._closed:
                return
            self._pending.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                 name="taskwheel-commits")
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _watch(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        pause = _FIRST_PAUSE
        try:
            while True:
                with self._lock:
                    pending = list(self._pending)
                    if not pending or self._closed:
                        self._thread = None
                        return
                settled = self._settled(conn, pending)
                with self._lock:
                    self._pending = [p for p in self._pending if p not in settled]
                if settled:
                    pause = _FIRST_PAUSE
                else:
                    time.sleep(pause)
                    pause = min(pause * 2, _LONGEST_PAUSE)
        finally:
            conn.close()

    def _settled(
        self, conn: sqlite3.Connection, pending: list[PendingWakes]
    ) -> list[PendingWakes]:
        """The pending operations whose transaction ended, each woken if committed."""
        ended: list[PendingWakes] = []
        try:
            undecided = []
            for each in pending:
                if each.witnesses and _committed(conn, each):
                    self._send(each)
                    ended.append(each)
                else:
                    undecided.append(each)
            if undecided and _write_lock_free(conn):
                for each in undecided:
                    # Committed between the two looks? Then it is found now.
                    if _committed(conn, each):
                        self._send(each)
                    ended.append(each)
        except sqlite3.Error:
            pass  # the file busy or away for a moment: looked at again at the next pause
        return ended

    def _send(self, pending: PendingWakes) -> None:
        for namespace, event in sorted(pending.wakes):
            with contextlib.suppress(OSError):
                self._notify(namespace, event)


def _committed(conn: sqlite3.Connection, pending: PendingWakes) -> bool:
    return all(conn.execute(_Q[w.query], w.params).fetchone() is not None
               for w in pending.witnesses)


def _write_lock_free(conn: sqlite3.Connection) -> bool:
    """Whether no transaction holds the database's write lock now (taken and given
    back at once)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    conn.execute("ROLLBACK")
    return True
