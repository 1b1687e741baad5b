"""taskwheel's HTTP server (the ``server`` extra: FastAPI and uvicorn).

The package's names are imported when first asked for, so that importing a light
module of it (``taskwheel.server.state``, as the command line and the benchmarks do)
does not import FastAPI: every ``taskwheel`` command would pay for it at start-up.

Example:
    >>> from taskwheel.server import create_app
    >>> api = create_app(app.store, app)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskwheel.server.app import create_app
    from taskwheel.server.state import ServerSettings

__all__ = ["ServerSettings", "create_app"]

_HOMES = {"create_app": "taskwheel.server.app", "ServerSettings": "taskwheel.server.state"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'taskwheel.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
