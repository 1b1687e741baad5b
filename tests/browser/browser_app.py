"""The app the browser tests' server and workers run (``--app browser_app:app``),
imported from the test's project directory."""

from __future__ import annotations

import os
import time

import taskwheel

app = taskwheel.App()


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(retry=1)
def charge_card(order: int) -> None:
    """Always fails: its jobs end in the dead-letter queue."""
    raise RuntimeError(f"card declined for order {order}")


@app.task(queue="gated")
def wait_for_file(path: str) -> str:
    """Runs until ``path`` exists (the test decides when the job finishes)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "opened"


@app.task
def step(name: str) -> str:
    return name


@app.task(queue="lane")
def lane(n: int) -> int:
    """The queue the queues page's test pauses and resumes (no other test uses it)."""
    return n


@app.task
def note(text: str) -> str:
    """Jobs of its own for the bulk delete's test."""
    return text
