"""Step bodies for the workflow integration tests, importable by process-pool children."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import taskwheel

# Both middle steps of a diamond wait here for each other: they pass only if they run at
# the same time.
MIDDLE = threading.Barrier(2, timeout=10)


def record(path: str, name: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(name + "\n")


def numbers(path: str, count: int) -> list[int]:
    record(path, "numbers")
    return list(range(count))


def together(ctx: taskwheel.Context, path: str, factor: int) -> list[int]:
    """A middle step: meets the other middle step, then scales its input."""
    record(path, f"{ctx.step} waiting")
    MIDDLE.wait()
    return [factor * n for n in ctx.results["numbers"]]


def total(ctx: taskwheel.Context, path: str) -> dict[str, Any]:
    record(path, "total")
    return {"sum": sum(sum(values) for values in ctx.results.values()),
            "from": sorted(ctx.results)}


def upstream_report(ctx: taskwheel.Context) -> dict[str, Any]:
    """What a step sees of its dependencies (run in a child process, too)."""
    return {
        "pid_step": ctx.step,
        "run": ctx.workflow_run_id,
        "results": ctx.results,
        "upstream": {name: [out.status.value, out.error] for name, out in ctx.upstream.items()},
    }


def broken() -> None:
    raise ValueError("this step always fails")


def fails_until(path: str) -> str:
    """Fails until the file ``path`` exists."""
    if not Path(path).exists():
        raise RuntimeError(f"{path} is not there yet")
    return "fixed"


def wait_for_release_or_cancel(ctx: taskwheel.Context, marker: str, release: str) -> str:
    """Runs until ``release`` exists (success) or the step is cancelled."""
    record(marker, "started")
    limit = time.monotonic() + 30
    while time.monotonic() < limit:
        if ctx.cancelled:
            record(marker, "saw-cancel")
            raise taskwheel.Cancelled()
        if Path(release).exists():
            return "released"
        time.sleep(0.005)
    return "never released"
