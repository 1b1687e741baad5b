"""The supervisor: a small parent process that keeps one worker process running.

``taskwheel worker`` is this parent. It starts the worker process (the same command with
``--no-supervisor``), and when that process dies (a segfault in native code, an
``os._exit`` in a task, the out-of-memory killer) it:

1. ends the attempts the dead process was running at once, through the store
   (`Store.end_attempts_of_dead_worker`), rather than letting their leases expire: each
   becomes a ``crashed`` attempt retried by its task's retry policy, so a poison job
   ends ``dead`` after its last attempt while the node keeps serving. Every job the dead
   process was running is a suspect: they all get the crashed attempt (the process
   pool, where each job has a process of its own, is how to keep a crash to its job);
2. logs one line: how it died, the jobs it held and what became of them (and announces
   each job ``job.rescued`` on the store's event hook, as maintenance does);
3. starts a fresh worker process: at once after a process that lived a while or that
   died with jobs (their attempts are charged with the death, and their retry policy
   paces them; a pause would idle the node for them), and with a growing pause (0.5 s,
   doubling up to 30 s) while processes keep dying at once with no job to blame (a
   worker that cannot start or cannot stay up).

A worker process that retires (``--max-tasks-per-child``, ``--max-memory-per-child``;
see `taskwheel.worker.supervised`) says so first, and the supervisor starts its
successor while it finishes its jobs.

The supervisor names each worker process ``host:<supervisor pid>:<suffix>``, a fresh
suffix per process, so it knows whose jobs to end; the supervisor's pid stands for the
node. SIGTERM and SIGINT are forwarded (as SIGTERM) to the worker processes, which stop
gracefully; a second signal stops them at once. The supervisor then exits with the
worker process's status: 0 after a graceful stop, 128 + N when it was killed by signal
N, its exit code otherwise. When the worker process ends by itself (``--burst``), so
does the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from taskwheel.events import EventKind, job_event
from taskwheel.jobs import Job
from taskwheel.lifecycle import PENDING
from taskwheel.retry import Retry
from taskwheel.stores.base import Store
from taskwheel.worker.execution import describe_exit
from taskwheel.worker.supervised import RETIRING

log = logging.getLogger("taskwheel.supervisor")

QUICK_DEATH = 5.0  # seconds: a worker process that dies sooner died "at once"
FIRST_PAUSE = 0.5  # seconds before restarting after the first death at once
LONGEST_PAUSE = 30.0
_BURY_TRIES = 5  # ending a dead process's attempts, while the store cannot be reached

# How to start a worker process, given its worker id and its end of the control socket.
Command = Callable[[str, int], Sequence[str]]


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128 + N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def quick_deaths_after(quick_deaths: int, lived: float, held_jobs: bool) -> int:
    """The deaths at once in a row, counting one more death of a worker process that
    lived ``lived`` seconds. A process that lived a while, or that died holding jobs
    (it started, claimed, and a job is the suspect), ends the run."""
    return 0 if held_jobs or lived >= QUICK_DEATH else quick_deaths + 1


def restart_pause(quick_deaths: int) -> float:
    """Seconds to wait before starting a worker process after ``quick_deaths`` deaths
    at once in a row (none: at once)."""
    if quick_deaths <= 0:
        return 0.0
    return min(LONGEST_PAUSE, FIRST_PAUSE * 2.0 ** min(quick_deaths - 1, 16))


def describe_jobs(jobs: Sequence[Job]) -> str:
    """What became of a dead worker process's jobs, for its one log line."""
    if not jobs:
        return "it held no job"
    each = ", ".join(f"{job.id} ({job.task}, attempt {job.attempt}/{job.max_attempts}"
                     f" -> {job.status.value})" for job in jobs)
    return f"its jobs ended as crashed attempts: {each}"


@dataclass(eq=False)
class _Child:
    """One worker process and the supervisor's end of its control socket."""

    worker_id: str
    proc: asyncio.subprocess.Process
    control: socket.socket
    started: float
    retiring: bool = False
    messages: bytes = field(default=b"")


