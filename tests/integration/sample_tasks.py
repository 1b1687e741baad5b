"""Task bodies for the integration tests, importable by process-pool children."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import taskwheel


def record(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


async def sleep_async(seconds: float, marker: str) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        record(marker, "cancelled")
        raise
    return "slept"


def spawn_grandchild_and_sleep(pidfile: str) -> None:
    grandchild = subprocess.Popen(["sleep", "60"])
    Path(pidfile).write_text(f"{os.getpid()} {grandchild.pid}")
    time.sleep(60)


def wait_until_cancelled(ctx: taskwheel.Context, marker: str, limit: float) -> str:
    record(marker, "started")
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if ctx.cancelled:
            record(marker, "saw-cancel")
            raise taskwheel.Cancelled()
        time.sleep(0.01)
    return "never cancelled"


async def wait_until_cancelled_async(ctx: taskwheel.Context, marker: str) -> str:
    record(marker, "started")
    while not ctx.cancelled:
        await asyncio.sleep(0.01)
    record(marker, "saw-cancel")
    raise taskwheel.Cancelled()


async def wait_until_cancelled_unless_claimed_again(ctx: taskwheel.Context, marker: str) -> int:
    """The first claim's attempt waits to be cancelled; a later claim's returns its
    token at once."""
    record(marker, f"started {ctx.fencing_token}")
    if ctx.fencing_token > 1:
        return ctx.fencing_token
    while not ctx.cancelled:
        await asyncio.sleep(0.01)
    record(marker, "saw-cancel")
    raise taskwheel.Cancelled()


def record_token_then_sleep(ctx: taskwheel.Context, marker: str, seconds: float) -> int:
    """Writes its fencing token, then sleeps through any cancel."""
    record(marker, f"started {ctx.fencing_token}")
    time.sleep(seconds)
    return ctx.fencing_token


def ignore_sigterm_and_sleep(marker: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record(marker, f"started {os.getpid()}")
    time.sleep(60)


def checkpoint_then_fail(ctx: taskwheel.Context) -> Any:
    if ctx.last_checkpoint is None:
        ctx.checkpoint({"done": 5})
        raise RuntimeError("first attempt fails after saving progress")
    return ctx.last_checkpoint


def exit_three() -> None:
    raise SystemExit(3)


def hard_exit() -> None:
    os._exit(7)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def ok(value: Any = None) -> Any:
    return value


def append_name(path: str, name: str) -> None:
    record(path, name)


def slow_success(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def returns_unserialisable() -> Any:
    return object()


def fail_always() -> None:
    raise ValueError("this task always fails")
