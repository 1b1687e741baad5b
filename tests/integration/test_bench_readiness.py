"""The schedules benchmark's steady window: when the sharing schedulers count as ready,
and how many fire times a window moved later holds."""

from __future__ import annotations

import pytest

import taskwheel
from taskwheel.bench.schedules import _shared_out, fires_within
from taskwheel.scheduler import partition_lease


def hold(app: taskwheel.App, partitions: range, pid: int) -> None:
    for k in partitions:
        assert app.store.elect(app.namespace, partition_lease(k), f"host:{pid}:x", 60)


def test_sharing_schedulers_are_ready_once_the_partitions_are_shared_out_evenly(
    app: taskwheel.App,
) -> None:
    hold(app, range(0, 14), 101)
    assert not _shared_out(app.store, app.namespace, {101, 102})  # two still missing
    hold(app, range(14, 16), 102)
    # Both hold some, but the first has not handed over its surplus yet.
    assert not _shared_out(app.store, app.namespace, {101, 102})
    for k in range(8, 14):
        app.store.resign(app.namespace, partition_lease(k), "host:101:x")
    hold(app, range(8, 14), 102)
    assert _shared_out(app.store, app.namespace, {101, 102})
    assert not _shared_out(app.store, app.namespace, {101, 102, 103})  # one not in yet


@pytest.mark.parametrize(("start", "end", "expected"), [
    (0, 131, 3),  # 10, 70, 130
    (11, 131, 2),  # moved past the first fire
    (10, 130, 2),  # the start counts, the end does not
    (131, 200, 1),  # 190
    (0, 10, 0),
])
def test_a_window_holds_the_fire_times_inside_it(start: int, end: int, expected: int) -> None:
    assert fires_within(10, 60, start, end) == expected
