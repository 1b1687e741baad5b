"""``taskwheel worker``: run jobs until told to stop."""

from __future__ import annotations

import sys

import click

from taskwheel.cli.options import Target, app_option, serving_options, wait_for_store
from taskwheel.cli.output import configure_logging
from taskwheel.maintenance import MaintenanceSettings
from taskwheel.tasks import Pool
from taskwheel.worker import Worker, WorkerSettings


@click.command()
@app_option
@click.option("-q", "--queue", "queues", multiple=True, default=("default",), show_default=True,
              help="Queue to serve (repeat for several).")
@click.option("-c", "--concurrency", type=int, default=8, show_default=True,
              help="Jobs run at once.")
@click.option("--pool", type=click.Choice([p.value for p in Pool]), default=Pool.ASYNC.value,
              show_default=True, help="Where task code runs: event loop and threads, threads "
              "only, or child processes.")
@click.option("--lease-ttl", default="4s", metavar="DURATION", show_default=True,
              help="A vanished worker's jobs are run again this long after its last heartbeat.")
@click.option("--heartbeat", default=None, metavar="DURATION",
              help="Lease renewal interval.  [default: ttl / 4]")
@click.option("--grace", default="30s", metavar="DURATION", show_default=True,
              help="On SIGTERM, how long running jobs may finish before their leases are "
              "given back.")
@click.option("--cancel-grace", default="5s", metavar="DURATION", show_default=True,
              help="How long a cancelled job may take to stop before it is killed.")
@click.option("--poll-interval", default="1s", metavar="DURATION", show_default=True,
              help="Longest wait between looks for work when no wake-up arrives.")
@click.option("--batch-size", type=int, default=100, show_default=True,
              help="Most jobs claimed in one statement.")
@click.option("--burst", is_flag=True, help="Exit once the served queues are drained: no job "
              "ready or running, none due within 60s (exit 0); stopped by a signal first, "
              "exit 128 + its number.")
@click.option("--retention", default="7d", metavar="DURATION", show_default=True,
              help="While this worker maintains the store, finished jobs older than this "
              "are pruned (dead jobs stay until purged).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
              case_sensitive=False), default="info", show_default=True)
@serving_options
def worker(
    target: Target,
    *,
    app_spec: str,
    queues: tuple[str, ...],
    concurrency: int,
    pool: str,
    lease_ttl: str,
    heartbeat: str | None,
    grace: str,
    cancel_grace: str,
    poll_interval: str,
    batch_size: int,
    burst: bool,
    retention: str,
    log_level: str,
    namespaces: tuple[str, ...],
) -> None:
    """Run jobs until SIGTERM or SIGINT (a second signal stops at once).

    On the first signal the worker stops claiming, lets running jobs finish for
    --grace, then gives the leases of unfinished jobs back so another worker takes
    them at once.

    Workers also maintain the store, one at a time (whoever holds the maintenance lease,
    schedulers included): they rescue the jobs of a worker that died, promote delayed
    jobs, expire missed deadlines and prune, so workers alone need no scheduler.

    One worker serves the app's namespace, the ones --namespace names (repeat it), or
    every namespace with --all-namespaces: a fleet of an operator's serves every tenant
    without a process per tenant. A worker that serves several maintains them all.
    """
    settings = WorkerSettings.build(
        queues=queues, concurrency=concurrency, pool=pool, lease_ttl=lease_ttl,
        heartbeat=heartbeat, grace=grace, cancel_grace=cancel_grace,
        poll_interval=poll_interval, batch_size=batch_size, burst=burst,
        maintenance=MaintenanceSettings.build(retention=retention), namespaces=namespaces,
    )
    configure_logging(log_level, target.output.format)
    app = target.load(app_spec)
    try:
        wait_for_store(app)
        worker = Worker(app, settings)
        worker.run()
    finally:
        app.close()
    if burst and worker.stopped_by is not None:  # stopped before its queues were drained
        sys.exit(128 + worker.stopped_by)
