"""Worker, scheduler and maintenance settings refuse bad values when built directly,
the same way `build` does, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from taskwheel.errors import InvalidInput
from taskwheel.maintenance import MaintenanceSettings
from taskwheel.scheduler import SchedulerSettings
from taskwheel.schedules import DEFAULT_MISFIRE_GRACE, ScheduleDefinition
from taskwheel.tasks import Pool
from taskwheel.worker import WorkerSettings


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queues": ()}, "queues"),
        ({"queues": "emails"}, "queues"),  # a string is not a list of queues
        ({"queues": ("ok", "not ok!")}, "queue"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency"),
        ({"batch_size": -1}, "batch_size"),
        ({"pool": "fork"}, "pool"),
        ({"lease_ttl": 0}, "lease_ttl"),
        ({"lease_ttl": -5.0}, "lease_ttl"),
        ({"lease_ttl": float("nan")}, "lease_ttl"),
        ({"lease_ttl": 1.0, "heartbeat": 2.0}, "heartbeat"),
        ({"heartbeat": 0}, "heartbeat"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"grace": -1}, "grace"),
        ({"cancel_grace": float("inf")}, "cancel_grace"),
        ({"burst": "yes"}, "burst"),
        ({"maintenance": {"retention": 1}}, "maintenance"),
    ],
)
def test_worker_settings_built_directly_refuse_bad_values(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        WorkerSettings(**options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"lease_ttl": 0}, "lease_ttl"),
        ({"lease_ttl": 1.0, "renew": 1.0}, "renew"),
        ({"renew": -0.1}, "renew"),
        ({"standby_poll": 0}, "standby_poll"),
        ({"tick": 0}, "tick"),
        ({"tick": 1.0, "horizon": 5.0}, "horizon"),
        ({"partitions": 0}, "partitions"),
        ({"partitions": 5000}, "partitions"),
        ({"partitions": True}, "partitions"),
        ({"maintenance": 1.0}, "maintenance"),
    ],
)
def test_scheduler_settings_built_directly_refuse_bad_values(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        SchedulerSettings(**options)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "field", ["promote_every", "rescue_every", "expire_every", "release_every",
              "prune_every", "retention"],
)
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "soon", None])
def test_maintenance_settings_refuse_intervals_that_are_not_positive_durations(
    field: str, value: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        MaintenanceSettings(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_build_and_direct_construction_give_the_same_settings() -> None:
    assert WorkerSettings.build(
        queues=["a", "b"], concurrency=4, pool="thread", lease_ttl="10s", heartbeat="2s",
        poll_interval="250ms", grace="0s", cancel_grace="1s",
    ) == WorkerSettings(
        queues=("a", "b"), concurrency=4, pool=Pool.THREAD, lease_ttl=10, heartbeat=2,
        poll_interval=0.25, grace=0, cancel_grace=1,
    )
    assert SchedulerSettings.build(lease_ttl="3s", retention="1h", maintenance="2s") == (
        SchedulerSettings(lease_ttl=3, renew=1, maintenance=MaintenanceSettings(
            promote_every=2, rescue_every=2, expire_every=2, release_every=2, retention=3600,
        ))
    )
    assert SchedulerSettings() == SchedulerSettings.build()


def test_build_names_the_option_it_could_not_read() -> None:
    with pytest.raises(InvalidInput) as caught:
        SchedulerSettings.build(maintenance="often")
    assert caught.value.field == "maintenance"
    with pytest.raises(InvalidInput) as caught:
        MaintenanceSettings.build(every="5s", prune_every="-1m")
    assert caught.value.field == "prune_every"
    assert MaintenanceSettings.build(every="5s", rescue_every="1s") == MaintenanceSettings(
        promote_every=5, rescue_every=1, expire_every=5, release_every=5,
    )


def test_the_default_misfire_grace_covers_a_scheduler_failover() -> None:
    # A standby fires a dead scheduler's schedules once their partition lease lapses
    # and it next looks: up to lease_ttl + standby_poll after the death, plus the time
    # to load and fire (measured: 0.1 s at most, taken twice here). Later than the
    # grace, a run_once instant would be folded into the ones after it.
    for settings in (SchedulerSettings(), SchedulerSettings.build()):
        worst = settings.lease_ttl + settings.standby_poll + 0.2
        assert worst < DEFAULT_MISFIRE_GRACE
    assert ScheduleDefinition.__dataclass_fields__["misfire_grace"].default == (
        DEFAULT_MISFIRE_GRACE
    )


def test_a_horizon_too_short_names_the_least_one_allowed() -> None:
    with pytest.raises(InvalidInput) as caught:
        SchedulerSettings(tick=1.0, horizon=5.0)
    assert caught.value.reason == "must be at least ten ticks (10s), got 5s"
