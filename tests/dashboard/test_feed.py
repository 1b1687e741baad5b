"""The live feed reads each watched topic once per refresh however many tabs watch it,
refreshes when the store's notifications say something happened, sends a tab only
what changed, and holds no listener once nobody watches."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import Callable

from taskwheel.notify import EVERY, UNFINISHED, Listener
from taskwheel.server.dashboard.feed import LiveFeed

WAIT = 5.0


class FakeListener:
    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.pending: list[tuple[str, str]] = []
        self.closed = False

    def fileno(self) -> int:
        return self.reader.fileno()

    def read(self) -> list[tuple[str, str]]:
        while True:
            try:
                self.reader.recv(4096)
            except BlockingIOError:
                break
        events, self.pending = self.pending, []
        return events

    def close(self) -> None:
        self.closed = True
        self.reader.close()
        self.writer.close()


class FakeNotifier:
    def __init__(self) -> None:
        self.listeners: list[FakeListener] = []

    def notify(self, namespace: str, event: str) -> None:
        for listener in self.listeners:
            if not listener.closed:
                listener.pending.append((namespace, event))
                listener.writer.send(b"x")

    def listen(self, *, hears: frozenset[str] = UNFINISHED) -> Listener | None:
        assert hears == EVERY, "the feed refreshes when jobs are added and when they end"
        listener = FakeListener()
        self.listeners.append(listener)
        return listener


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``condition`` holds (the feed's own tasks)."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"waited for {what}"
        await asyncio.sleep(0.01)


class Topics:
    """What each topic shows, and how often each was read."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}
        self.reads: Counter[tuple[str, str]] = Counter()

    def __call__(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        self.reads.update(wanted)
        return {pair: self.values.get(pair, '"initial"') for pair in wanted}


def test_many_tabs_on_one_topic_cost_one_read_per_refresh_and_each_gets_it() -> None:
    async def scenario() -> None:
        notifier, topics = FakeNotifier(), Topics()
        # An interval far longer than the test: only notifications refresh.
        feed = LiveFeed(notifier, topics, interval=60, min_gap=0.01)
        async with contextlib.AsyncExitStack() as tabs:
            inboxes = [await tabs.enter_async_context(feed.watching("team-a", ["overview"]))
                       for _ in range(5)]
            for inbox in inboxes:
                assert await asyncio.wait_for(inbox.get(), WAIT) == ("overview", '"initial"')
            first_reads = topics.reads[("team-a", "overview")]
            assert first_reads <= 2  # the refresh that served the five tabs (and a race)

            topics.values[("team-a", "overview")] = '"changed"'
            notifier.notify("team-a", "jobs")
            for inbox in inboxes:
                assert await asyncio.wait_for(inbox.get(), WAIT) == ("overview", '"changed"')
            assert topics.reads[("team-a", "overview")] == first_reads + 1
            assert all(inbox.empty() for inbox in inboxes)
        assert feed.watchers == 0
        await until(lambda: all(listener.closed for listener in notifier.listeners),
                    "the feed to close its listener")

    asyncio.run(scenario())


def test_a_notification_of_another_namespace_refreshes_nothing() -> None:
    async def scenario() -> None:
        notifier, topics = FakeNotifier(), Topics()
        feed = LiveFeed(notifier, topics, interval=60)
        async with feed.watching("team-a", ["job:1"]) as inbox:
            await asyncio.wait_for(inbox.get(), WAIT)
            refreshes = feed.refreshes
            notifier.notify("team-b", "jobs")
            await asyncio.sleep(0.2)  # the event loop reads the notification (none sent)
            assert feed.refreshes == refreshes

    asyncio.run(scenario())


def test_without_notifications_the_interval_still_shows_a_change() -> None:
    """A job's end sends no notification: the feed looks again every interval."""

    async def scenario() -> None:
        notifier, topics = FakeNotifier(), Topics()
        feed = LiveFeed(notifier, topics, interval=0.05)
        async with feed.watching("team-a", ["job:7"]) as inbox:
            assert await asyncio.wait_for(inbox.get(), WAIT) == ("job:7", '"initial"')
            topics.values[("team-a", "job:7")] = '"succeeded"'
            assert await asyncio.wait_for(inbox.get(), WAIT) == ("job:7", '"succeeded"')

    asyncio.run(scenario())


def test_closing_the_feed_ends_every_open_stream() -> None:
    async def scenario() -> None:
        feed = LiveFeed(FakeNotifier(), Topics(), interval=60)
        async with feed.watching("team-a", ["overview"]) as inbox:
            await asyncio.wait_for(inbox.get(), WAIT)
            await feed.aclose()
            assert await asyncio.wait_for(inbox.get(), WAIT) is None

    asyncio.run(scenario())



def test_a_topic_that_could_not_be_rendered_is_sent_again_when_it_comes_back() -> None:
    """A topic missing from a refresh (a read that failed) and back, changed, is sent:
    the feed forgets a topic it could not render, and its versions are never reused,
    so the tab's last version cannot pass for the new one."""

    class Flaky(Topics):
        missing = False

        def __call__(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
            bodies = super().__call__(wanted)
            return {} if self.missing else bodies

    async def scenario() -> None:
        notifier, topics = FakeNotifier(), Flaky()
        feed = LiveFeed(notifier, topics, interval=60, min_gap=0.01)
        pair = ("team-a", "job:3")
        async with feed.watching("team-a", ["job:3"]) as inbox:
            assert await asyncio.wait_for(inbox.get(), WAIT) == ("job:3", '"initial"')
            topics.missing = True
            refreshes = feed.refreshes
            notifier.notify("team-a", "jobs")
            await until(lambda: feed.refreshes > refreshes, "a refresh without the topic")
            topics.missing = False
            topics.values[pair] = '"running"'
            notifier.notify("team-a", "jobs")
            assert await asyncio.wait_for(inbox.get(), WAIT) == ("job:3", '"running"')
            topics.values[pair] = '"initial"'
            notifier.notify("team-a", "jobs")
            assert await asyncio.wait_for(inbox.get(), WAIT) == ("job:3", '"initial"')
            assert inbox.empty()

    asyncio.run(scenario())
