"""The real processes a benchmark measures: ``taskwheel worker`` and ``taskwheel
scheduler`` subprocesses loading the benchmark app, each logging to a file of its own;
who holds a scheduler lease; and a process's CPU time and memory, read from ``/proc``.

Every process runs without the caller's ``TASKWHEEL_*`` variables: it is told its
database and namespace on its command line, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from taskwheel.bench.app import APP_SPEC, QUEUE, BenchmarkError
from taskwheel.bench.settings import FleetSettings
from taskwheel.jobs import Job
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.scheduler import partition_lease
from taskwheel.scheduler.partitions import PARTITION_PREFIX
from taskwheel.stores import Store


def polling(timeout: float, what: str, pause: float = 0.02) -> Iterator[None]:
    """Yield every ``pause`` seconds until the caller breaks out; `BenchmarkError`
    naming ``what`` once ``timeout`` seconds have passed."""
    limit = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() >= limit:
            raise BenchmarkError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(pause)


def taskwheel_command(
    role: str, url: str, namespace: str, *options: str, app_spec: str = APP_SPEC
) -> list[str]:
    """``taskwheel <role>`` on the benchmark app (or ``app_spec``), database and
    namespace."""
    return [
        sys.executable, "-m", "taskwheel.cli.main", role, "--app", app_spec,
        "--database-url", url, "--namespace", namespace, *options,
    ]


class LoggedProcess:
    """One ``taskwheel`` subprocess, its output in ``log``; ``role`` names it in errors."""

    def __init__(self, role: str, command: list[str], log: Path) -> None:
        self.role = role
        self.log = log
        self.killed = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        """`BenchmarkError` with the log's last lines if the process has exited, unless
        the benchmark killed it."""
        code = self.proc.poll()
        if code is None or self.killed:
            return
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        raise BenchmarkError(
            f"{self.role} process {self.pid} exited with code {code}: " + " | ".join(tail)
        )

    def terminate(self) -> None:
        """SIGTERM, if it still runs; `reap` waits for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, grace: float) -> None:
        """Wait for it to exit; SIGKILL after ``grace`` seconds."""
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> float:
        """SIGKILL; the wall-clock time right after the signal was sent."""
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        self.proc.wait()
        return killed_at


SAMPLE = 100  # jobs `WorkerFleet.wait_finished` reads per poll until they have ended


