"""A worker process's side of supervision: when it retires, and how it hears its supervisor.

`taskwheel worker` runs a supervisor (`taskwheel.worker.supervisor`) that starts the
worker process and a fresh one whenever it dies or retires. The worker process:

- retires after ``max_tasks`` jobs or once its resident memory passes ``max_memory``
  (`ChildLimits`): it tells its supervisor, which starts a fresh process at once, then
  stops as on SIGTERM (it stops claiming, lets running jobs finish within the grace,
  gives the rest back) and exits 0;
- leaves Ctrl-C to its supervisor (SIGINT reaches the whole foreground process group:
  the supervisor turns it into one SIGTERM, so a single Ctrl-C is not taken for two);
- stops gracefully when its supervisor is gone (killed on its own), rather than run on
  unsupervised.

The channel is a Unix socket the supervisor passes down: the worker writes `RETIRING`
on it; the end of the stream tells it the supervisor died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from taskwheel.errors import InvalidInput
from taskwheel.events import Event, EventKind
from taskwheel.worker.worker import Worker

log = logging.getLogger("taskwheel.worker")

RETIRING = b"retiring\n"  # worker process -> supervisor: start my successor now
MEMORY_CHECK_INTERVAL = 1.0  # seconds between two looks at the resident memory

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(value: int | str, field: str) -> int:
    """Bytes from ``512MB``, ``1.5GiB``, ``800M`` or a number of bytes. Units are binary
    (``MB`` = ``MiB`` = 2**20 bytes), as `ps` and `top` count memory.

    Example:
        >>> parse_size("512MB", "max_memory_per_child")
        536870912
    """
    if isinstance(value, bool):
        raise InvalidInput(field, f"expected a size such as '512MB', got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(str(value))
        if match is None:
            raise InvalidInput(field, f"expected a size such as '512MB' or '2GiB', got {value!r}")
        size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < 1:
        raise InvalidInput(field, f"must be a positive size, got {value!r}")
    return size


@dataclass(frozen=True)
class ChildLimits:
    """When a worker process retires so that a fresh one replaces it: after
    ``max_tasks`` jobs ended, or once its resident memory (not counting process-pool
    children) is above ``max_memory`` bytes; None for no limit.

    Example:
        >>> ChildLimits.build(max_tasks_per_child=1000, max_memory_per_child="512MB")
        ChildLimits(max_tasks=1000, max_memory=536870912)
    """

    max_tasks: int | None = None
    max_memory: int | None = None

    def __post_init__(self) -> None:
        tasks = self.max_tasks
        if tasks is not None and (isinstance(tasks, bool) or not isinstance(tasks, int)
                                  or tasks < 1):
            raise InvalidInput("max_tasks_per_child", f"must be an integer >= 1, got {tasks!r}")
        if self.max_memory is not None:
            object.__setattr__(self, "max_memory",
                               parse_size(self.max_memory, "max_memory_per_child"))

    @classmethod
    def build(
        cls, *, max_tasks_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
    ) -> ChildLimits:
        return cls(max_tasks_per_child, None if max_memory_per_child is None else
                   parse_size(max_memory_per_child, "max_memory_per_child"))


def resident_memory() -> int:
    """This process's resident set size in bytes (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class _Lifetime:
    """Watches a running worker's limits and its supervisor; retires it once."""

    def __init__(self, worker: Worker, limits: ChildLimits, control: socket.socket | None):
        self.worker = worker
        self.limits = limits
        self.control = control
        self._ended = 0
        self._once = threading.Lock()
        self._retired = False
        self._closed = threading.Event()
        # It claims no more jobs than it may run, and retires once those have ended:
        # never a job beyond the limit, however many it claims at once.
        worker.claim_limit = limits.max_tasks
        worker.on_claims_spent = lambda: self.retire(
            f"it took its {limits.max_tasks} jobs (--max-tasks-per-child {limits.max_tasks})")
        self._detach = None if limits.max_tasks is None else worker.store.events.attach(
            self._job_finished, [EventKind.JOB_FINISHED])
        self._memory: threading.Thread | None = None
        if limits.max_memory is not None:
            self._memory = threading.Thread(target=self._watch_memory, daemon=True,
                                            name="taskwheel-memory")
            self._memory.start()

    def _job_finished(self, _event: Event) -> None:
        self._ended += 1
        if self.limits.max_tasks is not None and self._ended >= self.limits.max_tasks:
            self.retire(f"it ran {self._ended} jobs (--max-tasks-per-child "
                        f"{self.limits.max_tasks})")

    def _watch_memory(self) -> None:
        limit = self.limits.max_memory
        assert limit is not None
        while not self._closed.wait(MEMORY_CHECK_INTERVAL):
            used = resident_memory()
            if used > limit:
                self.retire(f"its resident memory is {used / 2**20:.0f} MiB "
                            f"(--max-memory-per-child {limit / 2**20:.0f} MiB)")
                return

    def retire(self, reason: str) -> None:
        """Tell the supervisor to start a successor, then stop gracefully (any thread)."""
        with self._once:
            if self._retired or self.worker.stopping:  # a second stop would be a hard one
                return
            self._retired = True
        log.warning("worker %s retires: %s", self.worker.id, reason)
        if self.control is not None:
            with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
                self.control.send(RETIRING)
        self.worker.stop()

    def on_control(self) -> None:
        """The supervisor wrote nothing it expects read: readable means it is gone."""
        assert self.control is not None
        try:
            data = self.control.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        asyncio.get_running_loop().remove_reader(self.control.fileno())
        with self._once:
            if self._retired or self.worker.stopping:
                return
            self._retired = True
        log.warning("worker %s: its supervisor is gone; stopping", self.worker.id)
        self.worker.stop()

    def close(self) -> None:
        self._closed.set()
        if self._detach is not None:
            self._detach()
        if self._memory is not None:
            self._memory.join()


def run_worker_process(
    worker: Worker, limits: ChildLimits, control_fd: int | None = None
) -> None:
    """Run ``worker`` until it stops (blocking): on SIGTERM, when a limit retires it, or
    when the supervisor that passed ``control_fd`` is gone. Without a supervisor (no
    ``control_fd``) SIGINT stops it too, and a retired worker simply exits."""
    asyncio.run(_run(worker, limits, control_fd))


async def _run(worker: Worker, limits: ChildLimits, control_fd: int | None) -> None:
    loop = asyncio.get_running_loop()
    control = None
    if control_fd is not None:
        control = socket.socket(fileno=control_fd)
        control.setblocking(False)
        # Ctrl-C reached the supervisor too, which asks this process by SIGTERM.
        worker.stop_signals = (signal.SIGTERM,)
        loop.add_signal_handler(signal.SIGINT, lambda: None)
    lifetime = _Lifetime(worker, limits, control)
    if control is not None:
        loop.add_reader(control.fileno(), lifetime.on_control)
    try:
        await worker.run_async(install_signal_handlers=True)
    finally:
        lifetime.close()
        if control is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(control.fileno())
            control.close()
