"""Waiting in tests for a condition, never for the passage of time.

Every test folder waits with `wait_for`: it polls a condition until it holds and fails
with a message naming what was awaited, how long the test waited and what the condition
last returned. A store's wake-ups are awaited on their descriptor instead, with
`notifications_until`. Importable as ``waiting`` from any test module, like
``pg_server``: pytest puts ``tests/`` (the first directory up without an
``__init__.py``) on ``sys.path``.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.01


class WaitTimedOut(AssertionError):
    """A condition a test waited for did not hold in time."""


def wait_for(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """Poll ``condition()`` until it returns something truthy, and return that.

    The condition is called at least once, and once more at the deadline, so a slow
    machine that oversleeps an interval still gets a last look. Exceptions the
    condition raises are not caught: they fail the test at once.

    Args:
        condition: called without arguments every ``interval`` seconds.
        what: what is awaited, in words that finish "timed out waiting for ...".
        timeout: seconds before the test fails.
        interval: seconds between two calls.

    Raises:
        WaitTimedOut: (an `AssertionError`) when ``timeout`` passed first.

    Example:
        >>> wait_for(lambda: job.refresh().status is JobStatus.DEAD,  # doctest: +SKIP
        ...          what="the job to die", timeout=5)
    """
    started = time.monotonic()
    limit = started + timeout
    while True:
        value = condition()
        if value:
            return value
        now = time.monotonic()
        if now >= limit:
            raise WaitTimedOut(
                f"timed out after {now - started:.1f}s (limit {timeout}s) waiting for {what};"
                f" the condition last returned {value!r}"
            )
        time.sleep(min(interval, limit - now))


class Listener(Protocol):
    """What ``store.notifier.listen()`` returns, as far as the tests use it (the
    notifiers' own modules are theirs to move)."""

    def fileno(self) -> int: ...

    def read(self) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


def notifications_until(
    listener: Listener, marker: tuple[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> list[tuple[str, str]]:
    """What ``listener`` receives before ``marker``, a notification the test sent last.

    Notifications from one sender arrive in the order they were sent, so once the
    marker is in, everything sent before it is in too: this shows that something did
    *not* arrive without waiting for a while. Waits by ``select`` on the listener's
    descriptor.

    Example:
        >>> store.notifier.notify("marker", "jobs")  # doctest: +SKIP
        >>> notifications_until(listener, ("marker", "jobs"))  # doctest: +SKIP
        [('default', 'jobs')]
    """
    events: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while marker not in events:
        remaining = max(0.0, deadline - time.monotonic())
        if not select.select([listener.fileno()], [], [], remaining)[0]:
            raise WaitTimedOut(
                f"timed out after {timeout}s waiting for the notification {marker}; "
                f"received {events}"
            )
        events.extend(listener.read())
    return events[: events.index(marker)]
