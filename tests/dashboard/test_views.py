"""What the dashboard's pages compute, without a server: the throughput chart, the
graph of a workflow run, the dead-letter groups, the topics a stream accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import taskwheel
from taskwheel.gates import GateKind, Pause
from taskwheel.jobs import QueueStats, StartWaits, Stats
from taskwheel.server.dashboard.topics import TopicRenderer, parse_topics
from taskwheel.server.dashboard.views import (
    age,
    chart,
    error_signature,
    layout_graph,
    merge_waits,
    queue_rows,
)
from taskwheel.stores.sqlite.store import SQLiteStore

app = taskwheel.App("sqlite://:memory:")


@app.task
def ping() -> str:
    return "pong"


def test_the_chart_puts_each_minute_in_its_place_and_the_current_minute_last() -> None:
    now = 10_000 * 60 + 30
    rows = [(now - 30, "succeeded", 4), (now - 90, "failed", 2), (now - 90, "timed_out", 1),
            (now - 90, "cancelled", 9), (now - 3600 * 2, "succeeded", 7)]

    drawn = chart(rows, now, minutes=60)

    assert drawn.succeeded[-1] == 4
    assert sum(drawn.succeeded) == 4
    assert drawn.failed[-2] == 3
    assert sum(drawn.failed) == 3
    assert drawn.top == 4
    points = drawn.points(drawn.succeeded).split()
    assert len(points) == 60
    assert points[-1] == "600.0,0.0"  # the peak at the top right
    assert points[0] == "0.0,160.0"


def test_the_graph_places_steps_in_columns_by_depth_and_draws_every_edge() -> None:
    steps = {"extract": [], "clean": ["extract"], "report": ["extract"],
             "load": ["clean", "report"], "notify": ["load", "extract"]}

    graph = layout_graph(steps, {"extract": "succeeded", "clean": "running"})

    column = {node.name: node.x for node in graph.nodes}
    assert column["extract"] < column["clean"] == column["report"] < column["load"] \
        < column["notify"]
    assert {node.name: node.status for node in graph.nodes}["clean"] == "running"
    assert {node.name: node.status for node in graph.nodes}["load"] == "waiting"
    assert len(graph.edges) == 6
    for edge in graph.edges:
        assert edge.x1 < edge.x2  # every edge runs left to right
    assert graph.width >= max(node.x for node in graph.nodes) + graph.node_width


def test_dead_jobs_of_one_kind_of_error_fall_in_one_group() -> None:
    assert error_signature("RuntimeError: card declined for order 17") == \
        error_signature("RuntimeError: card declined for order 18\nTraceback ...")
    assert error_signature("KeyError: 'user-1'") == error_signature("KeyError: 'admin'")
    assert error_signature("ValueError: x") != error_signature("TypeError: x")
    assert error_signature(None) == "(no error recorded)"


def test_the_queues_page_has_every_queue_with_jobs_waits_or_a_pause_by_priority() -> None:
    stats = Stats(queues=[QueueStats("mail", {"queued": 3, "running": 1}, {5: 2, 0: 1}, 12.0,
                                     {5: {"queued": 2}, 0: {"queued": 1, "running": 1}})],
                  workers=[])
    waits = [StartWaits("mail", 0, 3, 2.0, 5.0), StartWaits("mail", 9, 1, 6.0, 6.0),
             StartWaits("gone", 1, 2, 1.0, 1.5)]
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    pauses = [Pause("ns", GateKind.QUEUE, "idle", moment, 0),
              Pause("ns", GateKind.TASK, "mail", moment, 4)]

    rows = {row.queue: row for row in queue_rows(stats, waits, pauses)}

    assert list(rows) == ["gone", "idle", "mail"]
    mail = rows["mail"]
    assert (mail.counts, mail.oldest_ready_age, mail.pause) == (stats.queues[0].counts, 12.0,
                                                                 None)
    assert [(p.priority, p.counts) for p in mail.priorities] == [
        (9, {}), (5, {"queued": 2}), (0, {"queued": 1, "running": 1})]
    assert mail.waits == merge_waits(waits[:2])
    assert mail.waits is not None
    assert (mail.waits.count, mail.waits.mean, mail.waits.longest) == (4, 3.0, 6.0)
    assert rows["idle"].pause == pauses[0]
    assert (rows["idle"].counts, rows["idle"].priorities) == ({}, [])
    assert merge_waits([]) is None


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (5, "5 s"), (125, "2 min"), (3 * 3600 + 120, "3 h 2 min"), (3 * 86400, "3 d"),
])
def test_ages_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert age(seconds) == text


def test_a_stream_takes_only_topics_it_knows() -> None:
    assert parse_topics("overview, job:12,jobs:1.2.3,run:4") == [
        "overview", "job:12", "jobs:1.2.3", "run:4"]
    for bad in ("", "job:0", "job:x", "jobs:1..2", "jobs:", "everything", "run:-1",
                "jobs:" + ".".join(["1"] * 501)):
        with pytest.raises(ValueError, match="topic"):
            parse_topics(bad)


def test_times_are_shown_in_utc() -> None:
    from taskwheel.server.dashboard.views import when
    moment = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)
    assert when(moment) == "2026-03-29 03:00:00"


def test_one_refresh_reads_a_namespaces_statistics_once_for_all_its_topics(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(str(tmp_path / "dashboard.db"))
    store.migrate()
    try:
        [job] = store.enqueue([ping.prepare()])
        reads: list[str] = []
        real_stats = store.stats

        def counted_stats(namespace: str) -> Stats:
            reads.append(namespace)
            return real_stats(namespace)

        store.stats = counted_stats  # type: ignore[method-assign]
        render = TopicRenderer(store)
        wanted = [("default", "overview"), ("default", "queues"), ("default", "workers"),
                  ("default", f"job:{job.id}"), ("default", "job:999999")]

        bodies = render(wanted)

        assert reads == ["default"]
        assert set(bodies) == set(wanted[:4])  # a job that does not exist is left out
        assert json.loads(bodies[("default", f"job:{job.id}")])["status"] == "queued"
        assert "default" in json.loads(bodies[("default", "queues")])["html"]
    finally:
        store.close()
