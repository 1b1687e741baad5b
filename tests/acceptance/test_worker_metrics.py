"""``taskwheel worker --metrics-port``: the worker process serves its own Prometheus
metrics on loopback, and the fresh process that replaces a dead one serves them again."""

from __future__ import annotations

import os
import signal
import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families

from taskwheel.lifecycle import JobStatus
from waiting import wait_for

from .conftest import Project


def finished(port: int, task: str) -> float | None:
    """taskwheel_jobs_finished_total of ``task`` on the worker's endpoint (None while
    nothing answers)."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    return sum(sample.value for family in text_string_to_metric_families(answer.text)
               for sample in family.samples
               if sample.name == "taskwheel_jobs_finished_total"
               and sample.labels.get("task") == task)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_worker_serves_its_metrics_and_its_replacement_serves_them_again(
    project: Project,
) -> None:
    port = free_port()
    worker = project.start_worker("-c", "2", "--metrics-port", str(port))
    job_ids = project.enqueue_many("ok", [[]] * 3)
    wait_for(lambda: project.all_in(job_ids, JobStatus.SUCCEEDED), timeout=30,
             what="the jobs to succeed")
    wait_for(lambda: finished(port, "ok") == 3, timeout=10, what="3 finished jobs counted")

    # The worker process dies; its supervisor starts a fresh one, which takes the port.
    [child] = project.worker_process_pids(worker)
    os.kill(child, signal.SIGKILL)
    [after] = project.enqueue_many("ok", [[]])
    wait_for(lambda: project.job(after).status is JobStatus.SUCCEEDED, timeout=30,
             what="a job after the crash to succeed")
    wait_for(lambda: finished(port, "ok") == 1, timeout=10,
             what="the fresh worker process to count its own job")

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
