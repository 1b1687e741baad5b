"""Wake-ups: tell idle workers that there is work, without them polling the database.

A notifier is separate from the store's SQL (as in Oban): each store package has its
own (``stores/sqlite/notifier.py``: datagrams over Unix sockets between processes of
one host; ``stores/postgres/notifier.py``: LISTEN/NOTIFY). Notifications are hints: a lost
one costs at most one poll interval, never a job.
"""

from __future__ import annotations

from typing import Protocol

# "due:<epoch seconds>": delayed jobs were added, the earliest due then (by the store's
# clock). A sleeping worker moves its alarm to it; a scheduler's promoter looks now.
_DUE = "due:"
# Jobs of the namespace ended (succeeded, dead, ...): what ``taskwheel jobs tail`` and
# the dashboard follow. Claimers and schedulers have nothing to do with it, and only
# listeners opened with ``watching=True`` hear it: every worker announces each batch of
# outcomes, so with many workers each of them would otherwise wake for every batch any
# of them finishes.
FINISHED = "finished"


def due_event(when: float) -> str:
    """The event telling listeners that delayed jobs fall due from ``when`` on."""
    return f"{_DUE}{when!r}"


def due_of(event: str) -> float | None:
    """When a ``due`` event says the earliest new delayed job falls due (None for any
    other event, or a ``due`` event without a readable time)."""
    if not event.startswith(_DUE):
        return None
    try:
        return float(event[len(_DUE):])
    except ValueError:
        return None


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
        """Wake listeners: ``event`` is ``"jobs"`` (work is ready), ``"cancel"``,
        ``"schedules"`` (schedules changed), a `due_event` (delayed jobs added) or
        `FINISHED` (jobs ended)."""
        ...

    def listen(self, *, watching: bool = False) -> Listener | None:
        """Start receiving notifications; None when this notifier cannot deliver any.
        ``watching``: hear `FINISHED` too (a watcher: ``jobs tail``, the dashboard)."""
        ...


class NullNotifier:
    """For stores no other process can see (in-memory databases)."""

    def notify(self, namespace: str, event: str) -> None:
        return None

    def listen(self, *, watching: bool = False) -> Listener | None:
        return None
