"""Long polls woken by the store's notifications: one listener per server process,
shared by every claim that waits in it.

A waiting claim holds no database connection: it holds an `asyncio.Event` here. The
listener (`Store.notifier.listen()`: a datagram socket on SQLite, the process's LISTEN
connection on PostgreSQL) is watched by the event loop; a ``jobs`` wake-up of a
namespace sets the events of the claims waiting in it, and each claims again.

The listener is opened by the first claim that waits and kept while claims keep
coming: opening it is a connection and a LISTEN on PostgreSQL, paid once per busy
period rather than once per claim. It is closed once no claim has waited for
``linger`` seconds, and at the server's shutdown (`aclose`), on a thread: PostgreSQL's
last listener joins its connection's thread, which the event loop must not wait for.

A claim registers before it looks (`waiting`, then claim, then wait): a commit between
its empty claim and its wait still wakes it. Notifications are hints; a claim looks
again when its wait ends anyway, and a store whose notifier delivers nothing (an
in-memory database) is polled every ``fallback_poll`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from taskwheel.notify import JOBS, Listener, Notifier

log = logging.getLogger("taskwheel.server")
# Only new work wakes a waiting claim: delayed jobs are claimed when they fall due, after
# the promoter makes them ready (which is a JOBS notification).
_HEARS = frozenset({JOBS})


class WakeUps:
    """Waiters per namespace, woken by ``notifier``.

    Example:
        >>> async with wake_ups.waiting("team-a") as woken:
        ...     woken.clear(); claim(); await asyncio.wait_for(woken.wait(), 5)
    """

    def __init__(self, notifier: Notifier, *, fallback_poll: float = 1.0,
                 linger: float = 30.0) -> None:
        self._notifier = notifier
        self.fallback_poll = fallback_poll
        self.linger = linger
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._count = 0
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def listening(self) -> bool:
        """Whether notifications reach the waiters (else they poll)."""
        return self._listener is not None

    @property
    def waiters(self) -> int:
        """Claims waiting now."""
        return self._count

    @contextlib.asynccontextmanager
    async def waiting(self, namespace: str) -> AsyncIterator[asyncio.Event]:
        """An event set by each ``jobs`` wake-up of ``namespace`` while the block runs."""
        event = asyncio.Event()
        self._count += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._waiters.setdefault(namespace, set()).add(event)
        try:
            await self._open()
            yield event
        finally:
            waiters = self._waiters.get(namespace)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[namespace]
            self._count -= 1
            if self._count == 0 and self._listener is not None and self._idle_timer is None:
                self._idle_timer = asyncio.get_running_loop().call_later(
                    self.linger, self._close_when_idle)

    async def _open(self) -> None:
        if self._listener is not None:
            return
        async with self._opening:
            if self._listener is not None:
                return
            # PostgreSQL's first listener connects and LISTENs: off the event loop.
            listener = await asyncio.to_thread(self._notifier.listen, hears=_HEARS)
            if listener is None:
                return
            loop = asyncio.get_running_loop()
            loop.add_reader(listener.fileno(), self._on_readable)
            self._listener, self._loop = listener, loop

    def _on_readable(self) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            events = listener.read()
        except Exception:  # a hint lost: the waiters look again when their wait ends
            log.exception("reading wake-ups failed")
            return
        for namespace, _ in events:
            for waiter in self._waiters.get(namespace, ()):
                waiter.set()

    def _detach(self) -> Listener | None:
        """Stop watching the listener; it, if there was one (the caller closes it)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        listener, loop = self._listener, self._loop
        if listener is None or loop is None:
            return None
        self._listener = self._loop = None
        with contextlib.suppress(Exception):
            loop.remove_reader(listener.fileno())
        return listener

    def _close_when_idle(self) -> None:
        self._idle_timer = None
        if self._count == 0:
            listener = self._detach()
            if listener is not None:
                asyncio.get_running_loop().run_in_executor(None, listener.close)

    async def aclose(self) -> None:
        """Stop listening (at shutdown), the listener closed when this returns; claims
        still waiting fall back to polling."""
        listener = self._detach()
        if listener is not None:
            await asyncio.to_thread(listener.close)
