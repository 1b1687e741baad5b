"""The app the acceptance tests run: copied into each test's directory and imported from
there by the ``taskwheel`` processes (``--app acceptance_app:app``).

Tasks that run return ``os.getpid()`` where it matters, so a test can tell which worker's
result stood.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time

import taskwheel

app = taskwheel.App()
# Poison jobs retry once, soon: a test sees the crash counted and the job end dead.
POISON_RETRY = taskwheel.Retry(max_attempts=2, base="100ms", jitter=0)
_leaked: list[bytes] = []


@app.task(pass_context=True)
def record(ctx: taskwheel.Context, path: str) -> int:
    """Append this job's id to ``path``: one short O_APPEND write, atomic on POSIX."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.job_id}\n".encode())
    finally:
        os.close(fd)
    return os.getpid()


@app.task
def slow(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.task(pass_context=True)
async def nap_and_record(ctx: taskwheel.Context, seconds: float, path: str) -> int:
    """Sleep on the event loop, then append this job's id to ``path`` (a body that ran
    to its end: a job whose id appears twice ran twice)."""
    await asyncio.sleep(seconds)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.job_id}\n".encode())
    finally:
        os.close(fd)
    return os.getpid()


@app.task(pass_context=True)
def long_only_the_first_time(ctx: taskwheel.Context, seconds: float) -> int:
    """Blocks (not cooperatively) on the job's first claim; returns at once afterwards."""
    if ctx.fencing_token == 1:
        time.sleep(seconds)
    return os.getpid()


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(retry=1)
def boom() -> None:
    raise RuntimeError("boom")


@app.task(retry=1)
def exit_in_thread() -> None:
    sys.exit(3)


@app.task(retry=1)
async def exit_on_event_loop() -> None:
    sys.exit(3)


@app.task(retry=1, pool="process")
def exit_in_child() -> None:
    sys.exit(3)


@app.task(retry=1, pool="process")
def hard_exit_in_child() -> None:
    os._exit(7)


@app.task(retry=1, pool="process")
def segfault_in_child() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


@app.task(retry=POISON_RETRY)
def segfault() -> None:
    """Reads address 0: SIGSEGV in whatever process runs it (the pool decides which)."""
    ctypes.string_at(0)


@app.task(retry=POISON_RETRY)
def hard_exit() -> None:
    """Ends whatever process runs it at once, without unwinding."""
    os._exit(1)


@app.task
def leak(megabytes: int) -> int:
    """Keeps ``megabytes`` of touched memory for as long as its process lives."""
    _leaked.append(b"\x01" * (megabytes * 2**20))
    return os.getpid()


@app.task
def ok() -> str:
    return "ok"


@app.task
def tick() -> None:
    """The job of the ``every-second`` schedule: nothing to do but exist."""


@app.task(pass_context=True)
def sum_upstream(ctx: taskwheel.Context) -> int:
    """A workflow step: the sum of its dependencies' results."""
    return sum(ctx.results.values())


# Written by `taskwheel scheduler` when it starts. Missed instants are caught up, so
# a failover loses none of them.
app.schedule("every-second", tick, every="1s", misfire="catch_up", max_catch_up=100)


# The limit test kills three workers, each one running the key's three jobs; after a
# rescue those first in dispatch order may take the slots again, so the same job can
# be killed three times: it keeps one attempt more than the kills.
@app.task(pass_context=True, retry=taskwheel.Retry(max_attempts=4, base="100ms", jitter=0),
          concurrency=taskwheel.ConcurrencyLimit(key="tenant:{tenant}", limit=3))
def limited(ctx: taskwheel.Context, tenant: str, seconds: float, path: str) -> int:
    """Record this attempt's start and end (job, fence, pid, time) in ``path`` with
    O_APPEND writes: an independent account of how many ran at once."""

    def note(event: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event} {ctx.job_id} {ctx.fencing_token} {os.getpid()} "
                         f"{time.time():.6f}\n".encode())
        finally:
            os.close(fd)

    note("start")
    time.sleep(seconds)
    note("end")
    return os.getpid()


@app.task(pass_context=True,
          rate=taskwheel.RateLimit(key="api:{account}", rate="20/s", burst=4))
def rated(ctx: taskwheel.Context, account: str, seconds: float) -> int:
    """A call to a partner's API limited per account: what the rate guarantee bounds is
    when attempts start, which the store records with each attempt."""
    time.sleep(seconds)
    return ctx.job_id
