"""Prometheus metrics on both stores: ``/metrics`` of a real server scraped while a real
worker runs, its counters checked against what the store holds; the gauges read from
the store at scrape time; a worker process's own endpoint."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

import taskwheel
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.metrics import OTHER, MetricsEndpoint, MetricsSettings, metrics_exposition
from taskwheel.retry import Retry
from taskwheel.server import create_app
from waiting import wait_for

from .conftest import running_worker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (found, pairs), value in samples.items()
               if found == name and set(labels.items()) <= set(pairs))


@contextmanager
def serving(app: taskwheel.App) -> Iterator[str]:
    """A real server over the app's store on a free loopback port; its base URL."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(app.store, app), log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]},
                              daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, what="the server to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


def count(app: taskwheel.App, status: JobStatus) -> int:
    return len(app.store.list_jobs("default", JobFilter(status=status, limit=100_000)))


def test_a_scrape_during_a_run_agrees_with_the_store(app: taskwheel.App) -> None:
    release = threading.Event()

    @app.task(name="ok", priority=3)
    def ok() -> None:
        release.wait(10)

    @app.task(name="boom", queue="risky", retry=Retry(max_attempts=2, base="0s"))
    def boom() -> None:
        raise ValueError("boom")

    with serving(app) as url:
        for _ in range(3):
            boom.enqueue()
        with running_worker(app, queues=["default", "risky"], concurrency=4):
            wait_for(lambda: count(app, JobStatus.DEAD) == 3, what="boom's jobs to die")
            # During the run: four of ok hold the worker, the rest wait their turn.
            for _ in range(6):
                ok.enqueue()
            wait_for(lambda: count(app, JobStatus.RUNNING) == 4, what="ok's jobs to start")
            during = scrape(f"{url}/metrics")
            assert total(during, "taskwheel_queue_jobs", queue="default",
                         state="running") == 4
            assert total(during, "taskwheel_queue_jobs", queue="default", state="queued",
                         priority="3") == 2
            assert total(during, "taskwheel_queue_oldest_ready_age_seconds",
                         queue="default", priority="3") >= 0
            assert total(during, "taskwheel_dlq_jobs", queue="risky") == 3
            assert total(during, "taskwheel_workers_alive", namespace="default") == 1
            assert total(during, "taskwheel_queue_workers_alive", queue="risky") == 1
            assert total(during, "taskwheel_jobs_started_total", task="ok") == 4
            release.set()
            wait_for(lambda: count(app, JobStatus.SUCCEEDED) == 6, what="ok's jobs to end")
            wait_for(lambda: total(scrape(f"{url}/metrics"), "taskwheel_jobs_finished_total",
                                   task="ok") == 6, what="the last outcomes to be counted")
            after = scrape(f"{url}/metrics")

    assert total(after, "taskwheel_jobs_enqueued_total") == 9
    assert total(after, "taskwheel_jobs_enqueued_total", task="boom", queue="risky") == 3
    assert total(after, "taskwheel_jobs_started_total") == 6 + 3 * 2
    assert total(after, "taskwheel_jobs_finished_total", outcome="succeeded") == count(
        app, JobStatus.SUCCEEDED)
    assert total(after, "taskwheel_jobs_finished_total", outcome="failed") == 6
    assert total(after, "taskwheel_jobs_retried_total", task="boom") == 3
    assert total(after, "taskwheel_jobs_dead_total", task="boom") == count(app, JobStatus.DEAD)
    assert total(after, "taskwheel_dlq_jobs") == 3
    assert total(after, "taskwheel_queue_jobs", state="queued") == 0
    assert total(after, "taskwheel_job_duration_seconds_count", task="ok") == 6
    assert total(after, "taskwheel_job_wait_seconds_count", queue="default",
                 priority="3") == 6
    assert total(after, "taskwheel_leases_won_total", lease="maintenance") == 1
    assert total(after, "taskwheel_leases_held", lease="maintenance") == 1


def test_queue_and_task_names_past_the_cap_are_counted_as_other(app: taskwheel.App) -> None:
    exposition, detach = metrics_exposition(app.store, settings=MetricsSettings(max_queues=2))
    try:
        send = app.task(lambda: None, name="send")
        for queue in ("a", "b", "c", "d"):
            send.enqueue(queue=queue)
        text = exposition.render().decode()
    finally:
        detach()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert total(samples, "taskwheel_jobs_enqueued_total", queue=OTHER) == 2
    assert total(samples, "taskwheel_queue_jobs", queue=OTHER) == 2
    assert {dict(pairs)["queue"] for (name, pairs) in samples
            if name == "taskwheel_queue_jobs"} == {"a", "b", OTHER}


def test_a_worker_process_serves_its_own_metrics_on_loopback(app: taskwheel.App) -> None:
    exposition, detach = metrics_exposition(app.store, gauges=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        # The port is taken (a retiring process still holds it): the endpoint waits.
        endpoint = MetricsEndpoint(exposition, "127.0.0.1", port, retry=0.05).start()
        probe.listen()
        assert not endpoint.bound.is_set()
    try:
        assert endpoint.bound.wait(5), "the endpoint took the port once it was free"
        app.task(lambda: None, name="send").enqueue()
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
        assert total(samples, "taskwheel_jobs_enqueued_total", task="send") == 1
        assert total(samples, "taskwheel_queue_jobs") == 0, "no store gauges asked for"
    finally:
        endpoint.stop()
        detach()
