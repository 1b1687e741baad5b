"""How one attempt runs: on the event loop, on a thread, in a child process or a shell.

Each runner turns whatever happened (a value, an exception, a timeout, a dead process)
into an `Execution`; `decide` turns that into the job's next state. Nothing a task
does, `sys.exit` and native crashes included, escapes into the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from taskwheel.breakers import TripBreaker
from taskwheel.errors import Cancelled
from taskwheel.jobs import AttemptOutcome, Job, Outcome
from taskwheel.lifecycle import JobStatus
from taskwheel.retry import DEFAULT_RETRY, Retry
from taskwheel.worker.context import Context
from taskwheel.worker.writes import AttemptWriter

if TYPE_CHECKING:
    from taskwheel.tasks import Task

_OUTPUT_TAIL = 16_384


@dataclass(slots=True)
class Execution:
    outcome: AttemptOutcome
    result_json: str | None = None
    error: str | None = None
    traceback: str | None = None
    trip_until: float | None = None  # the task raised TripBreaker
    trip_key: str | None = None


@dataclass(slots=True)
class Running:
    """A job this worker is running, and how to stop it."""

    job: Job
    ctx: Context
    writer: AttemptWriter
    started: float = 0.0  # time.monotonic() when it started
    cancel_signalled: bool = False
    released: bool = False
    lease_lost: bool = False  # the store no longer holds its lease for this worker
    stop: Callable[[bool], None] | None = field(default=None)  # stop(hard)


def decide_for(job: Job, task: Task[Any, Any] | None, execution: Execution,
               cancel_requested: bool) -> Outcome:
    """`decide` under the policy of the job's task as this process defines it: its
    retry, and whether it gives its jobs a key (the default retry and no key for a
    task it does not define)."""
    if task is None:
        return decide(job, DEFAULT_RETRY, execution, cancel_requested)
    return decide(job, task.options.retry, execution, cancel_requested, task.keyed)


def decide(job: Job, retry: Retry, execution: Execution, cancel_requested: bool,
           keyed: bool = False) -> Outcome:
    """The job's next state after an attempt (pure; the worker's only policy code).
    ``keyed``: its task gives its jobs a key, whose slot or breaker its end moves."""
    outcome = execution.outcome
    retry_delay = 0.0
    if outcome is AttemptOutcome.SUCCEEDED:
        status = JobStatus.SUCCEEDED
    elif outcome is AttemptOutcome.CANCELLED or cancel_requested:
        status, outcome = JobStatus.CANCELLED, AttemptOutcome.CANCELLED
    elif job.attempt >= job.max_attempts:
        status = JobStatus.DEAD
    else:
        retry_delay = retry.delay(job.attempt)
        status = JobStatus.SCHEDULED if retry_delay > 0 else JobStatus.QUEUED
    # Positional, in the order of `Outcome`'s fields: one per job, and naming ten
    # keywords costs CPython more than the rest of this function.
    return Outcome(
        job.id,
        job.fence,
        status,
        outcome,
        execution.result_json if status is JobStatus.SUCCEEDED else None,  # result_json
        _storable(execution.error),
        _storable(execution.traceback),
        retry_delay,
        execution.trip_until,
        execution.trip_key,
        not keyed and job.schedule_id is None and job.workflow_run_id is None,  # ends_alone
    )


def _storable(text: str | None) -> str | None:
    """``text`` with its NUL characters written out: PostgreSQL's text holds none, and
    one in an exception's message would fail the report of every job in its batch."""
    return text.replace("\x00", "\\x00") if text is not None and "\x00" in text else text


def failure(exc: BaseException, outcome: AttemptOutcome = AttemptOutcome.FAILED) -> Execution:
    tripped = exc if isinstance(exc, TripBreaker) else None
    return Execution(
        outcome=outcome,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
        trip_until=None if tripped is None else tripped.until,
        trip_key=None if tripped is None else tripped.key,
    )


# `json.dumps(value, allow_nan=False)` made once: with any argument of its own, dumps
# builds an encoder per call, which cost a job's outcome more than encoding its result.
_encode_result = json.JSONEncoder(allow_nan=False).encode


def success(value: Any) -> Execution:
    if value is None:  # most tasks return nothing
        return Execution(AttemptOutcome.SUCCEEDED, "null")
    try:
        return Execution(AttemptOutcome.SUCCEEDED, _encode_result(value))
    except (TypeError, ValueError) as exc:
        return Execution(AttemptOutcome.FAILED, error=f"result is not JSON-serialisable: {exc}")


def timed_out(timeout: float, note: str = "") -> Execution:
    return Execution(AttemptOutcome.TIMED_OUT, error=f"timed out after {timeout:g}s{note}")


async def run_coroutine(
    call: Callable[[], Awaitable[Any]], timeout: float | None
) -> Execution:
    """Run an async task in the current asyncio task; a timeout cancels it."""
    try:
        if timeout is None:  # no timer to arm: `asyncio.timeout(None)` costs a job 2 µs
            return success(await call())
        async with asyncio.timeout(timeout):
            return success(await call())
    except TimeoutError:
        return timed_out(timeout or 0)
    except Cancelled:
        return Execution(AttemptOutcome.CANCELLED, error="cancelled by the task")
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return failure(exc)


