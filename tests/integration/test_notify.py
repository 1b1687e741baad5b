"""The SQLite store's wake-ups between the processes of one host: a Unix datagram socket
per listener, in a directory derived from the database file's path. What every store's
wake-ups promise is the notifier contract (tests/contract/test_notifier.py); this is how
the SQLite one keeps its directory tidy."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from contract.backends import BACKENDS


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_a_dead_listeners_socket_is_removed_and_the_last_one_out_removes_the_directory(
    backend: str, tmp_path: Path
) -> None:
    store = BACKENDS[backend](tmp_path, None)
    try:
        notifier = store.notifier
        directory = Path(notifier.directory)  # type: ignore[attr-defined]
        live = notifier.listen()
        assert live is not None
        # A socket file left by a process that died: nobody reads it any more.
        orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        orphan_path = str(directory / "orphan.sock")
        orphan.bind(orphan_path)
        orphan.close()
        notifier.notify("default", "jobs")
        assert not os.path.exists(orphan_path)
        assert live.read() == [("default", "jobs")]
        live.close()
        assert not directory.exists()
        # A notifier with no listeners sends to nobody, and a new listener recreates the
        # directory.
        notifier.notify("default", "jobs")
        again = notifier.listen()
        assert again is not None
        again.close()
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_listeners_named_before_kinds_still_hear_what_they_heard(
    backend: str, tmp_path: Path
) -> None:
    """During an upgrade on one host, a process of the version before kinds of
    notification listens on ``<random>.sock`` (everything but FINISHED) or
    ``<random>.watch.sock`` (everything): a new sender still wakes each as it did."""
    store = BACKENDS[backend](tmp_path, None)
    opened: list[socket.socket] = []
    try:
        notifier = store.notifier
        keep = notifier.listen()  # makes the directory
        assert keep is not None
        directory = Path(notifier.directory)  # type: ignore[attr-defined]
        for name in ("older.sock", "older.watch.sock"):
            old = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            old.bind(str(directory / name))
            old.setblocking(False)
            opened.append(old)
        claimer, watcher = opened
        for event in ("jobs", "schedules", "finished"):
            notifier.notify("default", event)
        assert [claimer.recv(512) for _ in range(2)] == [b"default\njobs",
                                                         b"default\nschedules"]
        with pytest.raises(BlockingIOError):
            claimer.recv(512)
        assert [watcher.recv(512) for _ in range(3)] == [
            b"default\njobs", b"default\nschedules", b"default\nfinished"]
        keep.close()
    finally:
        for old in opened:
            old.close()
        store.close()
