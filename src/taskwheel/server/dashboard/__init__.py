"""The web dashboard served at ``/`` by ``taskwheel server`` (and ``taskwheel dev``):
server-rendered pages (Jinja2) with a little of our own JavaScript and CSS
(``static/``), updated live by server-sent events from one `LiveFeed` per server.

Example:
    >>> api = create_app(store, app)  # the dashboard is part of every server
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from taskwheel.server.dashboard.feed import LiveFeed
from taskwheel.server.dashboard.pages import router
from taskwheel.server.dashboard.rendering import STATIC
from taskwheel.server.dashboard.topics import TopicRenderer
from taskwheel.stores.base import Store


def install(api: FastAPI, store: Store, *, live_interval: float) -> LiveFeed:
    """Add the pages, their static files and the live feed to ``api``; the feed (to
    close at shutdown)."""
    feed = LiveFeed(store.notifier, TopicRenderer(store), interval=live_interval)
    api.state.live_feed = feed
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    api.include_router(router)
    return feed


__all__ = ["LiveFeed", "install"]
