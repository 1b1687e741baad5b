"""taskwheel in a FastAPI application (``pip install 'taskwheel[fastapi]'``).

- `lifespan`: the application's lifespan opens the taskwheel app's store at startup
  (its schema checked: a database that was not migrated fails the startup, not the
  first request) and closes it at shutdown.
- `TaskwheelClient`: a dependency that hands a route the app's `Client`.
- `in_transaction`: a dependency that hands a route a database connection inside a
  transaction, committed when the route returns -- before the response is sent -- and
  rolled back if it raises; what the route enqueues with ``using=conn`` is part of it.

Example:
    >>> api = FastAPI(lifespan=lifespan(jobs))
    >>> Transaction = Annotated[sqlite3.Connection, in_transaction(connect)]
    >>> @api.post("/signups", status_code=201)
    ... def sign_up(email: str, conn: Transaction):
    ...     conn.execute("INSERT INTO signups (email) VALUES (?)", [email])
    ...     return {"job": send_welcome.enqueue(email, using=conn).id}
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from taskwheel.app import App
from taskwheel.client import Client


class Transactional(Protocol):
    """A DB-API connection: what `in_transaction` commits or rolls back."""

    def commit(self) -> Any: ...

    def rollback(self) -> Any: ...

    def close(self) -> Any: ...


C = TypeVar("C", bound=Transactional)
Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def lifespan(app: App, *, then: Lifespan | None = None) -> Lifespan:
    """A FastAPI lifespan that opens ``app``'s store at startup (in a thread: opening
    checks the schema) and closes it at shutdown, with the application's own lifespan
    ``then`` inside it. The app is ``request.app.state.taskwheel``."""

    @contextlib.asynccontextmanager
    async def run(api: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: app.store)
        api.state.taskwheel = app
        try:
            if then is None:
                yield
            else:
                async with then(api):
                    yield
        finally:
            await run_in_threadpool(app.close)

    return run


def client(request: Request) -> Client:
    """The dependency behind `TaskwheelClient`: the client of the app `lifespan`
    opened."""
    app = getattr(request.app.state, "taskwheel", None)
    if not isinstance(app, App):
        raise RuntimeError("no taskwheel app on this FastAPI application: create it with "
                           "FastAPI(lifespan=taskwheel.integrations.fastapi.lifespan(app))")
    return app.client


TaskwheelClient = Annotated[Client, Depends(client)]


def in_transaction(connect: Callable[[], C]) -> Any:
    """A route parameter's dependency (``Annotated[Conn, in_transaction(connect)]``): a
    connection from ``connect()`` in a transaction,
    committed when the route returns (before the response is sent, so a commit that
    fails is a 500, never a success that did not happen), rolled back if it raises
    (an `HTTPException` included), closed either way."""

    def transaction() -> Iterator[C]:
        conn = connect()
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            conn.close()

    return Depends(transaction, scope="function")
