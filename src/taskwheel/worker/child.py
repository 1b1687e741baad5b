"""Entry point of a process-pool child: ``python -m taskwheel.worker.child``.

The parent writes one JSON line per job on stdin; the child answers on its original
stdout with JSON lines: ``{"checkpoint": ...}``/``{"extend": s}`` while running, then
``{"ok": result}`` or ``{"error": ..., "traceback": ...}``. The task's own prints go
to stderr so they cannot corrupt the protocol. SIGTERM sets ``ctx.cancelled``; the
parent kills the whole process group after a grace period or at the timeout.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO


def _resolve(init: dict[str, Any], task_name: str, fn_path: str) -> Any:
    if init.get("app"):
        from taskwheel.app import load_app

        app = load_app(init["app"])
        task = app.tasks.get(task_name)
        if task is not None:
            return task.fn
    module_name, _, qualname = fn_path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "fn", target)


class _MessageWrites:
    """A child's checkpoints and extensions: messages to its worker, which writes them
    (in order, before the outcome). The store's answer does not come back: True."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send

    def checkpoint(self, state_json: str) -> bool:
        self._send({"checkpoint": state_json})
        return True

    def extend_lease(self, seconds: float) -> bool:
        self._send({"extend": seconds})
        return True

    async def checkpoint_async(self, state_json: str) -> bool:
        return self.checkpoint(state_json)

    async def extend_lease_async(self, seconds: float) -> bool:
        return self.extend_lease(seconds)


def main() -> None:
    protocol: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the task's prints go to stderr
    init = json.loads(sys.stdin.readline())
    for entry in reversed(init.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)

    from taskwheel.breakers import TripBreaker
    from taskwheel.errors import Cancelled
    from taskwheel.lifecycle import JobStatus
    from taskwheel.worker.context import Context
    from taskwheel.workflows import StepOutcome

    def send(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    current: list[Context] = []
    def on_sigterm(*_: object) -> None:
        for ctx in current:
            ctx.request_cancel()

    signal.signal(signal.SIGTERM, on_sigterm)

    for line in sys.stdin:
        request = json.loads(line)
        try:
            fn = _resolve(init, request["task"], request["fn"])
            args = list(request["args"])
            if request.get("context"):
                c = dict(request["context"])
                c["upstream"] = {
                    u["step"]: StepOutcome(**{**u, "status": JobStatus(u["status"])})
                    for u in c.get("upstream", [])
                }

                ctx = Context(**c, writes=_MessageWrites(send))
                current[:] = [ctx]
                args.insert(0, ctx)
            result = fn(*args, **request["kwargs"])
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            send({"ok": json.dumps(result, allow_nan=False)})
        except Cancelled:
            send({"cancelled": True})
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                raise
            message: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}",
                                       "traceback": traceback.format_exc()}
            if isinstance(exc, TripBreaker):  # the breaker opens in the parent's report
                message |= {"trip_until": exc.until, "trip_key": exc.key}
            send(message)
        finally:
            current.clear()


if __name__ == "__main__":
    main()