class Supervisor:
    """Keeps one worker process running (see the module's docstring).

    Example:
        >>> retries = {name: task.options.retry for name, task in app.tasks.items()}
        >>> sys.exit(Supervisor(app.store, command, retries=retries).run())
    """

    def __init__(
        self, store: Store, command: Command, *, retries: Mapping[str, Retry] | None = None,
    ) -> None:
        self.store = store
        self.command = command
        self.retries = dict(retries or {})
        self.prefix = f"{socket.gethostname()}:{os.getpid()}"
        self.crashes = 0
        self._children: set[_Child] = set()
        self._current: _Child | None = None
        self._stopping = False
        self._signals = 0
        self._quick_deaths = 0
        self._status = 0
        self._restart: asyncio.TimerHandle | None = None
        self._events: asyncio.Queue[tuple[str, _Child | None]] | None = None

    def run(self) -> int:
        """Supervise until stopped (blocking); the exit status to leave with."""
        return asyncio.run(self._run())

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._spawn()
            while self._children or self._restart is not None or not self._stopping:
                kind, child = await self._events.get()
                if kind == "exited":
                    assert child is not None
                    await self._exited(child)
                elif kind == "retiring":
                    assert child is not None
                    await self._retiring(child)
                elif kind == "restart":  # (on "stop" the loop only looks again)
                    self._restart = None
                    if not self._stopping:
                        await self._spawn()
            return self._status
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _post(self, kind: str, child: _Child | None = None) -> None:
        assert self._events is not None
        self._events.put_nowait((kind, child))

    # -- the worker processes ----------------------------------------------------------

    async def _spawn(self) -> None:
        worker_id = f"{self.prefix}:{uuid.uuid4().hex[:8]}"
        mine, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(worker_id, theirs.fileno()), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        mine.setblocking(False)
        child = _Child(worker_id, proc, mine, time.monotonic())
        self._children.add(child)
        self._current = child
        log.info("started worker process %d (%s)", proc.pid, worker_id)
        asyncio.get_running_loop().create_task(self._watch(child))
        if self._stopping:  # asked to stop while it was starting
            self._signal(child)

    async def _watch(self, child: _Child) -> None:
        reader = asyncio.get_running_loop().create_task(self._read(child))
        await child.proc.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        self._drain(child)  # a message written just before it exited
        self._post("exited", child)

    async def _read(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(child.control, 256)
            except OSError:
                return
            if not data:
                return
            self._received(child, data)

    def _drain(self, child: _Child) -> None:
        while True:
            try:
                data = child.control.recv(256)
            except OSError:  # nothing left (BlockingIOError) or the socket is gone
                return
            if not data:
                return
            self._received(child, data)

    def _received(self, child: _Child, data: bytes) -> None:
        child.messages += data
        if RETIRING in child.messages and not child.retiring:
            child.retiring = True
            self._post("retiring", child)

    async def _retiring(self, child: _Child) -> None:
        log.info("worker process %d (%s) retires; starting its successor",
                 child.proc.pid, child.worker_id)
        if child is self._current and not self._stopping:
            self._quick_deaths = 0
            await self._spawn()

    async def _exited(self, child: _Child) -> None:
        self._children.discard(child)
        child.control.close()
        code = child.proc.returncode
        assert code is not None
        # Whatever it says, a process that left running attempts died with them (a task
        # may even os._exit(0)); a process that stopped cleanly has none left.
        ended = await self._bury(child, code)
        # One still starting has no handler yet: the SIGTERM it was sent ends it, as asked.
        # A --burst worker stopped before its queues drained exits 128 + the signal.
        stopped = code == 0 or (self._stopping and code in (-signal.SIGTERM,
                                                             128 + signal.SIGTERM))
        crashed = not stopped or bool(ended)
        lived = time.monotonic() - child.started
        current = child is self._current
        if current:
            self._current = None
            self._status = (exit_status(code) or 1) if crashed else max(code, 0)
        if crashed:
            self.crashes += 1
            restart = current and not self._stopping
            if restart:
                self._quick_deaths = quick_deaths_after(self._quick_deaths, lived,
                                                        bool(ended))
            pause = restart_pause(self._quick_deaths)
            then = (f"starting another in {pause:.1f}s" if restart and pause
                    else "starting another" if restart else "not restarted: stopping")
            log.error("worker process %d (%s) died after %.1fs (%s); %s; %s",
                      child.proc.pid, child.worker_id, lived, describe_exit(code),
                      "could not end its attempts (their leases will expire)"
                      if ended is None else describe_jobs(ended), then)
            if restart:
                self._restart = asyncio.get_running_loop().call_later(
                    pause, self._post, "restart")
        elif child.retiring:
            log.info("worker process %d (%s) retired", child.proc.pid, child.worker_id)
        elif current and not self._stopping:
            # It ended by itself (--burst: nothing left to do): so does the node.
            log.info("worker process %d (%s) finished", child.proc.pid, child.worker_id)
            self._stopping = True

    async def _bury(self, child: _Child, code: int) -> list[Job] | None:
        """End the attempts a dead worker process was running; None if the store could
        not be reached (the rescue of expired leases takes them over then)."""
        error = f"the worker process died while running it ({describe_exit(code)})"
        loop = asyncio.get_running_loop()
        for attempt in range(1, _BURY_TRIES + 1):
            try:
                return await loop.run_in_executor(None, self._end_attempts, child, error)
            except Exception:
                if attempt == _BURY_TRIES:
                    log.exception("could not end the attempts of worker process %d (%s)",
                                  child.proc.pid, child.worker_id)
                    return None
                await asyncio.sleep(min(LONGEST_PAUSE, FIRST_PAUSE * 2**attempt))
        return None

    def _end_attempts(self, child: _Child, error: str) -> list[Job]:
        """(On a thread.) End them, and announce each as rescued, as maintenance does."""
        ended = self.store.end_attempts_of_dead_worker(child.worker_id, error, self.retries)
        events = self.store.events
        if ended and events.wants(EventKind.JOB_RESCUED):
            now = self.store.now()
            for job in ended:
                outcome = "requeued" if job.status in PENDING else "failed"
                events.emit(job_event(
                    EventKind.JOB_RESCUED, job, now, source=self.prefix,
                    metadata={"outcome": outcome, "status": job.status.value,
                              "error": error, "worker": child.worker_id}))
        return ended

    # -- signals -----------------------------------------------------------------------

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        log.info("%s: stopping the worker process %s", signal.Signals(sig).name,
                 "gracefully (a second signal stops it at once)" if self._signals == 1
                 else "at once")
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        self._post("stop")  # the loop looks again at what is left to wait for
        for child in list(self._children):
            # A retiring process is stopping already: only a second signal hurries it.
            if not child.retiring or self._signals > 1:
                self._signal(child)

    @staticmethod
    def _signal(child: _Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
