"""Group commit for single enqueues, and grouped reads of API keys: requests that
arrive while the previous group is in flight are served together by the next.

A single-enqueue request answers 201 only once its job is committed, and a commit is
what it costs most (a write transaction on SQLite; on PostgreSQL a round trip and a
flush of the write-ahead log). Under concurrent load the server has many such requests
in flight at once, so it writes them as one group: one hop to a thread and one commit
for all of them. A request that arrives alone is written at once, alone: nothing waits
for a group to fill.

Groups are per namespace: a namespace's quota is checked once per group, counting the
whole group (the store's enqueue of a batch), and a group refused by one namespace's
quota does not hold up another namespace's requests.

Each request still gets its own answer. A group is all or nothing in the store (a quota
it would exceed, a deadline already past), so when the group is refused the requests of
that group are written again one by one, and each gets the answer its own enqueue would
have had: its job, or its own error. A database error fails exactly the requests of the
group it struck. Bad input never reaches a group: the route checks each request first.

`GroupRead` applies the same to a read every request makes, its API key: the requests
that arrive while a read is in flight share the next one, one hop to a thread for all.
A request is only ever answered by a read that began after it arrived, so a key revoked
before a request arrives refuses that request, as a read of its own would.

Example:
    >>> enqueues = GroupCommit(store)
    >>> job, existing = await enqueues.enqueue(request)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from taskwheel.errors import StoreError, TaskwheelError
from taskwheel.jobs import Job, NewJob
from taskwheel.keys import ApiKey
from taskwheel.stores.base import Store

MAX_GROUP = 500  # requests written (or keys read) in one go at most

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _Pending(Generic[K, V]):
    item: K
    answer: asyncio.Future[V] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class _Queue(Generic[K, V]):
    pending: list[_Pending[K, V]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


class _Grouper(Generic[K, V]):
    """Requests queued per event loop and lane; one group in flight at a time per lane,
    served on a thread by ``serve`` (the answers, in order: a value or an exception)."""

    def __init__(self, serve: Callable[[list[K]], list[V | BaseException]]) -> None:
        self._serve = serve
        self._queues: dict[tuple[asyncio.AbstractEventLoop, Hashable], _Queue[K, V]] = {}
        self.groups = 0  # groups served (for tests and benchmarks)

    async def submit(self, lane: Hashable, item: K) -> V:
        loop = asyncio.get_running_loop()
        queue = self._queues.get((loop, lane))
        if queue is None:
            queue = self._queues[loop, lane] = _Queue()
        pending: _Pending[K, V] = _Pending(item)
        queue.pending.append(pending)
        if queue.writer is None:
            # Held by the queue: the loop keeps only a weak reference to a task.
            queue.writer = loop.create_task(self._serve_all(loop, lane, queue))
        return await pending.answer

    async def _serve_all(self, loop: asyncio.AbstractEventLoop, lane: Hashable,
                         queue: _Queue[K, V]) -> None:
        try:
            while queue.pending:
                group, queue.pending = queue.pending[:MAX_GROUP], queue.pending[MAX_GROUP:]
                self.groups += 1
                try:
                    answers = await run_in_threadpool(
                        self._serve, [pending.item for pending in group])
                except BaseException as exc:  # every waiter of the group gets its answer
                    _answer_all(group, exc)
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
            queue.writer = None
            if queue.pending:  # left by a cancellation: nobody else would serve them
                _answer_all(queue.pending, asyncio.CancelledError())
            self._queues.pop((loop, lane), None)


def _answer_all(group: Iterable[_Pending[Any, Any]], exc: BaseException) -> None:
    for pending in group:
        if not pending.answer.done():
            pending.answer.set_exception(exc)


class KeyRefused(Exception):
    """A keyed enqueue's key does not allow it (unknown, revoked, another namespace's, a
    role too low): nothing was written, and the caller answers as it would have."""


# The presented key's prefix, and whether the key read for it allows the request.
KeyCheck = tuple[str, Callable[[ApiKey | None], bool]]


@dataclass(frozen=True, slots=True)
class _Enqueue:
    request: NewJob
    key: KeyCheck | None = None


class GroupCommit:
    """Writes the single enqueues of each event loop in groups, one group in flight at
    a time per namespace (a server has one loop; a test client may bring its own)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._grouper: _Grouper[_Enqueue, tuple[Job, bool]] = _Grouper(self._write)

    @property
    def groups(self) -> int:
        """Groups written so far (one transaction each, unless refused)."""
        return self._grouper.groups

    async def enqueue(self, request: NewJob) -> tuple[Job, bool]:
        """The job ``request`` created (or the one holding its idempotency key) and
        whether it existed already: once committed."""
        return await self._grouper.submit(request.namespace, _Enqueue(request))

    async def enqueue_keyed(self, request: NewJob, key: KeyCheck) -> tuple[Job, bool]:
        """`enqueue`, for a request whose API key is read by its group (on the group's
        one hop to a thread, each distinct key once, after the request arrived) and
        checked by ``key``'s function; `KeyRefused` if it does not allow the request."""
        return await self._grouper.submit(request.namespace, _Enqueue(request, key))

    def _write(self, group: list[_Enqueue]) -> list[tuple[Job, bool] | BaseException]:
        """The group's keys read and checked; the requests they allow in one
        transaction; refused whole (a quota, a past deadline), each request alone;
        failed by the database, the group's error for all of it."""
        keys = {item.key[0]: None for item in group if item.key is not None}
        read = {prefix: self.store.get_api_key(prefix) for prefix in keys}
        answers: list[tuple[Job, bool] | BaseException | None] = [
            None if item.key is None or item.key[1](read[item.key[0]]) else KeyRefused()
            for item in group]
        allowed = [i for i, answer in enumerate(answers) if answer is None]
        if allowed:
            try:
                written = self._write_allowed([group[i].request for i in allowed])
            except Exception as exc:  # theirs alone: a refused key's request is not theirs
                written = [exc] * len(allowed)
            for i, answer in zip(allowed, written, strict=True):
                answers[i] = answer
        return [answer for answer in answers if answer is not None]

    def _write_allowed(self, requests: list[NewJob]) -> list[tuple[Job, bool] | BaseException]:
        store = self.store
        try:
            written = store.enqueue(requests)
            return list(zip(written, written.existing, strict=True))
        except StoreError:
            raise  # the database failed the group's transaction: the group's answer
        except TaskwheelError:
            if len(requests) == 1:
                raise
        answers: list[tuple[Job, bool] | BaseException] = []
        for request in requests:
            try:
                one = store.enqueue([request])
                answers.append((one[0], one.existing[0]))
            except TaskwheelError as exc:
                answers.append(exc)
        return answers


class GroupRead(Generic[K, V]):
    """Reads by key grouped: the keys asked for while a read is in flight are read
    together by the next, on one thread hop, each distinct key once.

    Example:
        >>> keys = GroupRead(store.get_api_key)
        >>> key = await keys.get(prefix)
    """

    def __init__(self, read: Callable[[K], V]) -> None:
        self._read = read
        self._grouper: _Grouper[K, V] = _Grouper(self._read_all)

    @property
    def groups(self) -> int:
        """Reads made so far (one thread hop each)."""
        return self._grouper.groups

    async def get(self, key: K) -> V:
        """What ``read(key)`` answers, read after this call began."""
        return await self._grouper.submit(None, key)

    def _read_all(self, keys: list[K]) -> list[V | BaseException]:
        read: dict[K, V | BaseException] = {}
        for key in keys:
            if key not in read:
                try:
                    read[key] = self._read(key)
                except Exception as exc:  # the asker's answer
                    read[key] = exc
        return [read[key] for key in keys]
