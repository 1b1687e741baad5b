"""The statements of alerts — rules, their state, their deliveries and the readings
they are judged on — written once for both dialects (as `stores.tenancy`): the same
query names and parameters in both ``queries.sql`` files, every time passed as a value
(the store's instant, read once per transaction)."""

from __future__ import annotations

import json
from typing import Any

from taskwheel.alerts import (
    AlertDelivery,
    AlertKind,
    AlertRule,
    AlertState,
    DeliveryStatus,
    Reading,
)
from taskwheel.clock import to_datetime
from taskwheel.jobs import epoch_datetime
from taskwheel.stores.tenancy import Cursor


class AlertStatements:
    """Alert rules, deliveries and readings over a dialect's `_execute`."""

    def _execute(self, name: str, params: dict[str, Any]) -> Cursor:
        raise NotImplementedError

    # -- rules --------------------------------------------------------------------------

    def upsert_alert_rule(self, rule: AlertRule, now: float) -> AlertRule:
        row = self._execute("upsert_alert_rule", {
            "namespace": rule.namespace, "name": rule.name, "kind": rule.kind.value,
            "spec": json.dumps(rule.spec(), sort_keys=True), "url": rule.url,
            "secret": rule.secret, "now": now}).fetchone()
        return alert_rule(row)

    def alert_rule(self, namespace: str, name: str) -> AlertRule | None:
        row = self._execute("alert_rule", {"namespace": namespace, "name": name}).fetchone()
        return None if row is None else alert_rule(row)

    def list_alert_rules(self, namespace: str) -> list[AlertRule]:
        return [alert_rule(row) for row in self._execute(
            "list_alert_rules", {"namespace": namespace}).fetchall()]

    def alert_namespaces(self) -> list[str]:
        return [str(row["namespace"]) for row in self._execute(
            "alert_namespaces", {}).fetchall()]

    def delete_alert_rule(self, namespace: str, name: str) -> bool:
        key = {"namespace": namespace, "name": name}
        if self._execute("delete_alert_rule", key).fetchone() is None:
            return False
        self._execute("delete_alert_deliveries", key)
        return True

    def change_alert_state(
        self, rule: AlertRule, to: AlertState, value: float, now: float
    ) -> int | None:
        """Move the rule to ``to`` if it is not there yet: the firing's number, or None
        when it was there already (another evaluator moved it, or nothing changed)."""
        query = "fire_alert" if to is AlertState.FIRING else "resolve_alert"
        row = self._execute(query, {"namespace": rule.namespace, "name": rule.name,
                                    "value": float(value), "now": now}).fetchone()
        return None if row is None else int(row["firing"])

    def note_alert_value(self, rule: AlertRule, value: float, now: float) -> None:
        self._execute("note_alert_value", {"namespace": rule.namespace, "name": rule.name,
                                           "value": float(value), "now": now})

    # -- deliveries ---------------------------------------------------------------------

    def insert_alert_delivery(
        self, rule: AlertRule, firing: int | None, event: str, body: str, now: float
    ) -> AlertDelivery | None:
        row = self._execute("insert_alert_delivery", {
            "namespace": rule.namespace, "name": rule.name, "firing": firing, "event": event,
            "url": rule.url, "body": body, "now": now}).fetchone()
        return None if row is None else alert_delivery(row)

    def due_alert_deliveries(self, namespace: str, now: float, limit: int) -> list[AlertDelivery]:
        return [alert_delivery(row) for row in self._execute("due_alert_deliveries", {
            "namespace": namespace, "now": now, "limit": limit}).fetchall()]

    def record_alert_delivery(
        self, delivery_id: int, status: DeliveryStatus, next_at: float, *,
        status_code: int | None, error: str | None, now: float,
    ) -> AlertDelivery | None:
        row = self._execute("record_alert_delivery", {
            "id": delivery_id, "status": status.value, "next_at": float(next_at),
            "status_code": status_code, "error": error, "now": now}).fetchone()
        return None if row is None else alert_delivery(row)

    def list_alert_deliveries(self, namespace: str, name: str, limit: int) -> list[AlertDelivery]:
        return [alert_delivery(row) for row in self._execute("list_alert_deliveries", {
            "namespace": namespace, "name": name, "limit": limit}).fetchall()]

    # -- readings -----------------------------------------------------------------------

    def alert_reading(self, rule: AlertRule, now: float, live_workers: int) -> Reading:
        """What ``rule``'s kind is judged on, read at ``now`` (``live_workers``: read by
        the store from the registrations)."""
        key: dict[str, Any] = {"namespace": rule.namespace}
        if rule.kind is AlertKind.FAILURE_RATE:
            row = self._execute("alert_attempts", {**key, "task": rule.task,
                                                   "since": now - rule.window}).fetchone()
            return Reading(now=now, total=int(row["total"]), failed=int(row["failed"]))
        if rule.kind is AlertKind.DLQ_GROWING:
            row = self._execute("alert_dead_since", {**key, "queue": rule.queue,
                                                     "since": now - rule.window}).fetchone()
            return Reading(now=now, count=int(row["count"]))
        if rule.kind is AlertKind.OLDEST_READY:
            row = self._execute("alert_first_ready", {**key, "queue": rule.queue,
                                                      "priority": rule.priority}).fetchone()
            first = row["first_ready"]
            return Reading(now=now, first_ready=None if first is None else float(first))
        if rule.kind is AlertKind.SCHEDULE_MISSED:
            found = self._execute("alert_late_schedules", {
                **key, "schedule": rule.schedule, "before": now - rule.threshold}).fetchall()
            return Reading(now=now, late=tuple((str(row["name"]), float(row["next_fire_at"]))
                                               for row in found))
        return Reading(now=now, live_workers=live_workers)


def alert_rule(row: Any) -> AlertRule:
    spec = json.loads(row["spec"])
    return AlertRule(
        namespace=row["namespace"], name=row["name"], kind=AlertKind(row["kind"]),
        url=row["url"], secret=row["secret"], task=spec["task"], queue=spec["queue"],
        priority=spec["priority"], schedule=spec["schedule"],
        threshold=float(spec["threshold"]), window=float(spec["window"]),
        min_attempts=int(spec["min_attempts"]),
        created_at=epoch_datetime(row["created_at"]), state=AlertState(row["state"]),
        firing=int(row["firing"]), changed_at=to_datetime(row["changed_at"]),
        value=row["value"], evaluated_at=to_datetime(row["evaluated_at"]),
    )


def alert_delivery(row: Any) -> AlertDelivery:
    return AlertDelivery(
        id=int(row["id"]), namespace=row["namespace"], rule=row["rule"],
        firing=row["firing"], event=row["event"], url=row["url"], body=row["body"],
        status=DeliveryStatus(row["status"]), attempts=int(row["attempts"]),
        next_at=epoch_datetime(row["next_at"]), last_status_code=row["last_status_code"],
        last_error=row["last_error"], created_at=epoch_datetime(row["created_at"]),
        delivered_at=to_datetime(row["delivered_at"]),
    )


__all__ = ["AlertStatements"]
