"""The demo behind ``taskwheel demo``: jobs of several priorities flow through two
worker processes, a failing job retries into the dead-letter queue.

The tasks live here so that worker processes can import them (``--app taskwheel.demo:app``).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass

import taskwheel
from taskwheel.jobs import Attempt, Job

app = taskwheel.App()


@app.task(queue="images")
async def make_thumbnail(image: str) -> str:
    await asyncio.sleep(random.uniform(0.02, 0.06))
    return f"thumbs/{image}"


@app.task(queue="emails")
def send_email(to: str) -> str:
    time.sleep(0.02)
    return f"sent to {to}"


@app.task(retry=taskwheel.Retry(max_attempts=3, backoff="exponential", base="200ms", jitter=0.1))
def export_report(name: str) -> None:
    raise ConnectionError(f"warehouse unreachable while exporting {name!r}")


greet = app.shell_task("greet", "echo hello from a shell task, {0}")


@dataclass(frozen=True)
class DemoResult:
    database_url: str
    jobs: list[Job]
    dead: list[tuple[Job, list[Attempt]]]
    start_rank_by_priority: dict[int, float]
    duplicate_of: int
    duplicate_returned: int
    elapsed: float
    workers: int


def run_demo(workers: int = 2, concurrency: int = 2) -> DemoResult:
    """Migrate the app's database, enqueue a mix of jobs, drain them with worker
    processes, and report."""
    app.migrate()  # the laptop demo creates its own database
    client = app.client
    images = [f"photo-{n:02d}.jpg" for n in range(24)]
    priorities = [0, 5, 9]
    requests = [
        make_thumbnail.prepare(image, priority=priorities[n % 3]) for n, image in enumerate(images)
    ]
    requests += [send_email.prepare(f"user{n}@example.com") for n in range(8)]
    requests.append(export_report.prepare("q3-revenue", priority=9))
    requests.append(greet.prepare("demo", delay="500ms"))
    welcome = send_email.prepare("new-user@example.com", idempotency_key=f"welcome:{time.time()}")
    requests.append(welcome)
    handles = app.enqueue_many(requests)
    again = send_email.enqueue("new-user@example.com", idempotency_key=welcome.idempotency_key)

    started = time.monotonic()
    command = [
        sys.executable, "-m", "taskwheel.cli.main", "worker", "--app", "taskwheel.demo:app",
        "-q", "default", "-q", "images", "-q", "emails", "-c", str(concurrency), "--burst",
        "--database-url", app.database_url, "--log-level", "warning",
    ]
    processes = [subprocess.Popen(command, env=dict(os.environ)) for _ in range(workers)]
    for process in processes:
        process.wait(timeout=120)
    elapsed = time.monotonic() - started

    jobs = client.get_jobs([h.id for h in handles])
    thumbnails = sorted(
        (j for j in jobs if j.task == "make_thumbnail" and j.started_at is not None),
        key=lambda j: (j.started_at, j.id),
    )
    ranks: dict[int, list[int]] = {}
    for rank, job in enumerate(thumbnails):
        ranks.setdefault(job.priority, []).append(rank)
    dead = [(j, client.attempts(j.id)) for j in jobs if j.status.value == "dead"]
    return DemoResult(
        database_url=app.database_url,
        jobs=jobs,
        dead=dead,
        start_rank_by_priority={p: sum(r) / len(r) for p, r in sorted(ranks.items(), reverse=True)},
        duplicate_of=handles[-1].id,
        duplicate_returned=again.id,
        elapsed=elapsed,
        workers=workers,
    )
