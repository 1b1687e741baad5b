"""Wake-ups after the caller commits, for transactional enqueue on SQLite.

SQLite tells nobody when a transaction commits: Python's ``sqlite3`` has no commit
hook, and the caller may commit by ``commit()``, by ``with conn:``, by executing
``COMMIT`` or from another thread. So the operation leaves, with the `CommitWatcher`,
what it would wake and a witness: a query that finds a row only once the caller's
transaction has committed what the operation wrote (a job, a run, a schedule as
written). A thread watches:

- the witness found: the caller committed -- the wake-ups go out;
- the write lock free and the witness still missing: the caller's transaction, which
  held that lock from the operation's first write until it ended, ended without it
  (rolled back, to a savepoint or whole) -- nothing goes out.

Both are looked at every millisecond at first, then less often (up to every 20 ms)
while the caller's transaction stays open; the thread leaves when nothing is pending.
Taking the lock is ``BEGIN IMMEDIATE`` with no busy wait, given back at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taskwheel.stores.executor import Executor
from taskwheel.stores.sql_files import load_queries

_Q = load_queries("taskwheel.stores.sqlite", "connection.sql")
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
