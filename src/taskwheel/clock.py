"""Clocks. Every service takes one, so tests move time instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The host's wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; for tests and simulations.

    Example:
        >>> clock = ManualClock(1_700_000_000.0)
        >>> clock.advance(30)
        >>> clock.now()
        1700000030.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds

    def set(self, when: float) -> None:
        with self._lock:
            self._now = when


def to_datetime(seconds: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (None stays None)."""
    # The zone passed by position: by keyword, CPython's call costs twice as much, and a
    # claimed job is made with four of these.
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def to_epoch(moment: datetime) -> float:
    """Aware datetime to epoch seconds; naive datetimes are refused by callers first."""
    return moment.timestamp()