class DaemonThreads:
    """Daemon threads reused from one attempt to the next, as many as run at once.

    Not a bounded pool: a thread cannot be killed, and a task that ignores its timeout
    or cancellation would hold a bounded pool's slot for good. Here such a task holds
    only its own thread, the next attempt gets another, and being daemons they never
    keep the process from exiting after the worker has stopped. A thread idle for
    ``idle_timeout`` seconds ends. Reusing them spares each attempt of a sync task the
    start of a thread (about as much CPU as the rest of the attempt's bookkeeping).

    Example:
        >>> threads = DaemonThreads()
        >>> done = threading.Event()
        >>> threads.submit(done.set)
        >>> done.wait(5)
        True
    """

    def __init__(self, idle_timeout: float = 60.0) -> None:
        self.idle_timeout = idle_timeout
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work and not yet promised an item

    @property
    def idle(self) -> int:
        return self._idle

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on an idle thread, or on a new one when none is idle."""
        with self._lock:
            self._work.put(fn)
            if self._idle:
                self._idle -= 1  # an idle thread takes it
                return
        threading.Thread(target=self._serve, name="taskwheel-task", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                fn = self._work.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    try:  # an item promised to an idle thread as this one gave up
                        fn = self._work.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return
            try:
                fn()
            except BaseException:  # pragma: no cover - fn is run_on_daemon_thread's body
                traceback.print_exc()
            with self._lock:
                self._idle += 1


_THREADS = DaemonThreads()


def run_on_daemon_thread(fn: Callable[..., Execution], *args: Any) -> asyncio.Future[Execution]:
    """Run ``fn`` on a daemon thread (`DaemonThreads`: reused, never a bounded pool's
    slot) and give its result to the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Execution] = loop.create_future()

    def deliver(result: Execution) -> None:
        if not future.done():
            future.set_result(result)

    def body() -> None:
        result = fn(*args)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, result)

    _THREADS.submit(body)
    return future


def call_in_thread(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Execution:
    """Body of a thread-pool attempt (async functions get their own loop)."""
    try:
        value = fn(*args, **kwargs)
        if asyncio.iscoroutine(value):
            value = asyncio.run(value)
        return success(value)
    except Cancelled:
        return Execution(AttemptOutcome.CANCELLED, error="cancelled by the task")
    except BaseException as exc:
        return failure(exc)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "process vanished"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"process killed by {name}"
    return f"process exited with code {returncode}"


def kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ChildProcess:
    """One long-lived child that runs process-pool attempts one at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls, init: dict[str, Any]) -> ChildProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskwheel.worker.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as one
            limit=64 * 1024 * 1024,
        )
        child = cls(proc)
        await child._send(init)
        return child

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    def alive(self) -> bool:
        return self.proc.returncode is None

    def signal(self, sig: int) -> None:
        kill_group(self.proc.pid, sig)

    async def run(
        self,
        request: dict[str, Any],
        timeout: float | None,
        on_message: Callable[[dict[str, Any]], None],
        cancelled: Callable[[], bool],
    ) -> Execution:
        assert self.proc.stdout is not None
        try:
            await self._send(request)
        except (BrokenPipeError, ConnectionResetError):
            return Execution(AttemptOutcome.CRASHED, error=describe_exit(await self.proc.wait()))
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            except TimeoutError:
                self.signal(signal.SIGKILL)
                await self.proc.wait()
                assert timeout is not None
                return timed_out(timeout, " (process group killed)")
            if not line:
                code = await self.proc.wait()
                if cancelled():
                    return Execution(AttemptOutcome.CANCELLED, error="cancelled; process stopped")
                return Execution(AttemptOutcome.CRASHED, error=describe_exit(code))
            message = json.loads(line)
            if "ok" in message:
                return Execution(AttemptOutcome.SUCCEEDED, result_json=message["ok"])
            if "error" in message:
                return Execution(
                    AttemptOutcome.FAILED, error=message["error"], traceback=message["traceback"],
                    trip_until=message.get("trip_until"), trip_key=message.get("trip_key"),
                )
            if "cancelled" in message:
                return Execution(AttemptOutcome.CANCELLED, error="cancelled by the task")
            on_message(message)

    async def close(self) -> None:
        if self.alive():
            self.signal(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await self.proc.wait()


class ChildPool:
    """Idle children kept for reuse; a child that was killed or crashed is replaced."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.init = init
        self._idle: list[ChildProcess] = []
        self._busy: set[ChildProcess] = set()

    async def acquire(self) -> ChildProcess:
        while self._idle:
            child = self._idle.pop()
            if child.alive():
                self._busy.add(child)
                return child
        child = await ChildProcess.spawn(self.init)
        self._busy.add(child)
        return child

    def release(self, child: ChildProcess) -> None:
        self._busy.discard(child)
        if child.alive():
            self._idle.append(child)

    async def close(self) -> None:
        for child in [*self._idle, *self._busy]:
            await child.close()
        self._idle.clear()
        self._busy.clear()


async def run_shell(
    command: str, timeout: float | None, running: Running
) -> Execution:
    """Run a shell command in its own process group; non-zero exit fails the attempt."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    running.stop = lambda hard: kill_group(proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        kill_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        assert timeout is not None
        return timed_out(timeout, " (process group killed)")
    out = stdout.decode(errors="replace")[-_OUTPUT_TAIL:]
    err = stderr.decode(errors="replace")[-_OUTPUT_TAIL:]
    code = proc.returncode
    if code == 0:
        return success({"exit_code": 0, "stdout": out, "stderr": err})
    if running.ctx.cancelled:
        return Execution(AttemptOutcome.CANCELLED, error=f"cancelled; {describe_exit(code)}")
    outcome = AttemptOutcome.CRASHED if code is not None and code < 0 else AttemptOutcome.FAILED
    tail = err.strip().splitlines()[-1:] if err.strip() else []
    detail = f": {tail[0]}" if tail else ""
    return Execution(outcome, error=f"command failed, {describe_exit(code)}{detail}",
                     traceback=err or None)
