"""Alerts without Prometheus: rules kept in the store, judged by the maintenance lease
holder, delivered to a webhook.

A rule (`AlertRule`) watches one thing of one namespace:

- ``failure_rate``: the share of a task's attempts that failed over the last
  ``window`` is above ``threshold`` percent (with at least ``min_attempts`` attempts);
- ``dlq_growing``: more than ``threshold`` jobs (of ``queue``, if given) went dead in the
  last ``window``;
- ``oldest_ready``: the oldest ready job of ``queue`` (at ``priority``, if given) has
  been ready for longer than ``threshold`` seconds (starvation);
- ``schedule_missed``: a schedule (``schedule``, or any) is past its fire time by more
  than ``threshold`` seconds: nobody fired it;
- ``no_worker``: no live worker serves ``queue``.

The decisions here are pure: `judge` turns a `Reading` (what the store read) into a
`Verdict`. The store moves a rule between ``ok`` and ``firing`` with a compare-and-set,
and writes the delivery of each change in the same transaction under a unique key
(rule, firing number, event): a firing is delivered once, and so is its resolution,
whoever evaluates. Deliveries are JSON bodies signed with HMAC-SHA256 of the rule's
secret (`signature`), retried with exponential backoff (`retry_delay`) up to
`MAX_DELIVERY_ATTEMPTS`, each attempt recorded.

Example:
    >>> rule = new_alert_rule("default", "report-failing", "failure_rate", task="report",
    ...                       threshold=20, window="10m", url="https://hooks.example/a")
    >>> judge(rule, Reading(total=10, failed=3)).breached
    True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from taskwheel.durations import DurationLike, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.validators import validate_name

MAX_DELIVERY_ATTEMPTS = 8
SIGNATURE_HEADER = "X-Taskwheel-Signature"
DELIVERY_HEADER = "X-Taskwheel-Delivery"


class AlertKind(StrEnum):
    FAILURE_RATE = "failure_rate"
    DLQ_GROWING = "dlq_growing"
    OLDEST_READY = "oldest_ready"
    SCHEDULE_MISSED = "schedule_missed"
    NO_WORKER = "no_worker"


class AlertState(StrEnum):
    OK = "ok"
    FIRING = "firing"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


# What each kind needs besides its namespace, and its threshold's default.
_NEEDS: dict[AlertKind, tuple[str, ...]] = {
    AlertKind.FAILURE_RATE: ("task",),
    AlertKind.DLQ_GROWING: (),
    AlertKind.OLDEST_READY: ("queue",),
    AlertKind.SCHEDULE_MISSED: (),
    AlertKind.NO_WORKER: ("queue",),
}
_DEFAULT_THRESHOLD = {AlertKind.FAILURE_RATE: 10.0, AlertKind.DLQ_GROWING: 0.0,
                      AlertKind.OLDEST_READY: 300.0, AlertKind.SCHEDULE_MISSED: 60.0,
                      AlertKind.NO_WORKER: 0.0}


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule as defined (``secret`` signs its deliveries), and where it stands:
    ``state``, ``firing`` (how many times it fired: the number of the current or last
    firing), ``changed_at``, and the last value read (``value``, at ``evaluated_at``)."""

    namespace: str
    name: str
    kind: AlertKind
    url: str
    secret: str
    task: str | None = None
    queue: str | None = None
    priority: int | None = None
    schedule: str | None = None
    threshold: float = 0.0
    window: float = 600.0
    min_attempts: int = 5
    created_at: datetime | None = None
    state: AlertState = AlertState.OK
    firing: int = 0
    changed_at: datetime | None = None
    value: float | None = None
    evaluated_at: datetime | None = None

    def spec(self) -> dict[str, Any]:
        """What the rule watches, as stored (JSON)."""
        return {"task": self.task, "queue": self.queue, "priority": self.priority,
                "schedule": self.schedule, "threshold": self.threshold,
                "window": self.window, "min_attempts": self.min_attempts}

    def describe(self) -> str:
        """The condition, in words."""
        where = f" of queue {self.queue}" if self.queue else ""
        band = f" at priority {self.priority}" if self.priority is not None else ""
        if self.kind is AlertKind.FAILURE_RATE:
            return (f"more than {self.threshold:g}% of task {self.task}'s attempts failed "
                    f"in {_span(self.window)}")
        if self.kind is AlertKind.DLQ_GROWING:
            return f"more than {self.threshold:g} jobs{where} went dead in {_span(self.window)}"
        if self.kind is AlertKind.OLDEST_READY:
            return f"a ready job{where}{band} has waited more than {_span(self.threshold)}"
        if self.kind is AlertKind.SCHEDULE_MISSED:
            which = f"schedule {self.schedule}" if self.schedule else "a schedule"
            return f"{which} is more than {_span(self.threshold)} past its fire time"
        return f"no live worker serves queue {self.queue}"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the secret."""
        return {"namespace": self.namespace, "name": self.name, "kind": self.kind.value,
                "url": self.url, **self.spec(), "condition": self.describe(),
                "state": self.state.value, "firing": self.firing,
                "created_at": _iso(self.created_at), "changed_at": _iso(self.changed_at),
                "value": self.value, "evaluated_at": _iso(self.evaluated_at)}


def new_alert_rule(
    namespace: str, name: str, kind: AlertKind | str, *, url: str, secret: str | None = None,
    task: str | None = None, queue: str | None = None, priority: int | None = None,
    schedule: str | None = None, threshold: float | str | None = None,
    window: DurationLike = "10m", min_attempts: int = 5,
) -> AlertRule:
    """A validated rule (`InvalidInput` naming the field); a secret is made when none is
    given. ``threshold`` is a percent (failure_rate), a count (dlq_growing) or seconds
    (oldest_ready, schedule_missed; a duration such as ``"5m"`` is accepted there)."""
    validate_name(namespace, "namespace")
    validate_name(name, "name")
    try:
        chosen = AlertKind(kind)
    except ValueError:
        raise InvalidInput("kind", f"must be one of {', '.join(k.value for k in AlertKind)}, "
                           f"got {kind!r}") from None
    given = {"task": task, "queue": queue, "schedule": schedule}
    for field in _NEEDS[chosen]:
        if given[field] is None:
            raise InvalidInput(field, f"a {chosen.value} alert needs a {field}")
    for field, value in given.items():
        if value is not None:
            validate_name(value, field)
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise InvalidInput("priority", f"must be a whole number, got {priority!r}")
    limit = _threshold(chosen, threshold)
    seconds = parse_duration(window, "window", allow_zero=False)
    if isinstance(min_attempts, bool) or not isinstance(min_attempts, int) or min_attempts < 1:
        raise InvalidInput("min_attempts", f"must be a whole number >= 1, got {min_attempts!r}")
    return AlertRule(namespace=namespace, name=name, kind=chosen, url=_url(url),
                     secret=_secret(secret), task=task, queue=queue, priority=priority,
                     schedule=schedule, threshold=limit, window=seconds,
                     min_attempts=min_attempts)


def _threshold(kind: AlertKind, threshold: float | str | None) -> float:
    if threshold is None:
        return _DEFAULT_THRESHOLD[kind]
    if kind in (AlertKind.OLDEST_READY, AlertKind.SCHEDULE_MISSED):
        return parse_duration(threshold, "threshold", allow_zero=True)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            math.isfinite(threshold) and threshold >= 0):
        raise InvalidInput("threshold", f"must be a number >= 0, got {threshold!r}")
    if kind is AlertKind.FAILURE_RATE and threshold >= 100:
        raise InvalidInput("threshold", f"a percentage below 100, got {threshold!r}")
    return float(threshold)


def _url(url: object) -> str:
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidInput("url", f"must be an http(s) URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(
            ord(char) < 33 for char in url):
        raise InvalidInput("url", f"must be an http(s) URL with a host, got {url!r}")
    return url


def _secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200 or not secret.isprintable():
        raise InvalidInput("secret", "must be 16-200 printable characters")
    return secret


# -- judging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """What the store read for a rule: attempts (failure_rate), a count (dlq_growing),
    the first ready time (oldest_ready), late schedules (schedule_missed) and live
    workers (no_worker), as the kind needs; ``now``: the store's instant."""

    now: float = 0.0
    total: int = 0
    failed: int = 0
    count: int = 0
    first_ready: float | None = None
    late: tuple[tuple[str, float], ...] = ()  # (schedule, its fire time)
    live_workers: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    breached: bool
    value: float
    message: str


