"""Alert rules, pure: what each kind needs (refused with the field named otherwise), how a
reading is judged, how deliveries are signed and spaced."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from taskwheel.alerts import (
    AlertKind,
    Reading,
    delivery_body,
    judge,
    new_alert_rule,
    retry_delay,
    signature,
)
from taskwheel.errors import InvalidInput

URL = "https://hooks.example/taskwheel"


@pytest.mark.parametrize(("options", "field"), [
    ({"kind": "failure_rate"}, "task"),
    ({"kind": "oldest_ready"}, "queue"),
    ({"kind": "no_worker"}, "queue"),
    ({"kind": "sometimes"}, "kind"),
    ({"kind": "dlq_growing", "url": "ftp://hooks.example/x"}, "url"),
    ({"kind": "dlq_growing", "url": "http:///no-host"}, "url"),
    ({"kind": "dlq_growing", "threshold": -1}, "threshold"),
    ({"kind": "failure_rate", "task": "t", "threshold": 100}, "threshold"),
    ({"kind": "oldest_ready", "queue": "q", "threshold": "soon"}, "threshold"),
    ({"kind": "dlq_growing", "window": "0s"}, "window"),
    ({"kind": "dlq_growing", "secret": "short"}, "secret"),
    ({"kind": "dlq_growing", "queue": "no spaces"}, "queue"),
    ({"kind": "failure_rate", "task": "t", "min_attempts": 0}, "min_attempts"),
])
def test_a_bad_rule_is_refused_naming_its_field(options: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"url": URL, **options}
    kind = arguments.pop("kind")
    with pytest.raises(InvalidInput) as refused:
        new_alert_rule("default", "r", kind, **arguments)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_a_rule_gets_a_random_secret_and_durations_in_seconds() -> None:
    rule = new_alert_rule("default", "r", "oldest_ready", url=URL, queue="emails",
                          threshold="5m", window="1h")
    assert (rule.threshold, rule.window) == (300.0, 3600.0)
    assert len(rule.secret) >= 32
    assert rule.secret != new_alert_rule("default", "r", "no_worker", url=URL,
                                         queue="q").secret
    assert "secret" not in rule.to_dict()


def test_a_failure_rate_needs_its_minimum_of_attempts() -> None:
    rule = new_alert_rule("default", "r", "failure_rate", url=URL, task="t", threshold=50,
                          min_attempts=4)
    assert not judge(rule, Reading(total=3, failed=3)).breached
    assert judge(rule, Reading(total=4, failed=3)).breached
    assert not judge(rule, Reading(total=4, failed=2)).breached  # 50% is not above 50%


def test_each_kind_is_judged_on_its_own_figure() -> None:
    def rule(kind: AlertKind, **options: object) -> object:
        return new_alert_rule("default", "r", kind, url=URL, **options)  # type: ignore[arg-type]

    dlq = rule(AlertKind.DLQ_GROWING, threshold=2)
    assert [judge(dlq, Reading(count=n)).breached for n in (2, 3)] == [False, True]  # type: ignore[arg-type]
    starving = rule(AlertKind.OLDEST_READY, queue="q", threshold=60)
    assert judge(starving, Reading(now=100.0, first_ready=None)).value == 0  # type: ignore[arg-type]
    assert judge(starving, Reading(now=100.0, first_ready=30.0)).breached  # type: ignore[arg-type]
    missed = rule(AlertKind.SCHEDULE_MISSED)
    verdict = judge(missed, Reading(now=500.0, late=(("a", 300.0), ("b", 400.0))))  # type: ignore[arg-type]
    assert (verdict.breached, verdict.value) == (True, 200.0)
    alone = rule(AlertKind.NO_WORKER, queue="q")
    assert [judge(alone, Reading(live_workers=n)).breached for n in (0, 1)] == [True, False]  # type: ignore[arg-type]


def test_a_delivery_is_signed_with_hmac_sha256_of_its_body() -> None:
    rule = new_alert_rule("default", "r", "no_worker", url=URL, queue="q",
                          secret="0123456789abcdef")
    body = delivery_body(rule, "firing", 3, judge(rule, Reading()), 1_700_000_000.0).encode()
    expected = hmac.new(b"0123456789abcdef", body, hashlib.sha256).hexdigest()
    assert signature(rule.secret, body) == f"sha256={expected}"
    sent = json.loads(body)
    assert (sent["event"], sent["firing"], sent["at"]) == ("firing", 3, "2023-11-14T22:13:20Z")


def test_retries_back_off_exponentially_to_ten_minutes() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay(20) == 600
