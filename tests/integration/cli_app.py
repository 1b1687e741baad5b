"""The app the in-process command line tests load (``--app integration.cli_app:app``)."""

from __future__ import annotations

from typing import Any

import taskwheel

app = taskwheel.App()


@app.task
def send(*args: Any, **kwargs: Any) -> None:
    """Takes any arguments."""


@app.task
def add(a: int, b: int = 0) -> int:
    return a + b
