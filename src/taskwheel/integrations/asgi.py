"""taskwheel in any ASGI application: `TaskwheelLifespan`, ASGI middleware that answers
the server's lifespan protocol by opening the taskwheel app's store at startup (its
schema checked: a database that was not migrated fails the startup with the reason)
and closing it at shutdown.

A framework with a lifespan of its own (Starlette, FastAPI: see
``integrations.fastapi.lifespan``) hooks in there instead: this middleware answers the
lifespan messages itself and does not pass them on.

Example:
    >>> application = TaskwheelLifespan(signups_asgi_app, jobs)   # uvicorn module:application
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from taskwheel.app import App

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TaskwheelLifespan:
    """``asgi_app`` with ``app``'s store opened for the server's lifetime; the app is
    also in each request's ``scope["state"]["taskwheel"]`` when the server keeps
    lifespan state."""

    def __init__(self, asgi_app: ASGIApp, app: App) -> None:
        self.asgi_app = asgi_app
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.asgi_app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(lambda: self.app.store)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if isinstance(scope.get("state"), MutableMapping):
                    scope["state"]["taskwheel"] = self.app
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.app.close)
                await send({"type": "lifespan.shutdown.complete"})
                return
