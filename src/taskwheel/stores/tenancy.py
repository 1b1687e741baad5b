"""The statements of tenancy — API keys, webhooks and namespace quotas — written once
for both dialects.

They are plain reads and writes of one row by key, with the same query names and
parameters in both ``queries.sql`` files, so the two executors take them from here
rather than each writing the same marshalling (`stores.rows` reads either dialect's
rows). A dialect supplies `_execute` (one statement by name) and `_stamped`: the
parameters with the store's time where its statements take it as a value (SQLite),
unchanged where they read it themselves (PostgreSQL's ``clock_now``).
"""

from __future__ import annotations

from typing import Any, Protocol

from taskwheel.keys import ApiKey, NewApiKey
from taskwheel.quotas import Quota, QuotaUsage
from taskwheel.stores import rows
from taskwheel.webhooks import NewWebhook, Webhook


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class TenancyStatements:
    """Keys, webhooks and quotas over a dialect's `_execute`."""

    def _execute(self, name: str, params: dict[str, Any]) -> Cursor:
        raise NotImplementedError

    def _stamped(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _one(self, name: str, params: dict[str, Any]) -> Any:
        row = self._execute(name, params).fetchone()
        assert row is not None, f"{name} answers a row"
        return row

    # -- API keys ---------------------------------------------------------------------------

    def insert_api_key(self, key: NewApiKey) -> ApiKey:
        return rows.api_key(self._one("insert_api_key",
                                      self._stamped(rows.api_key_values(key))))

    def api_key(self, prefix: str) -> ApiKey | None:
        row = self._execute("api_key", {"prefix": prefix}).fetchone()
        return None if row is None else rows.api_key(row)

    def list_api_keys(self, namespace: str | None) -> list[ApiKey]:
        found = self._execute("list_api_keys", {"namespace": namespace}).fetchall()
        return [rows.api_key(row) for row in found]

    def revoke_api_key(self, prefix: str) -> ApiKey | None:
        row = self._execute("revoke_api_key", self._stamped({"prefix": prefix})).fetchone()
        return None if row is None else rows.api_key(row)

    # -- webhooks ---------------------------------------------------------------------------

    def upsert_webhook(self, hook: NewWebhook) -> Webhook:
        return rows.webhook(self._one("upsert_webhook",
                                      self._stamped(rows.webhook_values(hook))))

    def webhook(self, namespace: str, name: str) -> Webhook | None:
        row = self._execute("webhook", {"namespace": namespace, "name": name}).fetchone()
        return None if row is None else rows.webhook(row)

    def list_webhooks(self, namespace: str) -> list[Webhook]:
        found = self._execute("list_webhooks", {"namespace": namespace}).fetchall()
        return [rows.webhook(row) for row in found]

    def delete_webhook(self, namespace: str, name: str) -> bool:
        found = self._execute("delete_webhook", {"namespace": namespace, "name": name})
        return found.fetchone() is not None

    # -- quotas -----------------------------------------------------------------------------

    def get_quota(self, namespace: str) -> Quota | None:
        row = self._execute("get_quota", {"namespace": namespace}).fetchone()
        return None if row is None else rows.quota(row)

    def set_quota(self, quota: Quota) -> None:
        self._execute("set_quota", rows.quota_values(quota))

    def remove_quota(self, namespace: str) -> None:
        self._execute("remove_quota", {"namespace": namespace})

    def quota_usage(self, namespace: str) -> QuotaUsage | None:
        row = self._execute("quota_usage", {"namespace": namespace}).fetchone()
        return None if row is None else rows.quota_usage(row)

    def spend_tokens(self, namespace: str, tokens: float, tokens_at: float) -> None:
        self._execute("spend_tokens", {"namespace": namespace, "tokens": float(tokens),
                                       "tokens_at": float(tokens_at)})
