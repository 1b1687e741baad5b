"""The pytest plugin (entry point ``pytest11``): the ``tw`` fixture.

``tw`` asks for a ``taskwheel_app`` fixture, which the application's tests define to
return their `App`; it yields an `InProcess` on a fresh SQLite file in the test's
``tmp_path``, and gives the app its own store back after the test. Whatever store the
app is configured with, the tests run on SQLite unless the ``taskwheel_database_url``
fixture, overridden, returns a PostgreSQL URL: ``tw`` then runs on a new schema of that
database, dropped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskwheel.app import App
from taskwheel.testing.harness import InProcess


@pytest.fixture
def taskwheel_database_url() -> str | None:
    """Where ``tw`` keeps its store: None (a SQLite file in ``tmp_path``), or a
    PostgreSQL URL (a new schema of it per test). Override it to choose."""
    return None


@pytest.fixture
def tw(
    request: pytest.FixtureRequest, tmp_path: Path, taskwheel_database_url: str | None
) -> Iterator[InProcess]:
    """The test's in-process taskwheel (see `taskwheel.testing`)."""
    try:
        app = request.getfixturevalue("taskwheel_app")
    except pytest.FixtureLookupError:
        raise pytest.UsageError("the tw fixture needs a taskwheel_app fixture returning "
                                "your taskwheel.App (define one in conftest.py)") from None
    if not isinstance(app, App):
        raise pytest.UsageError(f"taskwheel_app returned {app!r}, not a taskwheel.App")
    with InProcess(app, directory=tmp_path, database_url=taskwheel_database_url) as harness:
        yield harness
