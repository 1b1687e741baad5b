"""The PostgreSQL store (``pip install 'taskwheel[postgres]'``)."""

from __future__ import annotations

from taskwheel.errors import StoreError, StoreUnavailable
from taskwheel.stores.postgres.connection import ConnectionSettings
from taskwheel.stores.postgres.notifier import PostgresListener, PostgresNotifier
from taskwheel.stores.postgres.store import PostgresStore

__all__ = [
    "ConnectionSettings",
    "PostgresListener",
    "PostgresNotifier",
    "PostgresStore",
    "StoreError",
    "StoreUnavailable",
]
