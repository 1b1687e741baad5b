"""Alerts on both stores, with an injected clock and a local webhook receiver: each rule
kind fires on its situation and resolves when it passes; a firing and its resolution are
each delivered once, signed, whoever evaluates; a failing receiver is retried with
backoff, every attempt recorded; only the maintenance lease holder evaluates."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from contract.backends import BACKENDS, DATABASE_URLS
from taskwheel.alerts import (
    MAX_DELIVERY_ATTEMPTS,
    SIGNATURE_HEADER,
    AlertRule,
    AlertState,
    DeliveryStatus,
    new_alert_rule,
    signature,
)
from taskwheel.clock import ManualClock
from taskwheel.jobs import AttemptOutcome, JobTemplate, NewJob, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.maintenance import Maintenance, MaintenanceSettings
from taskwheel.maintenance.alerter import Alerter
from taskwheel.schedules import ScheduleDefinition, build_trigger
from taskwheel.stores.base import Store, WorkerRegistration

from .command_line import taskwheel as run

T0 = 1_700_000_000.0
NS = "alerting"
SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """A webhook receiver on loopback: records each request, answers the next status of
    ``answers`` (200 once they run out)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.server.shutdown()
    receiving.server.server_close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(backend: str, tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    opened = BACKENDS[backend](tmp_path, clock)
    opened.migrate()
    yield opened
    opened.close()


def rule(store: Store, receiver: Receiver, kind: str, **options: Any) -> AlertRule:
    return store.define_alert(new_alert_rule(NS, f"{kind}-rule", kind, url=receiver.url,
                                             secret=SECRET, **options))


def alerter(store: Store, holder: str = "m1") -> Alerter:
    return Alerter(store, NS, 15.0, source=holder)


def job(task: str = "report", queue: str = "default", priority: int = 0) -> NewJob:
    return NewJob(task=task, args=[], kwargs={}, args_json="[]", kwargs_json="{}",
                  queue=queue, priority=priority, namespace=NS, max_attempts=1)


def run_jobs(store: Store, *outcomes: JobStatus, task: str = "report") -> None:
    """Enqueue, claim and end one job of ``task`` per outcome (succeeded or dead)."""
    store.enqueue([job(task) for _ in outcomes])
    claimed = store.claim_jobs(NS, "w", ["default"], len(outcomes), 30).jobs
    store.finish_attempts([
        Outcome(j.id, j.fence, status,
                AttemptOutcome.SUCCEEDED if status is JobStatus.SUCCEEDED
                else AttemptOutcome.FAILED, error=None if status is JobStatus.SUCCEEDED
                else "boom")
        for j, status in zip(claimed, outcomes, strict=True)])


# -- firing and resolving, once ---------------------------------------------------------------


def test_a_failure_rate_fires_once_signed_and_resolves_once(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "failure_rate", task="report", threshold=50, window="10m",
         min_attempts=3)
    run_jobs(store, JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.DEAD)
    duty = alerter(store)

    assert duty.run(clock.now()) == 1
    duty.run(clock.now())  # still failing: nothing more to say

    [(headers, body)] = receiver.requests
    assert headers[SIGNATURE_HEADER] == signature(SECRET, body)
    sent = json.loads(body)
    assert (sent["alert"], sent["event"], sent["firing"]) == ("failure_rate-rule", "firing", 1)
    assert sent["value"] == pytest.approx(66.667)
    assert sent["message"] == "2 of 3 attempts of task report failed in 10 min (66.7%)"
    assert store.get_alert(NS, "failure_rate-rule").state is AlertState.FIRING

    clock.advance(601)  # the failures leave the window
    assert duty.run(clock.now()) == 1
    duty.run(clock.now())

    assert [(b["event"], b["firing"]) for b in receiver.bodies()] == [
        ("firing", 1), ("resolved", 1)]
    stored = store.get_alert(NS, "failure_rate-rule")
    assert (stored.state, stored.firing, stored.value) == (AlertState.OK, 1, 0.0)
    deliveries = store.list_alert_deliveries(NS, "failure_rate-rule")
    assert [(d.event, d.status, d.attempts) for d in deliveries] == [
        ("resolved", DeliveryStatus.DELIVERED, 1), ("firing", DeliveryStatus.DELIVERED, 1)]


def test_two_evaluators_deliver_a_firing_once(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "dlq_growing", threshold=0, window="1h")
    run_jobs(store, JobStatus.DEAD)

    first, second = alerter(store, "m1"), alerter(store, "m2")
    changed = first.run(clock.now()) + second.run(clock.now())

    assert changed == 1
    assert [b["event"] for b in receiver.bodies()] == ["firing"]


def test_only_the_maintenance_lease_holder_judges_the_rules(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "dlq_growing", threshold=0, window="1h")
    run_jobs(store, JobStatus.DEAD)
    settings = MaintenanceSettings()
    holders = [Maintenance(store, NS, name, settings, lease_ttl=15, renew=5, standby_poll=5)
               for name in ("m1", "m2")]

    for maintenance in holders:
        maintenance.step(clock.now())

    assert [m.holding for m in holders] == [True, False]
    assert [m.stats["alerted"] for m in holders] == [1, 0]
    assert len(receiver.requests) == 1


def test_a_failing_receiver_is_retried_with_backoff_each_attempt_recorded(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "dlq_growing", threshold=0, window="1h")
    run_jobs(store, JobStatus.DEAD)
    receiver.answers = [500, 503]
    duty = alerter(store)

    duty.run(clock.now())  # fires; the first attempt gets 500
    clock.advance(4)
    duty.run(clock.now())  # not yet: the retry is due 5 s after
    assert len(receiver.requests) == 1
    clock.advance(1)
    duty.run(clock.now())  # 503; the next is due 10 s after
    clock.advance(10)
    duty.run(clock.now())  # 200

    [delivery] = store.list_alert_deliveries(NS, "dlq_growing-rule")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED, 3, 200)
    assert len(receiver.requests) == 3
    assert len({body for _, body in receiver.requests}) == 1, "the same delivery each time"