def judge(rule: AlertRule, reading: Reading) -> Verdict:
    """Whether ``rule``'s condition holds for ``reading``, with the value it is judged
    on and a sentence for the delivery."""
    if rule.kind is AlertKind.FAILURE_RATE:
        rate = 100.0 * reading.failed / reading.total if reading.total else 0.0
        breached = reading.total >= rule.min_attempts and rate > rule.threshold
        return Verdict(breached, round(rate, 3),
                       f"{reading.failed} of {reading.total} attempts of task {rule.task} "
                       f"failed in {_span(rule.window)} ({rate:.1f}%)")
    if rule.kind is AlertKind.DLQ_GROWING:
        return Verdict(reading.count > rule.threshold, float(reading.count),
                       f"{reading.count} jobs went dead in {_span(rule.window)}")
    if rule.kind is AlertKind.OLDEST_READY:
        age = 0.0 if reading.first_ready is None else max(0.0, reading.now - reading.first_ready)
        return Verdict(age > rule.threshold, round(age, 3),
                       f"the oldest ready job of queue {rule.queue} has waited {_span(age)}")
    if rule.kind is AlertKind.SCHEDULE_MISSED:
        late = [(name, reading.now - at) for name, at in reading.late]
        worst = max((lateness for _, lateness in late), default=0.0)
        names = ", ".join(name for name, _ in late)
        return Verdict(bool(late), round(worst, 3),
                       f"past their fire time, not fired: {names}" if late
                       else "every schedule fired on time")
    return Verdict(reading.live_workers == 0, float(reading.live_workers),
                   f"{reading.live_workers} live workers serve queue {rule.queue}")


