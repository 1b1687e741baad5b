"""The writes a running attempt asks for (checkpoints, lease extensions), kept off the
worker's event loop.

A task calls ``ctx.checkpoint`` and ``ctx.extend_lease`` synchronously, from wherever it
runs. On a thread of its own (the thread pool) the store call simply blocks that
thread. On the worker's event loop it must not: one slow write would stall every other
coroutine there, heartbeats included, and the leases of all the worker's jobs could
lapse. There the write is handed to a writer thread and the call returns at once:

- the writer thread is not the one that claims, heartbeats and reports, so a slow
  checkpoint delays neither heartbeats nor other jobs' outcomes;
- writes of one attempt are applied in the order they were asked for, and a burst of
  checkpoints coalesces (only the latest state not yet written is kept);
- the attempt's outcome is reported only after its writes are done (`settle`), so a
  retry always finds the last checkpoint of the attempt before it.

The answer of a handed-off write (False: this attempt no longer holds the job) is kept
and returned by the next call; ``await ctx.checkpoint_async(...)`` waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import Executor, Future

from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.worker")


class WriterThread:
    """What the attempts of one worker share: the store, the writer thread (one thread:
    writes are applied in the order they are handed over), and the thread of the
    worker's event loop, where a call must not block."""

    __slots__ = ("executor", "loop_thread", "store")

    def __init__(self, store: Store, executor: Executor, loop_thread: int) -> None:
        self.store = store
        self.executor = executor
        self.loop_thread = loop_thread


class AttemptWriter:
    """Checkpoints and lease extensions of one attempt (``job_id`` under ``fence``).

    One is built per attempt, on the hot path of every job: it holds three fields until
    the attempt first hands a write over (most never do), and a lock from then on.
    """

    __slots__ = ("_extension", "_fence", "_job_id", "_last", "_lock", "_queued", "_state",
                 "_thread", "held")

    def __init__(self, thread: WriterThread, job_id: int, fence: int) -> None:
        self._thread = thread
        self._job_id = job_id
        self._fence = fence
        self._last: Future[None] | None = None
        self.held = True  # False once the store refused a write: the token is stale
        # Set by the first hand-over (`_hand_over`, on the loop thread), read by the
        # writer thread only after it: the latest checkpoint not yet handed to the
        # store, the longest extension not yet asked for, whether a flush is queued.
        self._lock: threading.Lock
        self._state: str | None
        self._extension: float | None
        self._queued: bool

    @property
    def busy(self) -> bool:
        """Whether writes handed over are not all done yet (see `settle`)."""
        return self._last is not None and not self._last.done()

    def _on_loop(self) -> bool:
        return threading.get_ident() == self._thread.loop_thread

    # -- what the context calls ------------------------------------------------------------

    def checkpoint(self, state_json: str) -> bool:
        if not self._on_loop():
            return self._save(state_json)
        self._hand_over(state_json, None)
        return self.held

    def extend_lease(self, seconds: float) -> bool:
        if not self._on_loop():
            return self._extend(seconds)
        self._hand_over(None, seconds)
        return self.held

    async def checkpoint_async(self, state_json: str) -> bool:
        if not self._on_loop():  # a task's own event loop, on a thread of its own
            return await asyncio.to_thread(self._save, state_json)
        await asyncio.wrap_future(self._hand_over(state_json, None))
        return self.held

    async def extend_lease_async(self, seconds: float) -> bool:
        if not self._on_loop():
            return await asyncio.to_thread(self._extend, seconds)
        await asyncio.wrap_future(self._hand_over(None, seconds))
        return self.held

    async def settle(self) -> None:
        """Wait until every write handed over so far is done (before the outcome is
        reported: a retry must find the last checkpoint)."""
        while self._last is not None and not self._last.done():
            with contextlib.suppress(Exception):  # logged by the writer thread
                await asyncio.wrap_future(self._last)

    # -- on the writer thread ----------------------------------------------------------------

    def _hand_over(self, state_json: str | None, seconds: float | None) -> Future[None]:
        """Put the write in the pending flush (queued if none is): the flush that will
        carry it, or a later one that takes the newer state with it."""
        if self._last is None:  # the attempt's first write
            self._lock = threading.Lock()
            self._state = self._extension = None
            self._queued = False
        with self._lock:
            if state_json is not None:
                self._state = state_json
            if seconds is not None:
                self._extension = max(seconds, self._extension or 0.0)
            if not self._queued or self._last is None:
                self._queued = True
                self._last = self._thread.executor.submit(self._flush)
            return self._last

    def _flush(self) -> None:
        with self._lock:
            state, self._state = self._state, None
            extension, self._extension = self._extension, None
            self._queued = False
        try:
            if state is not None:
                self._save(state)
            if extension is not None:
                self._extend(extension)
        except Exception:  # raised to a task awaiting it; logged for one that did not
            log.exception("job %d: a checkpoint or lease extension failed", self._job_id)
            raise

    def _save(self, state_json: str) -> bool:
        ok = self._thread.store.save_checkpoint(self._job_id, self._fence, state_json)
        self.held = self.held and ok
        return ok

    def _extend(self, seconds: float) -> bool:
        ok = self._thread.store.extend_lease(self._job_id, self._fence, seconds)
        self.held = self.held and ok
        return ok
