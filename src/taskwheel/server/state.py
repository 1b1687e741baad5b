"""What a server holds: the store, the task registry and its settings. Nothing that
matters lives only here: any number of servers on one database act as one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from taskwheel.app import App
from taskwheel.errors import InvalidInput
from taskwheel.keys import ApiKey
from taskwheel.server.batching import GroupCommit, GroupRead
from taskwheel.stores.base import Store

T = TypeVar("T")

DEFAULT_MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How a server answers.

    Args:
        max_body_bytes: the largest request body accepted (413 beyond it).
        max_page_size: the most items one list answer holds.
        metrics: serve Prometheus metrics at ``/metrics`` (no key: put it where only
            your Prometheus reaches, or turn it off).
        live_interval: the dashboard's live feed reads what open tabs watch at most
            this often, in seconds (and at least this often: not every change is
            announced, a lapsed lease say).
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_page_size: int = 1000
    metrics: bool = True
    live_interval: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_page_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(name, f"must be a whole number >= 1, got {value!r}")
        interval = self.live_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not (
                0.05 <= interval <= 60):
            raise InvalidInput("live_interval", f"must be 0.05 to 60 seconds, got {interval!r}")


@dataclass(frozen=True, slots=True)
class ServerState:
    store: Store
    app: App
    settings: ServerSettings
    enqueues: GroupCommit
    keys: GroupRead[str, ApiKey | None] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", GroupRead(self.store.get_api_key))

    async def api_key(self, prefix: str) -> ApiKey | None:
        """The API key of ``prefix``, read after this call began (so a revoke that
        committed before it is seen). On SQLite read on the event loop (see `read`);
        on PostgreSQL the keys asked for together share one hop to a thread
        (`GroupRead`): under load every request reads its key."""
        if self.store.kind == "sqlite":
            return self.store.get_api_key(prefix)
        return await self.keys.get(prefix)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """A short read of the store, such as the request's API key by its primary key.
        On SQLite it runs on the event loop: a WAL read waits for no writer and takes
        microseconds, less than the hop to a thread and back that it would otherwise
        cost every request. On PostgreSQL a read is a round trip, so on a thread."""
        if self.store.kind == "sqlite":
            return fn(*args)
        return await run_in_threadpool(fn, *args)
