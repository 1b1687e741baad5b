"""Wake-ups: tell idle workers that there is work, without them polling the database.

A notifier is separate from the store's SQL (as in Oban): each store package has its
own (``stores/sqlite/notifier.py``: datagrams over Unix sockets between processes of
one host; ``stores/postgres/notifier.py``: LISTEN/NOTIFY). Notifications are hints: a lost
one costs at most one poll interval, never a job.
"""

from __future__ import annotations

from typing import Protocol

# What an event is about (`kind_of`), and so who hears it: a listener says at `listen`
# which kinds it hears and is never woken for the others. Every kind has listeners that
# would otherwise wake by the hundred a second for nothing: a scheduler for the jobs it
# fires itself, a worker for each batch of outcomes any worker reports.
JOBS = "jobs"  # work is ready in the namespace
CANCEL = "cancel"  # a running job was asked to stop: its worker beats now
SCHEDULES = "schedules"  # schedules were declared, changed, paused or removed
# "due:<epoch seconds>": delayed jobs were added, the earliest due then (by the store's
# clock). A sleeping worker moves its alarm to it; a scheduler's promoter looks now.
DUE = "due"
_DUE = "due:"
# Jobs of the namespace ended (succeeded, dead, ...): what ``taskwheel jobs tail`` and
# the dashboard follow.
FINISHED = "finished"

CLAIMING = frozenset({JOBS, CANCEL, DUE})  # a worker
SCHEDULING = frozenset({SCHEDULES, DUE})  # a scheduler (its promoter hears DUE)
EVERY = frozenset({JOBS, CANCEL, SCHEDULES, DUE, FINISHED})  # the dashboard
# What `listen` hears unless told: every kind but FINISHED.
UNFINISHED = EVERY - {FINISHED}


def kind_of(event: str) -> str:
    """What ``event`` is about: one of the kinds above (an unknown event is its own)."""
    return DUE if event.startswith(_DUE) else event


def checked_hears(hears: frozenset[str]) -> frozenset[str]:
    """``hears`` if every kind in it is known; else ValueError naming the first that
    is not."""
    if unknown := sorted(hears - EVERY):
        raise ValueError(f"hears: no such kind of notification {unknown[0]!r}; one of "
                         f"{', '.join(sorted(EVERY))}")
    return hears


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
        """Wake the listeners that hear ``event``'s kind: `JOBS`, `CANCEL`,
        `SCHEDULES`, a `due_event` (delayed jobs added) or `FINISHED` (jobs ended)."""
        ...

    def listen(self, *, hears: frozenset[str] = UNFINISHED) -> Listener | None:
        """Start receiving the notifications of the kinds in ``hears`` (the others do not
        even wake it); None when this notifier cannot deliver any."""
        ...


class NullNotifier:
    """For stores no other process can see (in-memory databases)."""

    def notify(self, namespace: str, event: str) -> None:
        return None

    def listen(self, *, hears: frozenset[str] = UNFINISHED) -> Listener | None:
        return None
