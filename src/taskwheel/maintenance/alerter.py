"""Judge the alert rules and deliver what they say, while holding the maintenance lease."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from taskwheel.alerts import (
    DELIVERY_HEADER,
    MAX_DELIVERY_ATTEMPTS,
    SIGNATURE_HEADER,
    AlertDelivery,
    AlertRule,
    DeliveryStatus,
    retry_delay,
    signature,
)
from taskwheel.maintenance.duty import Duty
from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.alerts")

# POST a body to a URL with headers; the receiver's status code (an error raises).
Send = Callable[[str, bytes, Mapping[str, str]], int]
SEND_TIMEOUT = 3.0  # seconds: a slow receiver must not hold the other duties up long
DELIVERIES_PER_PASS = 20
# Seconds of sending per pass at most (the rescue and the promotion run on the same
# thread): what is left is sent at the next pass.
SENDING_BUDGET = 5.0


def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """Deliver by HTTP POST (the standard library's client); the status code."""
    # Imported at the first delivery: every worker has an alerter, few ever deliver,
    # and urllib.request costs a process 3.8 MB.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Alerter(Duty):
    """Judges every rule of its namespaces (`Store.evaluate_alert`: a change of state
    writes its delivery, once), then sends the deliveries due: each a signed POST, a 2xx
    delivers it, anything else is tried again after `alerts.retry_delay`, up to
    `alerts.MAX_DELIVERY_ATTEMPTS`; every attempt recorded. Counts the state changes."""

    name = "alert"
    counts = "alerted"

    def __init__(self, store: Store, namespace: str, every: float, *, source: str,
                 send: Send = post) -> None:
        super().__init__(store, namespace, every, source=source)
        self.send = send

    def run(self, now: float) -> int:
        changed = 0
        stop_sending = time.monotonic() + SENDING_BUDGET
        for namespace in self.store.alert_scope(self.namespace):
            rules = {rule.name: rule for rule in self.store.list_alerts(namespace)}
            for rule in rules.values():
                verdict, delivery = self.store.evaluate_alert(rule)
                if delivery is not None:
                    changed += 1
                    log.warning("alert %s/%s %s: %s", namespace, rule.name, delivery.event,
                                verdict.message)
            for due in self.store.due_alert_deliveries(namespace, DELIVERIES_PER_PASS):
                owner = rules.get(due.rule)
                if owner is not None and time.monotonic() < stop_sending:
                    deliver(self.store, owner, due, self.send)
        return changed


def deliver(
    store: Store, rule: AlertRule, delivery: AlertDelivery, send: Send = post, *,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> AlertDelivery:
    """One attempt of ``delivery``, recorded; the delivery as it stands after it (a
    failure is tried again later while it has attempts left of ``max_attempts``)."""
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: signature(rule.secret, body), DELIVERY_HEADER: str(delivery.id)}
    attempts = delivery.attempts + 1
    code: int | None = None
    error: str | None = None
    try:
        code = send(delivery.url, body, headers)
    except Exception as exc:  # a receiver that is down, a timeout, a bad address
        error = f"{type(exc).__name__}: {exc}"[:500]
    now = store.now()
    if code is not None and 200 <= code < 300:
        status, next_at = DeliveryStatus.DELIVERED, now
    else:
        error = error or f"the receiver answered {code}"
        status = (DeliveryStatus.FAILED if attempts >= max_attempts
                  else DeliveryStatus.PENDING)
        next_at = now + retry_delay(attempts)
        log.warning("alert %s/%s: delivery %d attempt %d failed (%s)%s", rule.namespace,
                    rule.name, delivery.id, attempts, error,
                    "; giving up" if status is DeliveryStatus.FAILED else "")
    recorded = store.record_alert_delivery(delivery.id, status, next_at, code, error)
    return recorded if recorded is not None else delivery
