"""Connections to a SQLite file: one per thread, WAL, writes serialised across processes.

Every write is one ``BEGIN IMMEDIATE`` transaction. Writers of all processes queue on
an advisory file lock first: SQLite's own busy handler sleeps in growing steps of
milliseconds while it waits, which would add that much latency to every contended
claim, whereas a blocked ``flock`` wakes the moment the holder lets go. A write
transaction begins when its first statement runs, so an operation that turns out to
have nothing to write takes no lock.

An in-memory database is one connection shared by every thread (each connection would
otherwise see a database of its own), used under a lock.

Driver errors become `StoreError` (or `StoreUnavailable` when the database is locked
or busy beyond the timeout, or cannot be opened), so nothing above the store catches
`sqlite3.Error`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from taskwheel.errors import StoreError, StoreUnavailable
from taskwheel.jobs import Job
from taskwheel.stores import rows
from taskwheel.stores.rows import Columns
from taskwheel.stores.sql_files import load_blocks, load_queries, split_statements

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

STORE = "SQLite"
_PRAGMAS = load_queries("taskwheel.stores.sqlite", "connection.sql")
# What `read_settings` reports, one statement of connection.sql's settings block each.
SETTINGS = ("journal_mode", "synchronous", "temp_store", "busy_timeout_ms",
            "wal_autocheckpoint_pages", "page_size")
_SETTINGS = split_statements(_PRAGMAS["settings"], source="connection.sql: settings")
# Codes of errors that pass: another process holds the database longer than the busy
# timeout, or the file cannot be opened or read right now.
_TRANSIENT = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
              sqlite3.SQLITE_IOERR}


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Driver errors of ``operation`` as the store's own."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translation(operation, exc) from exc


def translation(operation: str, exc: sqlite3.Error) -> StoreError:
    """The store's own error for the driver's ``exc`` in ``operation``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    kind = StoreUnavailable if primary in _TRANSIENT else StoreError
    return kind(operation, str(exc) or type(exc).__name__, STORE)


class Database:
    """The connections of one store to one file (or to ``:memory:``)."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self.path = path
        self.memory = path == ":memory:" or path.startswith("file::memory:")
        self._busy_ms = int(busy_timeout * 1000)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._thread_lock = threading.RLock()
        # Opened at the first write: opening a store (a mistyped path, say) creates
        # nothing.
        self._lock_fd: int | None = None
        self._checkpointer: Checkpointer | None = None

    def _connect(self) -> sqlite3.Connection:
        read_only = self.read_only()
        if read_only is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=self._busy_ms / 1000,
            )
        else:
            conn = sqlite3.connect(
                f"file:{urllib.parse.quote(self.path)}?{read_only}", uri=True,
                isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000,
            )
        conn.row_factory = sqlite3.Row
        conn.execute(_PRAGMAS["busy_timeout"].format(milliseconds=self._busy_ms))
        if not self.memory and read_only is None:
            conn.execute(_PRAGMAS["journal_mode"])  # a write: not on a read-only file
        conn.execute(_PRAGMAS["synchronous"])
        conn.execute(_PRAGMAS["temp_store"])
        if not self.memory and read_only is None:
            conn.execute(_PRAGMAS["wal_autocheckpoint"])
        with self._all_lock:
            self._all.append(conn)
        return conn

    def read_only(self) -> str | None:
        """None when the database may be written; else the URI parameters that read it:
        ``mode=ro`` for a file this process may not write, ``immutable=1`` besides
        when its directory is read-only too (SQLite could not create the shared-memory
        file a WAL reader needs, and nobody here can change the file anyway)."""
        if self.memory or not os.path.exists(self.path):
            return None
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.access(directory, os.W_OK):
            shm = f"{self.path}-shm"
            return "mode=ro" if os.path.exists(shm) and os.access(shm, os.W_OK) else (
                "mode=ro&immutable=1")
        return None if os.access(self.path, os.W_OK) else "mode=ro"

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (in autocommit mode: one statement, one
        transaction)."""
        if self.memory:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def reading(self, snapshot: bool) -> Iterator[sqlite3.Connection]:
        """A connection for reads; with ``snapshot``, inside one read transaction so
        that they agree with each other."""
        with self._thread_lock if self.memory else contextlib.nullcontext():
            conn = self.connection()
            if not snapshot:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def write(self) -> WriteTransaction:
        return WriteTransaction(self)

    def lock(self, *, wait: bool = True) -> bool:
        """Take the write lock of every thread and process, without a connection
        (`release` gives it back): True. Without ``wait``, only if no other thread or
        process holds it, else False and nothing taken."""
        if not self._thread_lock.acquire(blocking=wait):
            return False
        try:
            lock = self._write_lock()
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # without wait: another process holds it
            self._thread_lock.release()
            return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        """Give back the write lock `lock` took."""
        try:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _check_database_file(self) -> None:
        """`StoreError` unless the path is a SQLite database, an empty file or nothing yet:
        SQLite reads the header, through a connection. Never through a file of our own:
        closing any descriptor of the database file drops every POSIX lock this process
        holds on it, its SQLite connections' included, and another process may then
        checkpoint and reset the WAL under them (a worker's reads went malformed)."""
        if os.path.isdir(self.path):
            raise StoreError("open", f"{self.path} is a directory, not a database file", STORE)
        try:
            self.connection().execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            if _not_a_database(exc):
                raise StoreError("open", f"{self.path} is not a SQLite database",
                                 STORE) from None
            raise

    def _write_lock(self) -> int | None:
        """The descriptor of ``<db>-writelock`` (None in memory, or off POSIX). Made
        only beside what is (or will be) a database file: a path naming a directory or
        another kind of file is refused with nothing created; a directory or file this
        process may not write is refused too (`StoreError`: a configuration error,
        not an outage to wait out)."""
        if self._lock_fd is None and not self.memory and fcntl is not None:
            self._check_database_file()
            lock = f"{self.path}-writelock"
            try:
                self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError("write", f"cannot write beside {self.path} (its write lock "
                                 f"{lock}: {exc.strerror}); the database is read-only here",
                                 STORE) from None
        return self._lock_fd

    def exists(self) -> bool:
        """Whether there is a database to read (a file not yet created has no schema)."""
        return self.memory or self._shared is not None or os.path.exists(self.path)

    def committed(self) -> None:
        """A write transaction of this process committed: the WAL grew, and this
        process's checkpointer (started at its first commit) copies it back soon."""
        checkpointer = self._checkpointer
        if checkpointer is None or checkpointer.pid != _PID[0]:  # none yet, or forked
            if self.memory:
                return
            checkpointer = self._checkpointer = Checkpointer(self)
        checkpointer.committed()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
        self._shared = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _not_a_database(exc: sqlite3.DatabaseError) -> bool:
    return "not a database" in str(exc)


