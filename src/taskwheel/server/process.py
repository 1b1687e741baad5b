"""The API of one server process among several (``taskwheel server --workers N``).

uvicorn starts each process afresh and asks it for the API through `api`, a factory
(the processes share no Python state, only the listening socket): the app, its
database and the server's settings travel from the command in the environment variables
below. The server holds no state that matters, so its processes act as one, as
separate servers on one database do.
"""

from __future__ import annotations

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
    return create_app(app.store, app, settings)