# -- delivering ----------------------------------------------------------------------------------


def delivery_body(rule: AlertRule, event: str, firing: int | None, verdict: Verdict | None,
                  now: float) -> str:
    """The JSON a delivery sends: the rule, the event (``firing``, ``resolved`` or
    ``test``), the firing's number, the value and a sentence."""
    return json.dumps({
        "alert": rule.name, "namespace": rule.namespace, "kind": rule.kind.value,
        "event": event, "firing": firing, "condition": rule.describe(),
        "value": None if verdict is None else verdict.value,
        "threshold": rule.threshold,
        "message": "a test delivery" if verdict is None else verdict.message,
        "at": _iso(datetime.fromtimestamp(now, UTC)),
    }, separators=(",", ":"), sort_keys=True)


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header: ``sha256=`` and the HMAC-SHA256 of the body
    under the rule's secret, in hex (what a receiver recomputes and compares)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 5 s, 10 s, 20 s,
    ... at most 10 minutes."""
    return float(min(600, 5 * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One delivery of a rule's event, and how its attempts went."""

    id: int
    namespace: str
    rule: str
    firing: int | None
    event: str
    url: str
    body: str
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "namespace": self.namespace, "rule": self.rule,
                "firing": self.firing, "event": self.event, "url": self.url,
                "body": json.loads(self.body), "status": self.status.value,
                "attempts": self.attempts, "next_at": _iso(self.next_at),
                "last_status_code": self.last_status_code, "last_error": self.last_error,
                "created_at": _iso(self.created_at), "delivered_at": _iso(self.delivered_at)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _span(seconds: float) -> str:
    whole = round(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole // 3600} h"