class WriteTransaction:
    """One write transaction, begun (locks taken, ``BEGIN IMMEDIATE``) when its first
    statement asks for the connection, committed or rolled back by `finish`."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn: sqlite3.Connection | None = None

    @property
    def begun(self) -> bool:
        return self._conn is not None

    def connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            self._database.lock()
            conn = self._begin()
        return conn

    def begin_if_free(self) -> bool:
        """Begin now if no other writer of the store holds the write lock (True), else
        nothing (False). Only a writer outside the store's lock (an application's own
        transaction on its connection, see `SQLiteCaller`) makes it wait, as long as
        SQLite's busy timeout at most."""
        if self._conn is None:
            if not self._database.lock(wait=False):
                return False
            self._begin()
        return True

    def _begin(self) -> sqlite3.Connection:
        """With the write lock held: this thread's connection, in its transaction."""
        try:
            conn = self._database.connection()
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._database.release()
            raise
        self._conn = conn
        return conn

    def finish(self, commit: bool) -> None:
        """Commit (or roll back) what was written, and let the next writer in."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if commit:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            else:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        finally:
            self._database.release()
        if commit:
            self._database.committed()


# This process's id, kept current across forks: every commit asks whether its process
# started the checkpointer, and a system call each time would be a cost of every write.
_PID = [os.getpid()]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


class Checkpointer:
    """Copies a process's writes from the WAL back into the database file, from a
    thread of its own: within `PERIOD` seconds of `FEW` commits, at once after
    `COMMITS`, and within `LINGER` seconds of the last copy after any.

    SQLite would do it inside the COMMIT that grows the WAL past 1,000 pages, with the
    write lock of every process still held (our flock, see `Database.lock`): in a
    drain of two worker processes that made a commit in a hundred take 5-15 ms, during
    which every other writer waited (20,000 jobs of 50 ms: 25 commits over 5 ms, their
    p99 5.1 ms; with this thread 0-2, p99 2.0-2.8 ms, and its copies under the lock
    1.3-1.6 ms each at the median). A PASSIVE checkpoint waits for nobody and nobody
    waits for it, so the bulk is copied without the lock. But a WAL starts again from
    its beginning only once all of it is copied, and writers append to it meanwhile: it
    grew to the bound (40 MB in a drain of 20,000 jobs, against 4 MB). So when it holds
    `RESTART_AT` frames or more, the frames appended during that copy are copied with the
    write lock held, which no writer appends past: a short copy, after which the next
    writer starts the WAL again. Two processes' checkpointers that meet find the work
    done or busy. `wal_autocheckpoint` stays as the bound, at ten times SQLite's
    default, should this thread fall behind. A daemon thread: a process that exits
    leaves what it did not copy to the next checkpoint, as SQLite itself does."""

    PERIOD = 0.25
    # Or after this many commits, sooner: small commits rewrite their pages as new frames
    # each (single enqueues, about 7 a commit), and at thousands a second would fill
    # the WAL to the bound within a period.
    COMMITS = 100
    # A turn with fewer commits than this waits, up to `LINGER` seconds since the last
    # checkpoint: a process that commits now and then syncs the disk no more often
    # than SQLite's own checkpoints would.
    FEW = 10
    LINGER = 5.0
    RESTART_AT = 1000  # frames: SQLite's own size for a checkpoint

    def __init__(self, database: Database) -> None:
        self.pid = _PID[0]
        self._written = 0  # commits since the last checkpoint began
        self._database = database
        self._due = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="taskwheel-checkpoint",
                                        daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A commit of this process: a checkpoint within `PERIOD`, or now after
        `COMMITS` of them."""
        self._written += 1
        if self._written >= self.COMMITS:
            self._due.set()

    def stop(self) -> None:
        self._stopped = True
        self._due.set()
        if self.pid == _PID[0] and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        last = time.monotonic()
        try:
            while True:
                self._due.wait(self.PERIOD)
                self._due.clear()
                if self._stopped:
                    return
                if not self._written or (self._written < self.FEW
                                         and time.monotonic() - last < self.LINGER):
                    continue
                self._written = 0
                last = time.monotonic()
                # Busy, or the file went away: the next commit's turn tries again.
                with contextlib.suppress(sqlite3.Error, OSError, StoreError):
                    if conn is None:  # mode=rw: a file removed meanwhile is not made anew
                        conn = sqlite3.connect(
                            f"file:{urllib.parse.quote(self._database.path)}?mode=rw",
                            uri=True, isolation_level=None, check_same_thread=False)
                    _, frames, _ = conn.execute(_PRAGMAS["checkpoint"]).fetchone()
                    if frames >= self.RESTART_AT:
                        self._database.lock()
                        try:
                            conn.execute(_PRAGMAS["checkpoint"]).fetchone()
                        finally:
                            self._database.release()
        finally:
            if conn is not None:
                conn.close()


