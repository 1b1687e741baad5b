"""The API of one server process among several (``taskwheel server --workers N``).

uvicorn starts each process afresh and asks it for the API through `api`, a factory
(the processes share no Python state, only the listening socket): the app, its
database and the server's settings travel from the command in the environment variables
below. The server holds no state that matters, so its processes act as one, as
separate servers on one database do.
"""

from __future__ import annotations

import gc
import os

from fastapi import FastAPI

from taskwheel.app import load_app
from taskwheel.server.app import create_app
from taskwheel.server.state import ServerSettings

APP = "TASKWHEEL_SERVER_APP"
DATABASE_URL = "TASKWHEEL_SERVER_DATABASE_URL"
MAX_BODY_BYTES = "TASKWHEEL_SERVER_MAX_BODY_BYTES"


def api() -> FastAPI:
    """This process's API, for the app and database the command was given."""
    app = load_app(os.environ[APP])
    app.configure(database_url=os.environ[DATABASE_URL])
    settings = ServerSettings(max_body_bytes=int(os.environ[MAX_BODY_BYTES]))
    served = create_app(app.store, app, settings)
    settle_heap()
    return served


def settle_heap() -> None:
    """Keep what a server process built before serving (its modules, the app, the
    routes) out of every later garbage collection: they live as long as the process, and
    each full collection walked all of them again, about a sixth of a /metrics scrape of
    10,000 bands (whose tens of thousands of rows set collections off). What is garbage
    already is collected first, so nothing unreachable is kept."""
    gc.collect()
    gc.freeze()
