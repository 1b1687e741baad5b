from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel.lifecycle import TERMINAL


@pytest.fixture
def app(tmp_path: Path) -> Iterator[taskwheel.App]:
    application = taskwheel.App(f"sqlite:///{tmp_path}/taskwheel.db", migrate=True)
    yield application
    application.close()


@contextmanager
def running_worker(app: taskwheel.App, **settings: Any) -> Iterator[taskwheel.Worker]:
    """A worker on a background thread, stopped (gracefully, then hard) on exit."""
    settings.setdefault("grace", "2s")
    worker = taskwheel.Worker(app, taskwheel.WorkerSettings.build(**settings))
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(install_signal_handlers=False)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(10)
        if thread.is_alive():
            worker.stop(hard=True)
            thread.join(5)
        assert not thread.is_alive(), "worker did not stop"
        assert not errors, f"worker crashed: {errors!r}"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy (a condition, not the passage of time)."""
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def finished(handle: taskwheel.JobHandle) -> bool:
    return handle.refresh().status in TERMINAL