def read_settings(conn: sqlite3.Connection) -> dict[str, Any]:
    """The settings of ``conn`` that bear on speed and durability, by `SETTINGS` name."""
    return {name: conn.execute(sql).fetchone()[0]
            for name, sql in zip(SETTINGS, _SETTINGS, strict=True)}


# -- the named blocks of queries.sql, and what runs them ------------------------------------
#
# Where the PostgreSQL store writes several tables in one statement (an INSERT inside a
# WITH), SQLite cannot: its block for the same name holds several statements, which the
# executor runs in turn inside its one write transaction (see the top of queries.sql).

Params = Mapping[str, Any] | Sequence[Any]

Q = load_blocks("taskwheel.stores.sqlite", "queries.sql")


def statement(name: str) -> str:
    """The statement of the block ``name``, which holds one."""
    (only,) = Q[name]
    return only


def records(found: Iterable[sqlite3.Row], build: Callable[[Columns], T]) -> list[T]:
    """The records ``build`` makes of rows. A `sqlite3.Row` finds a column by name by
    comparing the name with each column's in turn, so a record's reads of a wide row
    (34 of a job's 40 columns) cost more than the rest of the record together: each
    row becomes a dict first (its column names read once per result)."""
    keys: list[str] | None = None
    made = []
    for row in found:
        if keys is None:
            keys = row.keys()
        made.append(build(dict(zip(keys, row, strict=True))))
    return made


def job_records(found: Iterable[sqlite3.Row]) -> list[Job]:
    """`records` of job rows."""
    return records(found, rows.job)


def job_record(row: sqlite3.Row) -> Job:
    """`job_records` of one row."""
    return rows.job(dict(zip(row.keys(), row, strict=True)))


@dataclass(frozen=True, slots=True)
class Result:
    """What one statement of a block answered: its rows (all of them, read before the
    next statement runs), the rows it wrote (-1 for a query) and the id it inserted."""

    rows: list[sqlite3.Row]
    count: int
    last_id: int | None


class Statements:
    """Runs the blocks of queries.sql on the connection the executor supplies."""

    def _c(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _execute(self, name: str, params: Params = ()) -> sqlite3.Cursor:
        """The block ``name``, which holds one statement."""
        return self._c().execute(statement(name), params)

    def _run(self, name: str, params: Params) -> list[Result]:
        """Every statement of the block ``name`` in turn, each with ``params``, each read
        to its end before the next one runs."""
        conn = self._c()
        results: list[Result] = []
        for sql in Q[name]:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall()
            results.append(Result(rows, cursor.rowcount, cursor.lastrowid))
        return results
