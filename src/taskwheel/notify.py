"""Wake-ups: tell idle workers that there is work, without them polling the database.

A notifier is separate from the store's SQL (as in Oban): the SQLite store uses
`LocalNotifier`, datagrams over Unix sockets between processes of one host; a
networked store uses its database's own channel. Notifications are hints: a lost
one costs at most one poll interval, never a job.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Protocol


class Listener(Protocol):
    def fileno(self) -> int:
        """A descriptor that becomes readable when notifications arrive."""
        ...

    def read(self) -> list[tuple[str, str]]:
        """Drain pending notifications as (namespace, event) pairs without blocking."""
        ...

    def close(self) -> None: ...


class Notifier(Protocol):
    def notify(self, namespace: str, event: str) -> None:
        """Wake listeners: ``event`` is ``"jobs"`` (work is ready) or ``"cancel"``."""
        ...

    def listen(self) -> Listener | None:
        """Start receiving notifications; None when this notifier cannot deliver any."""
        ...


class NullNotifier:
    """For stores no other process can see (in-memory databases)."""

    def notify(self, namespace: str, event: str) -> None:
        return None

    def listen(self) -> Listener | None:
        return None


class LocalNotifier:
    """Unix datagram sockets in a directory derived from the database file's path.

    Each listening process binds one socket there; `notify` sends one datagram to
    each. A socket nobody reads any more (its process died) refuses the datagram and
    is removed. The directory listing is cached until the directory changes.
    """

    def __init__(self, database_path: str) -> None:
        digest = hashlib.sha1(os.path.realpath(database_path).encode()).hexdigest()[:16]
        uid = os.getuid() if hasattr(os, "getuid") else 0
        self.directory = Path(tempfile.gettempdir()) / f"taskwheel-{uid}-{digest}"
        self._sender: socket.socket | None = None
        self._peers: list[str] = []
        self._seen_mtime = -1
        self._lock = threading.Lock()

    def notify(self, namespace: str, event: str) -> None:
        if not hasattr(socket, "AF_UNIX"):
            return
        payload = f"{namespace}\n{event}".encode()
        for path in self._current_peers():
            try:
                self._socket().sendto(payload, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except OSError:
                # A full receive buffer means the listener has wake-ups pending already.
                pass

    def listen(self) -> Listener | None:
        if not hasattr(socket, "AF_UNIX"):
            return None
        path = str(self.directory / f"{uuid.uuid4().hex[:16]}.sock")
        for _ in range(3):
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                return _SocketListener(path)
            except FileNotFoundError:
                continue  # the last listener removed the directory meanwhile
        return None

    def _socket(self) -> socket.socket:
        if self._sender is None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            self._sender = sender
        return self._sender

    def _current_peers(self) -> list[str]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime != self._seen_mtime:
            with self._lock:
                self._peers = [
                    entry.path for entry in os.scandir(self.directory)
                    if entry.name.endswith(".sock")
                ]
                self._seen_mtime = mtime
        return self._peers


class _SocketListener:
    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        while True:
            try:
                data = self._sock.recv(512)
            except (BlockingIOError, InterruptedError):
                return events
            namespace, _, event = data.decode(errors="replace").partition("\n")
            events.append((namespace, event))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        # The last listener out removes the directory (it fails while others remain).
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))

