"""taskwheel's HTTP server (the ``server`` extra: FastAPI and uvicorn).

Example:
    >>> from taskwheel.server import create_app
    >>> api = create_app(app.store, app)
"""

from __future__ import annotations

from taskwheel.server.app import create_app
from taskwheel.server.state import ServerSettings

__all__ = ["ServerSettings", "create_app"]
