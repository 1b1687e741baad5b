"""The task registry the server tests' API checks requests against."""

from __future__ import annotations

import taskwheel

# Never opened: the server is given its store; the app lends its tasks.
app = taskwheel.App("sqlite://:memory:")


@app.task(queue="math")
def add(a: int, b: int) -> int:
    return a + b


@app.task
def ping() -> str:
    return "pong"


@app.task(queue="events")
def on_event(payload: object) -> None:
    """A webhook's task: the delivery's body is its one argument."""


@app.task(queue="sync", concurrency=taskwheel.ConcurrencyLimit(key="{tenant}", limit=1))
def sync(tenant: str) -> None:
    """One job per tenant at a time (the key is the argument: "tenant/42" has a slash,
    which the routes take whole)."""


@app.task(queue="calls", rate=taskwheel.RateLimit(key="api/{account}", rate="60/min", burst=2))
def call_api(account: str) -> None:
    """Two calls at once per account, then one a second (the key has a slash too)."""
