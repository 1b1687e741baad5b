"""Wake-ups: tell idle workers that there is work, without them polling the database.

A notifier is separate from the store's SQL (as in Oban): each store package has its
own (``stores/sqlite/notifier.py``: datagrams over Unix sockets between processes of
one host; ``stores/postgres/notifier.py``: LISTEN/NOTIFY). Notifications are hints: a lost
one costs at most one poll interval, never a job.
"""

from __future__ import annotations

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
