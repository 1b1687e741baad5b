"""The three ways PostgreSQL writes a request without an idempotency key store the same
row: alone (insert_job, from plain parameters), in a small batch (insert_jobs, from one
JSON parameter) and in a big one (COPY, its times made absolute by the store)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pg_server import postgres_url, with_schema
from taskwheel.clock import ManualClock
from taskwheel.jobs import DeadlinePolicy, Guarantee, NewJob
from taskwheel.stores.postgres import PostgresStore
from taskwheel.stores.postgres.store import _COPY_FROM

NOW = 1_900_000_000.0

# Every column a request sets, away from its default where it has one.
COLUMNS = ("namespace", "task", "queue", "args::text", "kwargs::text", "status", "priority",
           "run_at", "deadline", "timeout", "max_attempts", "guarantee", "deadline_policy",
           "idempotency_key", "created_at", "trace_parent", "fairness_key", "rank_offset",
           "fair_pass", "attempt", "fence", "blocked")


def request(**changes: Any) -> NewJob:
    args, kwargs = [1, "two", {"three": 3.5}], {"k": [None, True]}
    base = NewJob(
        task="pg.paths", args=args, kwargs=kwargs, args_json=json.dumps(args),
        kwargs_json=json.dumps(kwargs), queue="paths", priority=7, namespace="paths",
        max_attempts=9, guarantee=Guarantee.AT_MOST_ONCE,
        deadline_policy=DeadlinePolicy.RUN_LATE, delay=0.0, deadline_in=120.0,
        timeout=30.5, trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(with_schema(postgres_url(), schema), clock=ManualClock(NOW))
    opened.migrate()
    yield opened
    opened.close()


def stored(admin: psycopg.Connection[tuple[Any, ...]], schema: str,
           job_id: int) -> tuple[Any, ...]:
    row = admin.execute(f'SELECT {", ".join(COLUMNS)} FROM "{schema}".jobs WHERE id = %s',
                        (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("changes", [
    {},  # ready now, with a deadline relative to the store's clock
    {"delay": 45.0},  # due later
    {"run_at": NOW + 600.0, "deadline": NOW + 900.0, "deadline_in": None},  # absolute times
    {"timeout": None, "trace_parent": None, "deadline_in": None},  # nothing optional
], ids=["ready", "delayed", "absolute", "bare"])
def test_alone_in_a_batch_and_copied_a_request_is_the_same_row(
    store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]], schema: str,
    changes: dict[str, Any],
) -> None:
    new = request(**changes)
    alone = store.enqueue([new])[0]
    batched = store.enqueue([new, new])[0]
    copied = store.enqueue([new] * _COPY_FROM)[0]
    rows = {way: stored(admin, schema, job.id) for way, job in
            (("alone", alone), ("batch", batched), ("copy", copied))}
    assert rows["alone"] == rows["batch"] == rows["copy"]
    # The records the enqueues answered, built without reading the rows back, agree.
    assert dataclasses.replace(alone, id=0) == dataclasses.replace(batched, id=0) \
        == dataclasses.replace(copied, id=0)


def test_a_lone_request_with_a_time_that_is_not_finite_is_refused_as_a_batch_would_be(
    store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]], schema: str
) -> None:
    for changes in ({"delay": float("nan")}, {"timeout": float("inf")}):
        with pytest.raises(ValueError, match="Out of range float"):
            store.enqueue([request(**changes)])
        with pytest.raises(ValueError, match="Out of range float"):
            store.enqueue([request(**changes), request()])
    row = admin.execute(f'SELECT count(*) FROM "{schema}".jobs').fetchone()
    assert row is not None
    assert row[0] == 0
