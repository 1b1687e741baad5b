"""The long polls' listener on both stores: a wake-up of a namespace wakes the claims
waiting in it and no other; the listener outlives one claim and is closed once none
has waited for its linger, or at shutdown."""

from __future__ import annotations

import asyncio

from taskwheel.server.wakeups import WakeUps
from taskwheel.stores.base import Store


def test_a_wake_up_reaches_the_waiters_of_its_namespace_only(store: Store) -> None:
    async def scenario() -> None:
        hub = WakeUps(store.notifier, linger=3600)
        async with hub.waiting("a") as mine, hub.waiting("b") as theirs:
            assert hub.listening
            assert hub.waiters == 2
            store.notifier.notify("a", "jobs")  # on the loop: a datagram or a NOTIFY
            await asyncio.wait_for(mine.wait(), 10)
            assert not theirs.is_set()
            store.notifier.notify("b", "cancel")
            store.notifier.notify("a", "jobs")
            mine.clear()
            await asyncio.wait_for(mine.wait(), 10)
            assert not theirs.is_set()  # a cancel wake-up is no work
        assert hub.listening  # kept for the next claim
        await hub.aclose()
        assert not hub.listening

    asyncio.run(scenario())


def test_the_listener_is_closed_once_no_claim_waited_for_its_linger(store: Store) -> None:
    async def scenario() -> None:
        hub = WakeUps(store.notifier, linger=0)
        async with hub.waiting("a"):
            assert hub.listening
        assert hub.listening  # the linger has not run out: the loop has not turned yet
        for _ in range(100):
            await asyncio.sleep(0)
            if not hub.listening:
                break
        assert not hub.listening
        await hub.aclose()

    asyncio.run(scenario())
