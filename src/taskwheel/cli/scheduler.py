"""``taskwheel scheduler`` and ``taskwheel dev``: fire schedules (and, for dev, run jobs)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import click

from taskwheel.cli.options import Target, app_option, common_options, wait_for_store
from taskwheel.cli.output import configure_logging
from taskwheel.cli.server import serve_in_thread
from taskwheel.errors import InvalidInput
from taskwheel.scheduler import Scheduler, SchedulerSettings
from taskwheel.worker import Worker, WorkerSettings

log = logging.getLogger("taskwheel.cli")


def scheduler_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed([
        click.option("--lease-ttl", default="1.5s", metavar="DURATION", show_default=True,
                     help="A standby takes over at most this long after the active "
                     "scheduler dies."),
        click.option("--horizon", default="60s", metavar="DURATION", show_default=True,
                     help="How far ahead fire times are held in the timing wheel."),
        click.option("--tick", default="1ms", metavar="DURATION", show_default=True,
                     help="The timing wheel's resolution."),
        click.option("--partitions", type=int, default=16, show_default=True,
                     help="Shares the schedules are hashed into, spread over the running "
                     "schedulers (give every scheduler the same number)."),
        click.option("--retention", default="7d", metavar="DURATION", show_default=True,
                     help="Finished jobs older than this are pruned (dead jobs stay "
                     "until purged)."),
        click.option("--no-sync", is_flag=True,
                     help="Do not write the app's declared schedules at start."),
        click.option("--prune-undeclared", is_flag=True,
                     help="Pause the schedules the app declared once and no longer "
                     "declares (without it, each is only reported at start, one line "
                     "each)."),
    ]):
        command = option(command)
    return command


def _settings(
    lease_ttl: str, horizon: str, tick: str, partitions: int, retention: str, *,
    prune_undeclared: bool, all_namespaces: bool = False,
) -> SchedulerSettings:
    return SchedulerSettings.build(
        lease_ttl=lease_ttl, horizon=horizon, tick=tick, partitions=partitions,
        retention=retention, all_namespaces=all_namespaces,
        prune_undeclared=prune_undeclared,
    )


log_level_option = click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                     case_sensitive=False), default="info", show_default=True)


@click.command()
@app_option
@scheduler_options
@click.option("--all-namespaces", is_flag=True,
              help="Fire and maintain every namespace, under one set of leases (an "
              "operator's scheduler), instead of the app's own.")
@log_level_option
@common_options
def scheduler(
    target: Target, *, app_spec: str, lease_ttl: str, horizon: str, tick: str,
    partitions: int, retention: str, no_sync: bool, prune_undeclared: bool, log_level: str,
    all_namespaces: bool,
) -> None:
    """Fire schedules and maintain the store until SIGTERM or SIGINT.

    Start as many as you like: they share the schedules' partitions, and when one
    stops renewing its leases the others take its share. One process at a time, a
    scheduler or a worker (whichever holds the maintenance lease), also does the
    maintenance (promote delayed jobs, rescue expired leases, expire deadlines,
    prune). At start the app's declared schedules are written (upserted by name), and
    the schedules it declared once but no longer does are reported (paused, with
    --prune-undeclared).
    With --all-namespaces it fires every namespace's schedules, sharing them with the
    other schedulers started so.
    """
    if all_namespaces and target.namespace is not None:
        raise InvalidInput("all_namespaces", "give --all-namespaces or --namespace, not both")
    settings = _settings(lease_ttl, horizon, tick, partitions, retention,
                         prune_undeclared=prune_undeclared, all_namespaces=all_namespaces)
    configure_logging(log_level, target.output.format)
    app = target.load(app_spec)
    try:
        wait_for_store(app)
        Scheduler(app, settings, sync=not no_sync).run()
    finally:
        app.close()


@click.command()
@app_option
@click.option("-q", "--queue", "queues", multiple=True, default=("default",), show_default=True,
              help="Queue to serve (repeat for several).")
@click.option("-c", "--concurrency", type=int, default=8, show_default=True,
              help="Jobs run at once.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port of the HTTP API on 127.0.0.1 (the server extra).")
@click.option("--no-server", is_flag=True, help="No HTTP API.")
@scheduler_options
@log_level_option
@common_options
def dev(
    target: Target, *, app_spec: str, queues: tuple[str, ...], concurrency: int,
    lease_ttl: str, horizon: str, tick: str, partitions: int, retention: str, no_sync: bool,
    prune_undeclared: bool, log_level: str, port: int, no_server: bool,
) -> None:
    """A scheduler, a worker and the HTTP API (on 127.0.0.1:--port) in one process,
    for a laptop (SQLite by default). Migrates the database first.

    Stops on SIGTERM or SIGINT: the worker finishes running jobs, the scheduler gives
    its lease back.
    """
    settings = _settings(lease_ttl, horizon, tick, partitions, retention,
                         prune_undeclared=prune_undeclared)
    worker_settings = WorkerSettings.build(queues=queues, concurrency=concurrency,
                                           maintenance=settings.maintenance)
    configure_logging(log_level, target.output.format)
    app = target.load(app_spec)
    wait_for_store(app, migrate=True)  # a laptop's database: create or migrate it here
    sched = Scheduler(app, settings, sync=not no_sync)
    thread = threading.Thread(target=_run_scheduler, args=(sched,), name="taskwheel-scheduler",
                              daemon=True)
    worker = Worker(app, worker_settings)

    def stop(*_: Any) -> None:
        sched.stop()
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    thread.start()
    stop_server = None if no_server else serve_in_thread(app, "127.0.0.1", port, log_level)
    try:
        worker.run(install_signal_handlers=False)
    finally:
        if stop_server is not None:
            stop_server()
        sched.stop()
        thread.join(timeout=10)
        app.close()


def _run_scheduler(sched: Scheduler) -> None:
    try:
        sched.run(install_signal_handlers=False)
    except Exception:
        log.exception("the scheduler stopped on an error")
