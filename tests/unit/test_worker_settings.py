"""Worker settings are checked when they are built, before any worker runs."""

from __future__ import annotations

import pytest

import taskwheel
from taskwheel import Pool


def test_pool_option_is_validated() -> None:
    with pytest.raises(taskwheel.InvalidInput, match="pool"):
        taskwheel.WorkerSettings.build(pool="fork")
    with pytest.raises(taskwheel.InvalidInput, match="heartbeat"):
        taskwheel.WorkerSettings.build(lease_ttl="1s", heartbeat="2s")
    assert Pool("process") is Pool.PROCESS
