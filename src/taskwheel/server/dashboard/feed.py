"""The dashboard's live feed: one subscriber per server process, fanned out to every
open tab.

A tab watches *topics* of one namespace (``overview``, ``job:42``, ``run:7``, ...). The
feed keeps one set of watchers per (namespace, topic) and, in one background task,
renders each watched topic once per refresh (a server-rendered HTML fragment, or a small
JSON document) and sends it to each watcher that has not seen that version yet. The
database is read once per topic per refresh however many tabs watch it: ten tabs on the
overview cost what one does.

When does it refresh? The store's notifications (`Store.notifier`: a job became ready, a
cancel, schedules changed, delayed jobs added, jobs ended) wake it at once. Not every
change is announced (a lease that lapses, a deadline that passes), so while anything is
watched the feed also refreshes every ``interval`` seconds; and at most once per
``interval`` whatever the notifications, so a burst of enqueues costs one refresh, not
one per job. With no watcher it does nothing and holds no listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from taskwheel.notify import EVERY, Listener, Notifier

log = logging.getLogger("taskwheel.server")

# The watched (namespace, topic) pairs -> what each shows now (a pair that cannot be
# rendered, a job purged say, is left out). Called once per refresh with every pair, so
# it can share reads between topics of one namespace.
Render = Callable[[list[tuple[str, str]]], dict[tuple[str, str], str]]


@dataclass(eq=False)
class _Watcher:
    namespace: str
    topics: tuple[str, ...]
    inbox: asyncio.Queue[tuple[str, str] | None] = field(default_factory=asyncio.Queue)
    seen: dict[str, int] = field(default_factory=dict)  # topic -> version sent


class LiveFeed:
    """Topics watched by open tabs, refreshed from the store and fanned out.

    Example:
        >>> async with feed.watching("default", ["overview", "job:7"]) as updates:
        ...     topic, body = await updates.get()
    """

    def __init__(self, notifier: Notifier, render: Render, *, interval: float = 1.0,
                 min_gap: float | None = None) -> None:
        self._notifier = notifier
        self._render = render
        self.interval = interval
        # By default at most one refresh per interval: a notification makes the next one
        # come at once if the last is that old, else when it is.
        self.min_gap = interval if min_gap is None else min(min_gap, interval)
        self._watchers: set[_Watcher] = set()
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Task[None]] = set()  # stopped, closing their listener
        self.refreshes = 0  # how many refreshes ran (each reads every watched topic once)
        # Each (namespace, topic)'s last body and its version, which moves when the body
        # changes: a watcher is sent a topic when its version moved since it last was,
        # one comparison of the body per topic and refresh, not a digest per watcher.
        self._versions: dict[tuple[str, str], tuple[str, int]] = {}
        self._version = 0

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
                self._stop()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _stop(self) -> None:
        """Stop refreshing. Nothing to await: the task closes its listener itself, so a
        stream cancelled by its client's disconnect (where every await is cancelled
        again) still lets it go."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def aclose(self) -> None:
        """Stop (at shutdown): every open stream is told to end."""
        for watcher in self._watchers:
            watcher.inbox.put_nowait(None)
        self._watchers.clear()
        self._stop()
        # Each stopped task closes its listener before the event loop goes away.
        for task in list(self._ending):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        listener = await self._listen(loop)
        try:
            if listener is not None:
                loop.add_reader(listener.fileno(), self._on_readable, listener)
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
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    loop.remove_reader(listener.fileno())
                # PostgreSQL's last listener joins its connection's thread: off the loop.
                await asyncio.to_thread(listener.close)

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> Listener | None:
        """The store's listener (None for a store that notifies nobody), opened on a
        thread; closed, not lost, if this task is cancelled meanwhile."""
        # Everything: the pages refresh when jobs end as when they are added.
        opening = loop.run_in_executor(None, functools.partial(self._notifier.listen,
                                                               hears=EVERY))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise

    async def _refresh(self) -> None:
        wanted = sorted({(w.namespace, topic) for w in self._watchers for topic in w.topics})
        if not wanted:
            return
        bodies = await asyncio.to_thread(self._render, wanted)
        self.refreshes += 1
        versions = self._versions
        for pair, body in bodies.items():
            kept = versions.get(pair)
            if kept is None or kept[0] != body:
                self._version += 1  # never reused: a topic dropped and back is new
                versions[pair] = (body, self._version)
        for pair in [pair for pair in versions if pair not in bodies]:
            del versions[pair]  # no longer watched (or no longer renderable)
        for watcher in list(self._watchers):
            for topic in watcher.topics:
                current = versions.get((watcher.namespace, topic))
                if current is None:
                    continue
                body, version = current
                if watcher.seen.get(topic) != version:
                    watcher.seen[topic] = version
                    watcher.inbox.put_nowait((topic, body))

    # -- notifications ------------------------------------------------------------------

    def _on_readable(self, listener: Listener) -> None:
        try:
            events = listener.read()
        except Exception:
            log.exception("reading notifications failed")
            return
        watched = {w.namespace for w in self._watchers}
        if any(namespace in watched for namespace, _event in events):
            self._poke.set()


def _close_opened(opening: asyncio.Future[Listener | None]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    listener = opening.result()
    if listener is not None:
        listener.close()
