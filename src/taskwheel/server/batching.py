"""Group commit for single enqueues: requests that arrive while an enqueue is being
written are written together, in one transaction, by the next.

A single-enqueue request answers 201 only once its job is committed, and a commit is
what it costs most (a write transaction on SQLite; on PostgreSQL a round trip and a
flush of the write-ahead log). Under concurrent load the server has many such requests
in flight at once, so it writes them as one batch: one hop to a thread and one commit
for all of them. A request that arrives alone is written at once, alone: nothing waits
for a batch to fill.

Each request still gets its own answer. A batch is all or nothing in the store (a quota
it would exceed, a deadline already past), so when the batch is refused the requests of
that batch are written again one by one, and each gets the answer its own enqueue would
have had: its job, or its own error.

Example:
    >>> enqueues = GroupCommit(store)
    >>> job, existing = await enqueues.enqueue(request)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from taskwheel.errors import TaskwheelError
from taskwheel.jobs import Job, NewJob
from taskwheel.stores.base import Store

MAX_GROUP = 500  # requests written in one transaction at most


@dataclass
class _Pending:
    request: NewJob
    answer: asyncio.Future[tuple[Job, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit:
    """Writes the single enqueues of each event loop, grouped; one group at a time per
    loop (a server has one loop; a test client may bring its own)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self.groups = 0  # groups written (for tests and benchmarks)

    async def enqueue(self, request: NewJob) -> tuple[Job, bool]:
        """The job ``request`` created (or the one holding its idempotency key) and
        whether it existed already: once committed."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        pending = _Pending(request)
        queue.pending.append(pending)
        if not queue.writing:
            queue.writing = True
            # Held by the queue: the loop keeps only a weak reference to a task.
            queue.writer = loop.create_task(self._write_all(loop, queue))
        return await pending.answer

    async def _write_all(self, loop: asyncio.AbstractEventLoop, queue: _Queue) -> None:
        try:
            while queue.pending:
                group, queue.pending = queue.pending[:MAX_GROUP], queue.pending[MAX_GROUP:]
                self.groups += 1
                try:
                    answers = await run_in_threadpool(_write, self.store, group)
                except BaseException as exc:  # every waiter gets its answer
                    for pending in group:
                        if not pending.answer.done():
                            pending.answer.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for pending, answer in zip(group, answers, strict=True):
                    if pending.answer.done():  # its request was cancelled meanwhile
                        continue
                    if isinstance(answer, BaseException):
                        pending.answer.set_exception(answer)
                    else:
                        pending.answer.set_result(answer)
        finally:
            queue.writing = False
            if not queue.pending:
                self._queues.pop(loop, None)


@dataclass
class _Queue:
    pending: list[_Pending] = field(default_factory=list)
    writing: bool = False
    writer: asyncio.Task[None] | None = None


def _write(store: Store, group: list[_Pending]) -> list[tuple[Job, bool] | BaseException]:
    """The group in one transaction; refused whole, each request alone."""
    try:
        written = store.enqueue([pending.request for pending in group])
        return list(zip(written, written.existing, strict=True))
    except TaskwheelError:
        if len(group) == 1:
            raise
    answers: list[tuple[Job, bool] | BaseException] = []
    for pending in group:
        try:
            one = store.enqueue([pending.request])
            answers.append((one[0], one.existing[0]))
        except TaskwheelError as exc:
            answers.append(exc)
    return answers
