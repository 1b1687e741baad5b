"""Wake-ups of the SQLite store: datagrams over Unix sockets between the processes of
one host, in a directory derived from the database file's path (no network: every
process that can open the file can reach the directory). Notifications are hints: a
lost one costs at most one poll interval, never a job.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path

from taskwheel.notify import EVERY, UNFINISHED, Listener, checked_hears, kind_of

# A listener's socket is named ``<random>.<letters>.sock``, a letter per kind it hears,
# so that a sender sends each event only to the sockets that hear its kind.
_LETTERS = {"jobs": "j", "cancel": "c", "schedules": "s", "due": "d", "finished": "f"}
_KINDS = {letter: kind for kind, letter in _LETTERS.items()}


class LocalNotifier:
    """Unix datagram sockets in a directory derived from the database file's path.

    Each listening process binds one socket there; `notify` sends one datagram to
    each. A socket nobody reads any more (its process died) refuses the datagram and
    is removed. The directory listing is cached until the directory changes.

    A socket queues only a few datagrams (``net.unix.max_dgram_qlen``, 10 on Linux).
    When a listener's queue is full, the notification is appended to the listener's
    ``.pending`` file instead (under a lock), and an empty datagram is sent after it:
    either it gets in (the listener has drained its queue, and the datagram wakes it to
    read the file) or the queue is still full (the listener has wake-ups pending, and
    reads the file when it drains them). A burst therefore reaches a listener whole,
    however slowly it reads.

    Each event goes only to the sockets of the listeners that hear its kind (named
    ``<random>.<letters>.sock``, a letter per kind).
    """

    def __init__(self, database_path: str) -> None:
        digest = hashlib.sha1(os.path.realpath(database_path).encode()).hexdigest()[:16]
        uid = os.getuid() if hasattr(os, "getuid") else 0
        self.directory = Path(tempfile.gettempdir()) / f"taskwheel-{uid}-{digest}"
        self._directory = str(self.directory)  # stat at every notify: no path object
        self._sender: socket.socket | None = None
        self._peers: dict[str, list[str]] = {}  # kind -> the sockets that hear it
        self._seen_mtime = -1
        self._lock = threading.Lock()
        # Per listener whose queue was full: what this sender put in its pending file.
        self._kept: dict[str, set[bytes]] = {}

    def notify(self, namespace: str, event: str) -> None:
        if not hasattr(socket, "AF_UNIX"):
            return
        payload = f"{namespace}\n{event}".encode()
        for path in self._current_peers(kind_of(event)):
            try:
                self._socket().sendto(payload, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    os.unlink(_pending_path(path))
            except BlockingIOError:
                # Kept once per (namespace, event) until a datagram gets through again:
                # the listener reads its file when it drains its queue.
                kept = self._kept.setdefault(path, set())
                if payload not in kept:
                    kept.add(payload)
                    self._overflow(path, payload)
            except OSError:
                pass  # a listener going away as we send: it needs no wake-up
            else:
                if self._kept:
                    self._kept.pop(path, None)

    def _overflow(self, path: str, payload: str | bytes) -> None:
        """Keep a notification the listener's full queue refused, and make sure the
        listener looks for it."""
        data = payload if isinstance(payload, bytes) else payload.encode()
        try:
            with open(_pending_path(path), "ab") as pending:
                fcntl.flock(pending, fcntl.LOCK_EX)
                pending.write(data + _SEPARATOR)
            self._socket().sendto(b"", path)
        except OSError:
            pass  # still full (it will drain and read the file), or gone

    def close(self) -> None:
        """Close the sending socket (listeners close themselves)."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def listen(self, *, hears: frozenset[str] = UNFINISHED) -> Listener | None:
        checked_hears(hears)
        if not hasattr(socket, "AF_UNIX"):
            return None
        letters = "".join(sorted(_LETTERS[kind] for kind in hears))
        name = f"{uuid.uuid4().hex[:16]}.{letters}.sock"
        path = str(self.directory / name)
        for _ in range(3):
            # Not exist_ok: pathlib then checks that the directory is there, which fails
            # when the last listener removes it meanwhile. The bind finds out instead.
            with contextlib.suppress(FileExistsError):
                self.directory.mkdir(mode=0o700, parents=True)
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

    def _current_peers(self, kind: str) -> list[str]:
        """The listening sockets that hear ``kind``."""
        try:
            mtime = os.stat(self._directory).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime != self._seen_mtime:
            with self._lock:
                peers: dict[str, list[str]] = {}
                for entry in os.scandir(self._directory):
                    if entry.name.endswith(".sock"):
                        for heard in _hears(entry.name):
                            peers.setdefault(heard, []).append(entry.path)
                self._peers = peers
                self._seen_mtime = mtime
        return self._peers.get(kind, [])


_SEPARATOR = b"\0"


def _hears(name: str) -> frozenset[str]:
    """What the listener of the socket ``name`` hears, read off the name. A name of a
    version before kinds: ``<random>.sock`` heard all but FINISHED, and
    ``<random>.watch.sock`` everything."""
    _, dot, letters = name.removesuffix(".sock").rpartition(".")
    if not dot:
        return UNFINISHED
    if letters == "watch":
        return EVERY
    return frozenset(_KINDS[letter] for letter in letters if letter in _KINDS)


def _pending_path(socket_path: str) -> str:
    return socket_path.removesuffix(".sock") + ".pending"


def _event(data: bytes) -> tuple[str, str]:
    namespace, _, event = data.decode(errors="replace").partition("\n")
    return namespace, event


class _SocketListener:
    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(path)
        except BaseException:
            self._sock.close()  # the directory went away: the caller tries again
            raise
        self._sock.setblocking(False)
        self._closed = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[str, str]]:
        if self._closed:
            return []
        events: list[tuple[str, str]] = []
        while True:
            try:
                data = self._sock.recv(512)
            except (BlockingIOError, InterruptedError):
                break
            if data:  # an empty datagram only says: look at the pending file
                events.append(_event(data))
        return events + self._read_pending()

    def _read_pending(self) -> list[tuple[str, str]]:
        """What senders kept for this listener while its queue was full."""
        # Read at every wake-up, so asked cheaply: usually there is no file, or the
        # empty one a past overflow left (emptied, never removed: a sender may hold
        # it open), and neither is opened and locked. Data written after this look is
        # read at the next wake-up, which the sender's empty datagram or any other
        # notification brings.
        path = _pending_path(self.path)
        try:
            if not os.access(path, os.F_OK) or os.stat(path).st_size == 0:
                return []
            pending = open(path, "r+b")  # noqa: SIM115
        except FileNotFoundError:
            return []
        with pending:
            fcntl.flock(pending, fcntl.LOCK_EX)
            kept = pending.read()
            pending.truncate(0)
        return [_event(record) for record in kept.split(_SEPARATOR) if record]

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.unlink(_pending_path(self.path))
        # The last listener out removes the directory (it fails while others remain).
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))
