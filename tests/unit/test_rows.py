"""The row readers build records positionally (a call naming every field costs CPython
several microseconds per record): each value must land in the field of its name."""

from __future__ import annotations

import dataclasses
from typing import Any

from taskwheel.jobs import DeadlinePolicy, Guarantee, Job, NewJob, epoch_datetime
from taskwheel.lifecycle import JobStatus
from taskwheel.stores import rows

_TIMES = {"run_at", "deadline", "lease_expires_at", "started_at", "created_at",
          "finished_at", "fire_at"}
_JSON = {"args", "kwargs", "result", "checkpoint"}


def _distinct_row() -> dict[str, Any]:
    """A stored row whose every column holds a value no other column holds."""
    row: dict[str, Any] = {}
    for n, field in enumerate(dataclasses.fields(Job)):
        if field.name in _TIMES:
            row[field.name] = 1_000_000.0 + n
        elif field.name in _JSON:
            row[field.name] = f'["{field.name}"]'
        elif field.name == "status":
            row[field.name] = JobStatus.RUNNING.value
        elif field.name == "guarantee":
            row[field.name] = Guarantee.AT_MOST_ONCE.value
        elif field.name == "deadline_policy":
            row[field.name] = DeadlinePolicy.RUN_LATE.value
        elif field.name == "cancel_requested":
            row[field.name] = 1
        elif field.name == "fair_pass":
            row[field.name] = 0.5 + n
        elif field.type in ("int", "int | None"):
            row[field.name] = 100 + n
        else:
            row[field.name] = f"value of {field.name}"
    return row


def test_a_row_becomes_a_record_field_by_field() -> None:
    row = _distinct_row()
    record = rows.job(row)
    for field in dataclasses.fields(Job):
        value, stored = getattr(record, field.name), row[field.name]
        if field.name in _TIMES:
            assert value == epoch_datetime(stored), field.name
        elif field.name in _JSON:
            assert value == [field.name], field.name
        elif field.name == "cancel_requested":
            assert value is True
        else:
            assert value == stored, field.name


def test_a_new_jobs_record_carries_its_request_field_by_field() -> None:
    new = NewJob(
        task="t", args=[1], kwargs={"k": 2}, args_json="[1]", kwargs_json='{"k":2}',
        queue="q", priority=7, namespace="ns", max_attempts=4,
        guarantee=Guarantee.AT_MOST_ONCE, deadline_policy=DeadlinePolicy.RUN_LATE,
        timeout=9.0, idempotency_key="key", trace_parent="00-tp", fairness_key="fk",
        rank_offset=3, fair_pass=1.5,
    )
    run_at, deadline, created = (epoch_datetime(t) for t in (10.0, 20.0, 5.0))
    record = rows.created_job(new, 42, JobStatus.SCHEDULED, run_at, deadline=deadline,
                              created_at=created)
    expected = {
        "id": 42, "namespace": "ns", "task": "t", "queue": "q", "args": [1],
        "kwargs": {"k": 2}, "status": JobStatus.SCHEDULED, "priority": 7, "run_at": run_at,
        "deadline": deadline, "timeout": 9.0, "max_attempts": 4, "attempt": 0, "fence": 0,
        "guarantee": Guarantee.AT_MOST_ONCE, "deadline_policy": DeadlinePolicy.RUN_LATE,
        "idempotency_key": "key", "worker_id": None, "lease_expires_at": None,
        "started_at": None, "created_at": created, "finished_at": None,
        "cancel_requested": False, "result": None, "last_error": None, "checkpoint": None,
        "schedule_id": None, "fire_at": None, "workflow_run_id": None, "step": None,
        "trace_parent": "00-tp", "fairness_key": "fk", "rank_offset": 3, "fair_pass": 1.5,
    }
    assert {f.name for f in dataclasses.fields(Job)} == set(expected)
    assert {name: getattr(record, name) for name in expected} == expected


def test_a_tasks_request_carries_each_option_in_its_field() -> None:
    from datetime import UTC, datetime

    from taskwheel.app import App
    from taskwheel.limits import ConcurrencyLimit
    from taskwheel.rates import RateLimit

    app = App("sqlite://:memory:", namespace="home")

    @app.task(queue="mail", concurrency=ConcurrencyLimit(key="to:{to}", limit=3),
              guarantee="at_most_once", deadline_policy="run_late",
              rate=RateLimit(key="api:{to}", rate="5/s", burst=4, cost=2))
    def send(to: str) -> None: ...

    new = send.request(["a@b.c"], {}, queue="urgent", priority=5,
                       at=datetime(2030, 1, 1, tzinfo=UTC), deadline="2h", timeout="30s",
                       max_attempts=7, idempotency_key="once", namespace="other",
                       fairness_key="customer:1")
    expected = {
        "task": "send", "args": ["a@b.c"], "kwargs": {}, "args_json": '["a@b.c"]',
        "kwargs_json": "{}", "queue": "urgent", "priority": 5, "namespace": "other",
        "max_attempts": 7, "guarantee": Guarantee.AT_MOST_ONCE,
        "deadline_policy": DeadlinePolicy.RUN_LATE, "delay": 0.0,
        "run_at": datetime(2030, 1, 1, tzinfo=UTC).timestamp(), "deadline": None,
        "deadline_in": 7200.0, "timeout": 30.0, "idempotency_key": "once",
        "trace_parent": None, "gate_key": "to:a@b.c", "gate_capacity": 3,
        "gate_breaker": None, "fairness_key": "customer:1", "rate_key": "api:a@b.c",
        "rate_cost": 2, "rate_declared": (5.0, 4), "rank_offset": 0, "fair_pass": 0.0,
    }
    assert {f.name for f in dataclasses.fields(NewJob)} == set(expected)
    assert {name: getattr(new, name) for name in expected} == expected
