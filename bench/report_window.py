"""How many jobs a worker node's death would run twice, on average: the jobs whose body
has ended and whose outcome is not yet written, counted at a random instant.

The dead-node acceptance test (tests/acceptance/test_worker_failures.py) kills one of two
nodes at a random point of a job's cycle and counts the bodies that ran twice. That
count is a draw: jobs claimed together end together, so at most instants no outcome
is at risk and during a report's window a whole batch is. Its mean is what this script
measures, without killing anything: the same two nodes (`taskwheel worker -c 100`, the
async pool, the acceptance app) drain 2,000 jobs of 50 ms, and each node's worker
process stamps every attempt's end (`Worker._ended`) and the start and return of the
report that wrote it (`store.finish_attempts`), through a ``sitecustomize`` module on
its path. Per node it prints, summed over its jobs and divided by the drain's span:

- ``to start``: the time from a body's end to the start of its report's transaction;
- ``to return``: to the return of that transaction (SQLite: the commit; PostgreSQL:
  the answer, later than the moment the report and its COMMIT have left the worker,
  after which a dead worker's report commits all the same; see `finish_attempts`).

A kill at a random instant runs again, on average, about as many jobs as these: on
SQLite the second, on PostgreSQL between the two. Run from the repository:

    .venv/bin/python bench/report_window.py sqlite
    .venv/bin/python bench/report_window.py postgres [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "acceptance" / "acceptance_app.py"
JOBS = 2000

# Loaded by every Python process started with the run's directory on its path; only a
# worker process (one that builds a `Worker`) records anything.
HOOK = '''
import atexit, json, os, time
_ENDS = {}
_WINDOWS = []
from taskwheel.worker import worker as _worker

_ended = _worker.Worker._ended
def _stamped_end(self, running, *args, **kwargs):
    _ENDS[running.job.id] = time.monotonic()
    return _ended(self, running, *args, **kwargs)
_worker.Worker._ended = _stamped_end

_init = _worker.Worker.__init__
def _init_stamping(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    finish = self.store.finish_attempts
    def stamped_finish(outcomes):
        started = time.monotonic()
        answer = finish(outcomes)
        returned = time.monotonic()
        for outcome in outcomes:
            ended = _ENDS.pop(outcome.job_id, None)
            if ended is not None:
                _WINDOWS.append((ended, started, returned))
        return answer
    self.store.finish_attempts = stamped_finish
_worker.Worker.__init__ = _init_stamping

def _dump():
    if _WINDOWS:
        with open(os.path.join(os.environ["REPORT_WINDOW_OUT"], f"{os.getpid()}.json"), "w") as f:
            json.dump(_WINDOWS, f)
atexit.register(_dump)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", choices=["sqlite", "postgres"])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server (a fresh schema in it, dropped afterwards)")
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="report-window-"))
    schema = f"tw_window_{uuid.uuid4().hex[:8]}"
    url = (f"sqlite:///{directory}/taskwheel.db" if options.store == "sqlite"
           else f"{options.database_url}?schema={schema}")
    try:
        for node in measure(directory, url):
            print(f"{options.store} node: {node['jobs']} jobs; at risk at an instant "
                  f"{node['to_start']:.2f} to start, {node['to_return']:.2f} to return; "
                  f"a report's window p50 {node['p50_ms']:.2f} ms, its batch "
                  f"{node['batch']:.1f} jobs on average")
    finally:
        if options.store == "postgres":
            subprocess.run([sys.executable, "-c", (
                "import sys, psycopg\n"
                "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
                "    c.execute(f'DROP SCHEMA IF EXISTS \"{sys.argv[2]}\" CASCADE')\n"),
                options.database_url, schema], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def measure(directory: Path, url: str) -> list[dict[str, float]]:
    shutil.copy(APP, directory / APP.name)
    (directory / "sitecustomize.py").write_text(HOOK)
    out = directory / "windows"
    out.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKWHEEL_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(directory), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["TASKWHEEL_DATABASE_URL"] = url
    command = [sys.executable, "-m", "taskwheel.cli.main"]
    subprocess.run([*command, "migrate"], env=env, cwd=directory, check=True,
                   capture_output=True)
    nodes = [subprocess.Popen(
        [*command, "worker", "--app", "acceptance_app:app", "-c", "100"],
        env={**env, "REPORT_WINDOW_OUT": str(out)}, cwd=directory,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    ) for _ in range(2)]
    try:
        bodies = directory / "bodies.txt"
        program = (
            "import sys\nfrom acceptance_app import app\n"
            "task = app.get_task('nap_and_record')\n"
            f"app.enqueue_many(task.prepare(0.05, sys.argv[1]) for _ in range({JOBS}))\n")
        subprocess.run([sys.executable, "-c", program, str(bodies)], env=env, cwd=directory,
                       check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while not (bodies.exists() and len(bodies.read_text().split()) >= JOBS):
            if time.monotonic() > deadline:
                raise SystemExit("the drain did not finish within 120 s")
            time.sleep(0.1)
    finally:
        for node in nodes:
            os.killpg(node.pid, signal.SIGTERM)
        for node in nodes:
            node.wait(60)
    return [summary(json.loads(path.read_text())) for path in sorted(out.glob("*.json"))]


def summary(windows: list[tuple[float, float, float]]) -> dict[str, float]:
    span = max(returned for _, _, returned in windows) - min(ended for ended, _, _ in windows)
    batches: dict[float, int] = {}
    for _, started, _ in windows:
        batches[started] = batches.get(started, 0) + 1
    return {
        "jobs": len(windows),
        "to_start": sum(started - ended for ended, started, _ in windows) / span,
        "to_return": sum(returned - ended for ended, _, returned in windows) / span,
        "p50_ms": statistics.median(returned - ended for ended, _, returned in windows) * 1e3,
        "batch": len(windows) / len(batches),
    }


if __name__ == "__main__":
    main()