class WorkerFleet:
    """``taskwheel worker`` subprocesses on the benchmark's database and namespace."""

    def __init__(
        self, fleet: FleetSettings, *, url: str, namespace: str, logs: Path,
        app_spec: str = APP_SPEC, options: Callable[[int], Sequence[str]] | None = None,
    ) -> None:
        """``app_spec``: the app the workers load; ``options(n)``: more options of
        worker ``n`` (from 0)."""
        self.fleet = fleet
        self.url = url
        self.namespace = namespace
        self.logs = logs
        self.app_spec = app_spec
        self.options = options or (lambda _n: ())
        self.processes: list[LoggedProcess] = []

    def __enter__(self) -> WorkerFleet:
        f = self.fleet
        for n in range(f.workers):
            command = taskwheel_command(
                "worker", self.url, self.namespace, "-q", QUEUE, "-c", str(f.concurrency),
                "--pool", f.pool.value, "--batch-size", str(f.claim_batch),
                "--log-level", "warning", *self.options(n), app_spec=self.app_spec,
            )
            self.processes.append(
                LoggedProcess("worker", command, self.logs / f"worker-{n + 1}.log"))
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (the workers are idle by then), SIGKILL after 30 s."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.reap(30)
        self.processes.clear()

    def check_alive(self) -> None:
        for process in self.processes:
            process.check_alive()

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def wait_registered(self, store: Store, timeout: float = 30.0) -> None:
        """Until every worker has registered (its wake-up listener is open by then)."""
        for _ in polling(timeout, f"{self.fleet.workers} workers to register"):
            self.check_alive()
            if len(store.stats(self.namespace).workers) >= self.fleet.workers:
                return

    def wait_drained(self, store: Store, job_ids: list[int], timeout: float) -> list[Job]:
        """Until every one of ``job_ids`` has ended; their records, which must all have
        succeeded. For jobs made ready all at once, claimed in id order: it watches the
        last one, then reads them all by id, so a namespace holding millions of other
        jobs costs nothing to poll (unlike `wait_finished`)."""
        def ended(ids: list[int]) -> bool:
            return all(job.status in TERMINAL for job in store.get_jobs(self.namespace, ids))

        for _ in polling(timeout, f"{len(job_ids)} jobs to finish", pause=0.02):
            self.check_alive()
            if ended(job_ids[-1:]) and ended(job_ids):
                break
        return self._succeeded(store, job_ids)

    def wait_finished(self, store: Store, job_ids: list[int], timeout: float) -> list[Job]:
        """Until every job has ended; their records. Any job that did not succeed fails
        the benchmark: its figure would time an error path.

        Each poll reads a sample of at most `SAMPLE` of the jobs not yet seen ended, by
        id, and all of those only once the sample has ended: the poll costs the drain
        it watches next to nothing (counting the namespace's jobs by state every 50 ms
        took a fifth of a core from the drain on PostgreSQL). The figures come from the
        job rows, not from when the poll saw the end."""
        pending = list(job_ids)
        for _ in polling(timeout, f"{len(job_ids)} jobs to finish", pause=0.05):
            self.check_alive()
            sample = pending[::max(1, -(-len(pending) // SAMPLE))]  # at most SAMPLE
            if not all(job.status in TERMINAL for job in store.get_jobs(self.namespace, sample)):
                continue
            pending = [job.id for job in store.get_jobs(self.namespace, pending)
                       if job.status not in TERMINAL]
            if not pending:
                break
        return self._succeeded(store, job_ids)

    def _succeeded(self, store: Store, job_ids: list[int]) -> list[Job]:
        want = len(job_ids)
        jobs = store.get_jobs(self.namespace, job_ids)
        failed = [job for job in jobs if job.status is not JobStatus.SUCCEEDED]
        if failed or len(jobs) != want:
            example = failed[0] if failed else None
            detail = (
                f"; job {example.id} is {example.status.value}: {example.last_error}"
                if example else ""
            )
            raise BenchmarkError(f"{len(failed)} of {want} benchmark jobs did not succeed{detail}")
        return jobs


class SchedulerProcess(LoggedProcess):
    """A ``taskwheel scheduler`` subprocess on the benchmark's database and namespace,
    logging at info level (it says when it started and when it took the lease)."""

    def __init__(self, url: str, namespace: str, log: Path) -> None:
        command = taskwheel_command("scheduler", url, namespace, "--log-level", "info")
        super().__init__("scheduler", command, log)

    def __enter__(self) -> SchedulerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def started(self) -> bool:
        """Its loop runs: it stands by or holds the lease."""
        return " started (namespace " in self.log.read_text(errors="replace")

    def wait_lease(self, watch: LeaseWatch, timeout: float) -> None:
        """Until it holds the lease ``watch`` watches."""
        for _ in polling(timeout, "the scheduler to take the lease"):
            self.check_alive()
            if watch.pid() == self.pid:
                return

    def stop(self) -> None:
        """SIGTERM (it gives the lease back), SIGKILL after 10 s."""
        self.terminate()
        self.reap(10)


class LeaseWatch:
    """Who holds a scheduler lease (partition 0's unless told): the process id
    inside the holder's id (``host:pid:suffix``), judged by the store clock like the
    lease itself."""

    def __init__(
        self, store: Store, namespace: str, lease: str = partition_lease(0)
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.lease = lease

    def pid(self) -> int | None:
        holder = self.store.lease_holder(self.namespace, self.lease)
        return None if holder is None else _pid_of(holder)

    def sharing(self, pids: set[int]) -> bool:
        """Whether each of ``pids`` holds some partition."""
        holders = self.store.lease_holders(self.namespace, PARTITION_PREFIX).values()
        return {_pid_of(holder) for holder in holders} == pids


def _pid_of(holder: str) -> int:
    return int(holder.rsplit(":", 2)[1])


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from ``/proc/<pid>/stat``."""
    stat = _proc(pid, "stat")
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; fields 3 on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and of every live process under it
    (a supervisor and its worker processes, say)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            parent = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(BenchmarkError):
            total += process_cpu_seconds(current)
        todo.extend(children.get(current, ()))
    return total


def server_cpu_seconds(command: str = "postgres") -> float:
    """CPU seconds of every process of this host named ``command`` (the database
    server's, when it runs here: its share of a phase's work)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != command:
                continue
            total += process_cpu_seconds(int(entry.name))
        except (OSError, BenchmarkError):
            continue
    return total


def process_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    for line in _proc(pid, "status").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # kB
    return values["VmRSS"], values["VmHWM"]


def _proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except FileNotFoundError:
        raise BenchmarkError(
            f"/proc/{pid}/{name} is missing: the process has exited, or this is not Linux"
        ) from None