def test_a_delivery_that_never_gets_through_fails_after_its_attempts(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "dlq_growing", threshold=0, window="1d")
    run_jobs(store, JobStatus.DEAD)
    receiver.answers = [500] * MAX_DELIVERY_ATTEMPTS
    duty = alerter(store)

    for _ in range(MAX_DELIVERY_ATTEMPTS + 2):
        duty.run(clock.now())
        clock.advance(600)

    [delivery] = store.list_alert_deliveries(NS, "dlq_growing-rule")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED,
                                                    MAX_DELIVERY_ATTEMPTS)
    assert delivery.last_error == "the receiver answered 500"


# -- each kind on its situation ---------------------------------------------------------------


def test_oldest_ready_fires_when_a_queue_starves(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "oldest_ready", queue="default", priority=5, threshold="5m")
    store.enqueue([job(priority=5), job(priority=0)])
    clock.advance(200)
    store.enqueue([job(priority=0)])
    clock.advance(200)

    verdict, delivery = store.evaluate_alert(store.get_alert(NS, "oldest_ready-rule"))

    assert verdict.breached
    assert verdict.value == 400
    assert delivery is not None
    claimed = store.claim_jobs(NS, "w", ["default"], 1, 30).jobs
    assert claimed[0].priority == 5
    verdict, delivery = store.evaluate_alert(store.get_alert(NS, "oldest_ready-rule"))
    assert not verdict.breached
    assert delivery is not None
    assert delivery.event == "resolved"


