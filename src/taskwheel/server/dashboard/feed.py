"""The dashboard's live feed: one subscriber per server process, fanned out to every
open tab.

A tab watches *topics* of one namespace (``overview``, ``job:42``, ``run:7``, ...). The
feed keeps one set of watchers per (namespace, topic) and, in one background task,
renders each watched topic once per refresh (a server-rendered HTML fragment, or a small
JSON document) and sends it to each watcher that has not seen that version yet. The
database is read once per topic per refresh however many tabs watch it: ten tabs on the
overview cost what one does.

When does it refresh? The store's notifications (`Store.notifier`: a job became ready, a
cancel, schedules changed, delayed jobs added) wake it at once. A job that *ends* sends
no notification (workers report outcomes in batches and no listener needs them), so
while anything is watched the feed also refreshes every ``interval`` seconds; and at
most once per ``interval`` whatever the notifications, so a burst of enqueues costs one
refresh, not one per job. With no watcher it does nothing and holds no listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from taskwheel.notify import Listener, Notifier

log = logging.getLogger("taskwheel.server")

# (namespace, topic) -> what that topic shows now.
Render = Callable[[str, str], str]


@dataclass(eq=False)
class _Watcher:
    namespace: str
    topics: tuple[str, ...]
    inbox: asyncio.Queue[tuple[str, str] | None] = field(default_factory=asyncio.Queue)
    seen: dict[str, str] = field(default_factory=dict)  # topic -> digest sent


class LiveFeed:
    """Topics watched by open tabs, refreshed from the store and fanned out.

    Example:
        >>> async with feed.watching("default", ["overview", "job:7"]) as updates:
        ...     topic, body = await updates.get()
    """

    def __init__(self, notifier: Notifier, render: Render, *, interval: float = 1.0,
                 min_gap: float = 0.25) -> None:
        self._notifier = notifier
        self._render = render
        self.interval = interval
        self.min_gap = min(min_gap, interval)
        self._watchers: set[_Watcher] = set()
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.refreshes = 0  # how many refreshes ran (each reads every watched topic once)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    @contextlib.asynccontextmanager
    async def watching(
        self, namespace: str, topics: Sequence[str]
    ) -> AsyncIterator[asyncio.Queue[tuple[str, str] | None]]:
        """A queue of (topic, body) for ``topics`` of ``namespace`` while the block runs:
        each topic's current version first, then each change; None when the feed
        closes."""
        watcher = _Watcher(namespace, tuple(dict.fromkeys(topics)))
        self._watchers.add(watcher)
        self._start()
        self._poke.set()  # the newcomer gets the current versions now
        try:
            yield watcher.inbox
        finally:
            self._watchers.discard(watcher)
            if not self._watchers:
                await self._stop()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_listener()

    async def aclose(self) -> None:
        """Stop (at shutdown): every open stream is told to end."""
        for watcher in self._watchers:
            watcher.inbox.put_nowait(None)
        self._watchers.clear()
        await self._stop()

    async def _run(self) -> None:
        await self._open_listener()
        loop = asyncio.get_running_loop()
        while self._watchers:
            started = loop.time()
            self._poke.clear()
            try:
                await self._refresh()
            except Exception:  # the store is away: try again at the next refresh
                log.exception("the dashboard's live feed could not refresh")
            # The next refresh: when poked or after an interval, never within min_gap.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.interval)
            rest = self.min_gap - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _refresh(self) -> None:
        wanted = sorted({(w.namespace, topic) for w in self._watchers for topic in w.topics})
        if not wanted:
            return
        bodies = await asyncio.to_thread(self._render_all, wanted)
        self.refreshes += 1
        for watcher in list(self._watchers):
            for topic in watcher.topics:
                body = bodies.get((watcher.namespace, topic))
                if body is None:
                    continue
                digest = hashlib.sha1(body.encode()).hexdigest()
                if watcher.seen.get(topic) != digest:
                    watcher.seen[topic] = digest
                    watcher.inbox.put_nowait((topic, body))

    def _render_all(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        bodies: dict[tuple[str, str], str] = {}
        for namespace, topic in wanted:
            try:
                bodies[(namespace, topic)] = self._render(namespace, topic)
            except Exception:  # one topic gone wrong (a job purged) spoils no other
                log.debug("topic %s of %s could not be rendered", topic, namespace,
                          exc_info=True)
        return bodies

    # -- notifications ------------------------------------------------------------------

    async def _open_listener(self) -> None:
        if self._listener is not None:
            return
        listener = await asyncio.to_thread(self._notifier.listen)
        if listener is None:
            return  # an in-memory store: the interval alone
        loop = asyncio.get_running_loop()
        loop.add_reader(listener.fileno(), self._on_readable)
        self._listener, self._loop = listener, loop

    def _on_readable(self) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            events = listener.read()
        except Exception:
            log.exception("reading notifications failed")
            return
        watched = {w.namespace for w in self._watchers}
        if any(namespace in watched for namespace, _event in events):
            self._poke.set()

    async def _close_listener(self) -> None:
        listener, loop = self._listener, self._loop
        self._listener = self._loop = None
        if listener is None or loop is None:
            return
        with contextlib.suppress(Exception):
            loop.remove_reader(listener.fileno())
        await asyncio.to_thread(listener.close)
