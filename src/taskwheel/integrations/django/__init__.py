"""taskwheel in a Django project (``pip install 'taskwheel[django]'``).

Add ``"taskwheel.integrations.django"`` to ``INSTALLED_APPS`` and say where the app is:

    TASKWHEEL = {"APP": "myproject.jobs:app"}        # DATABASE_URL: optional

- The database is Django's ``default`` one unless ``TASKWHEEL["DATABASE_URL"]`` names
  another (a SQLite file, or PostgreSQL through psycopg 3): `app` points the taskwheel
  app at it.
- ``python manage.py taskwheel worker`` (and every other ``taskwheel`` command) runs
  with that app and database.
- In the same transaction: ``task.enqueue(..., using=django.db.connection)`` inside
  ``transaction.atomic()`` -- the job commits or rolls back with the block (outside one,
  Django's autocommit commits it at once).
- Or after it: `enqueue_on_commit` enqueues when the transaction commits (Django's
  ``transaction.on_commit``), for a taskwheel database other than Django's.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connections, transaction

from taskwheel.app import App, load_app
from taskwheel.errors import InvalidInput
from taskwheel.handles import JobHandle
from taskwheel.tasks import Task


@functools.cache
def app() -> App:
    """The taskwheel app ``settings.TASKWHEEL["APP"]`` names, on the database
    `database_url` gives (loaded once)."""
    configured = _settings()
    if "APP" not in configured:
        raise InvalidInput("TASKWHEEL", 'settings.TASKWHEEL has no "APP" '
                           '("module:attribute" of your taskwheel.App)')
    found = load_app(str(configured["APP"]))
    found.configure(database_url=database_url())
    return found


def database_url() -> str:
    """``settings.TASKWHEEL["DATABASE_URL"]``, else the URL of Django's ``default``
    database (SQLite or PostgreSQL)."""
    given = _settings().get("DATABASE_URL")
    if given:
        return str(given)
    database = connections["default"].settings_dict
    engine = str(database.get("ENGINE", ""))
    if engine.endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(str(database.get("USER") or ""))
        password = quote(str(database.get("PASSWORD") or ""))
        login = f"{user}:{password}@" if password else f"{user}@" if user else ""
        host = database.get("HOST") or "localhost"
        port = f":{database['PORT']}" if database.get("PORT") else ""
        return f"postgresql://{login}{host}{port}/{database['NAME']}"
    raise InvalidInput("TASKWHEEL", f"Django's default database ({engine}) is neither SQLite "
                       'nor PostgreSQL: give settings.TASKWHEEL["DATABASE_URL"]')


def enqueue_on_commit(task: Task[Any, Any], *args: Any, using: str | None = None,
                      **kwargs: Any) -> None:
    """Enqueue a job of ``task`` when the current Django transaction (of the database
    alias ``using``) commits; at once outside one; never if it rolls back. The job is
    not part of the transaction: a crash between the commit and the enqueue loses it
    (`Task.enqueue` with ``using=django.db.connection`` does not)."""
    request = task.prepare(*args, **kwargs)

    def enqueue() -> JobHandle:
        return app().enqueue_many([request])[0]

    transaction.on_commit(enqueue, using=using)


def _settings() -> dict[str, Any]:
    configured = getattr(settings, "TASKWHEEL", {})
    if not isinstance(configured, dict):
        raise InvalidInput("TASKWHEEL", "settings.TASKWHEEL must be a dict")
    return configured