def test_a_schedule_past_its_fire_time_is_missed(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    trigger = build_trigger(every=60, start=datetime.fromtimestamp(T0, UTC))
    template = JobTemplate(task="report", args_json="[]", kwargs_json="{}", queue="default",
                           priority=0, max_attempts=1, guarantee="at_least_once",
                           deadline_policy="expire", timeout=None, deadline_in=None)
    store.upsert_schedule(ScheduleDefinition(namespace=NS, name="nightly", trigger=trigger,
                                             job=template))
    rule(store, receiver, "schedule_missed", threshold="2m")
    clock.advance(60 + 100)  # due 100 s ago: within the grace
    assert not store.evaluate_alert(store.get_alert(NS, "schedule_missed-rule"))[0].breached

    clock.advance(30)
    verdict, _ = store.evaluate_alert(store.get_alert(NS, "schedule_missed-rule"))

    assert verdict.breached
    assert verdict.message == "past their fire time, not fired: nightly"


def test_no_worker_fires_until_a_live_worker_serves_the_queue(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "no_worker", queue="emails")
    store.register_worker(WorkerRegistration("w1", NS, "h", 1, ["default"], 4, "async", 5.0))
    assert store.evaluate_alert(store.get_alert(NS, "no_worker-rule"))[0].breached

    store.register_worker(WorkerRegistration("w2", NS, "h", 2, ["emails"], 4, "async", 5.0))
    verdict, delivery = store.evaluate_alert(store.get_alert(NS, "no_worker-rule"))

    assert not verdict.breached
    assert delivery is not None
    assert delivery.event == "resolved"
    clock.advance(16)  # w2 stops heartbeating
    assert store.evaluate_alert(store.get_alert(NS, "no_worker-rule"))[0].breached


def test_a_rule_defined_again_keeps_its_state_and_removing_it_drops_its_deliveries(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    rule(store, receiver, "dlq_growing", threshold=0, window="1h")
    run_jobs(store, JobStatus.DEAD)
    alerter(store).run(clock.now())

    again = rule(store, receiver, "dlq_growing", threshold=5, window="1h")

    assert (again.state, again.firing, again.threshold) == (AlertState.FIRING, 1, 5.0)
    store.remove_alert(NS, again.name)
    assert store.list_alerts(NS) == []
    assert store.list_alert_deliveries(NS, again.name) == []


# -- the command line ---------------------------------------------------------------------------


def test_alerts_are_added_listed_tested_and_removed_from_the_command_line(
    backend: str, tmp_path: Path, receiver: Receiver
) -> None:
    opened = BACKENDS[backend](tmp_path, None)
    opened.migrate()
    opened.close()
    url = DATABASE_URLS[backend](tmp_path)

    added = run("alerts", "add", "starving", "--kind", "oldest_ready", "--queue", "emails",
                "--threshold", "5m", "--url", receiver.url, "--secret", SECRET,
                "--format", "json", url=url)
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["threshold"] == 300
    listed = json.loads(run("alerts", "list", "--format", "json", url=url).stdout)
    assert [(r["name"], r["state"], r["condition"]) for r in listed] == [
        ("starving", "ok", "a ready job of queue emails has waited more than 5 min")]
    assert "secret" not in listed[0]

    tested = run("alerts", "test", "starving", url=url)
    assert tested.exit_code == 0, tested.stderr
    [(headers, body)] = receiver.requests
    assert headers[SIGNATURE_HEADER] == signature(SECRET, body)
    assert json.loads(body)["event"] == "test"

    receiver.answers = [500]
    refused = run("alerts", "test", "starving", url=url)
    assert refused.exit_code == 1
    assert "the test delivery failed: the receiver answered 500" in refused.stderr

    bad = run("alerts", "add", "x", "--kind", "failure_rate", "--url", receiver.url,
              "--threshold", "lots", url=url)
    assert bad.exit_code == 2
    assert "--threshold: must be a number" in bad.stderr
    assert run("alerts", "remove", "starving", url=url).exit_code == 0
    assert json.loads(run("alerts", "list", "--format", "json", url=url).stdout) == []
    assert run("alerts", "remove", "starving", url=url).exit_code == 1
