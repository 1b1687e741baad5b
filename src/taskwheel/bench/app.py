"""The benchmarks' app and tasks. Every ``taskwheel worker`` and ``taskwheel scheduler``
process a benchmark starts loads this module's `app` (``--app taskwheel.bench.app:app``),
so the tasks they run are defined here, at import, and the module imports nothing of the
benchmarks themselves.

Worker processes point the app at the benchmark's database and namespace with
``--database-url`` and ``--namespace``; the benchmark itself with `App.configure`.
"""

from __future__ import annotations

import time

from taskwheel.app import App
from taskwheel.errors import TaskwheelError
from taskwheel.limits import ConcurrencyLimit
from taskwheel.rates import RateLimit

QUEUE = "bench"
APP_SPEC = "taskwheel.bench.app:app"

app = App(namespace="bench", migrate=True)  # every run makes its own database


class BenchmarkError(TaskwheelError):
    """A benchmark could not complete (a worker died, jobs failed or never finished)."""


@app.task(queue=QUEUE)
async def noop() -> None:
    """The drain, enqueue and schedule benchmarks' job: does nothing, so only taskwheel
    is timed."""


@app.task(queue=QUEUE, concurrency=ConcurrencyLimit(key="bench:{key}", limit=1))
async def keyed_noop(key: int) -> None:
    """The drain's job with ``--keys``: a no-op holding a slot of its key (the limit
    the benchmark sets for every key overrides this one)."""


@app.task(queue=QUEUE, rate=RateLimit(key="bench-rate:{key}", rate="1000/s", burst=100))
async def rated_noop(key: int) -> None:
    """The dispatch benchmark's rate-limited drain's job: a no-op whose start is paid
    for from its key's bucket (rates high enough not to bound the drain)."""


@app.task(queue=QUEUE)
async def stamp() -> float:
    """The latency benchmark's job: the wall-clock time its code started."""
    return time.time()


@app.task(queue=QUEUE, name="bench.step")
async def timed_step() -> float:
    """The workflow benchmark's no-op step: returns how long its own code took
    (seconds), the work the benchmark subtracts from the total."""
    started = time.perf_counter()
    return time.perf_counter() - started
