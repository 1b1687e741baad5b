"""The worker's heartbeat, on a thread of its own.

A heartbeat renews exactly the leases of the attempts the worker is executing (one
statement: `Store.heartbeat` with their job ids and fencing tokens), and brings back
which of them someone asked to cancel. It runs on its own thread, not on the worker's
event loop, so an async task that blocks the loop (a CPU loop, a blocking call) does
not stop it and does not get its innocent neighbours' leases declared expired. The
thread also watches the loop: it posts a ping and warns when the loop took longer
than ``blocked_after`` to answer, naming how long it was blocked.

A lease is renewed only while its attempt is within its timeout (plus one lease): an
attempt stuck past it on a blocked loop stops being renewed, its lease lapses, and the
job is rescued, so no lease outlives its work however the worker is stuck. The other
way round, an attempt the store no longer holds for the worker (its lease lapsed while
the worker was stopped or cut off, and the job was rescued) is missing from the
answer: the worker stops it, since its outcome would be refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping

from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.worker")

# How long the event loop may take to answer a ping before the worker says so.
BLOCKED_AFTER = 1.0


class Heartbeat:
    """Beats every ``interval`` seconds (and at once on `beat_now`) until `stop`.

    ``leases`` gives the attempts to renew ({job id: fence}); it is called on the
    heartbeat thread and must only read. ``on_held`` receives, on the event loop, the
    attempts the beat named and the store's answer ({job id: cancel asked} of those it
    still holds for the worker).
    """

    def __init__(
        self,
        store: Store,
        worker_id: str,
        *,
        interval: float,
        lease_ttl: float,
        leases: Callable[[], Mapping[int, int]],
        on_held: Callable[[Mapping[int, int], dict[int, bool]], None],
        loop: asyncio.AbstractEventLoop,
        blocked_after: float = BLOCKED_AFTER,
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._interval = interval
        self._lease_ttl = lease_ttl
        self._leases = leases
        self._on_held = on_held
        self._loop = loop
        self._blocked_after = blocked_after
        self._wake = threading.Event()
        self._stopped = False
        self._pinged_at: float | None = None  # a ping the loop has not answered yet
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="taskwheel-heartbeat",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat_now(self) -> None:
        """Beat without waiting for the interval (a cancel request came in). Safe from
        any thread."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=max(5.0, self._interval))

    # -- on the heartbeat thread ---------------------------------------------------------

    def _run(self) -> None:
        tick = min(self._interval, self._blocked_after / 2)
        next_beat = time.monotonic() + self._interval
        while not self._stopped:
            asked = self._wake.wait(max(0.0, min(tick, next_beat - time.monotonic())))
            if self._stopped:
                return
            self._watch_loop()
            if not asked and time.monotonic() < next_beat:
                continue
            self._wake.clear()
            next_beat = time.monotonic() + self._interval
            leases = self._leases()
            try:
                held = self._store.heartbeat(self._worker_id, self._lease_ttl, leases)
            except Exception:  # no answer: nothing is known lost
                log.exception("heartbeat failed")
                continue
            if not self._post(self._on_held, leases, held):
                return

    def _watch_loop(self) -> None:
        now = time.monotonic()
        if self._pinged_at is None:
            self._pinged_at = now
            self._post(self._pong, now)
        elif now - self._pinged_at > self._blocked_after and not self._warned:
            self._warned = True
            log.warning("the worker's event loop has been blocked for %.1fs: an async task "
                        "is running blocking code (make it a sync task, or run it in the "
                        "process pool); heartbeats go on", now - self._pinged_at)

    def _post(self, fn: Callable[..., None], *args: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: the worker is gone
            return False
        return True

    # -- on the event loop --------------------------------------------------------------------

    def _pong(self, pinged_at: float) -> None:
        blocked = time.monotonic() - pinged_at
        if self._warned:
            log.warning("the worker's event loop answers again after %.1fs blocked", blocked)
        self._warned = False
        self._pinged_at = None
