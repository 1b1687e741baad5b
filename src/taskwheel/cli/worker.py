"""``taskwheel worker``: run jobs until told to stop, under a small supervisor."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from taskwheel.app import App
from taskwheel.cli.options import Target, app_option, serving_options, wait_for_store
from taskwheel.cli.output import configure_logging
from taskwheel.errors import InvalidInput
from taskwheel.maintenance import MaintenanceSettings
from taskwheel.tasks import Pool
from taskwheel.worker import Worker, WorkerSettings
from taskwheel.worker.supervised import ChildLimits, run_worker_process
from taskwheel.worker.supervisor import Command, Supervisor

_ARGS = "taskwheel.worker.args"


class _WorkerCommand(click.Command):
    """Keeps the arguments it was given: the supervisor starts its worker process with
    the same ones (whatever options the worker has, now or later)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        return super().parse_args(ctx, args)


@click.command(cls=_WorkerCommand)
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
@click.option("--supervisor/--no-supervisor", default=True, show_default=True,
              help="Run the worker in a process of its own under a small supervisor that "
              "starts a fresh one when it dies (ending the dead one's attempts at once) or "
              "retires; --no-supervisor runs it in this one process.")
@click.option("--max-tasks-per-child", type=int, default=None, metavar="N",
              help="Retire the worker process after N jobs: it finishes its running jobs "
              "while a fresh one takes over.")
@click.option("--max-memory-per-child", default=None, metavar="SIZE",
              help="Retire the worker process once its resident memory is above SIZE "
              "(512MB, 2GiB; binary units).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve this worker process's Prometheus metrics (its jobs started, "
              "finished, durations, waits, leases) at http://HOST:PORT/metrics.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address the metrics listen on (loopback unless you say otherwise).")
@click.option("--metrics-gauges", is_flag=True,
              help="Also report the store's queue depths, DLQ and workers alive at each "
              "scrape (one query per scrape: for a deployment without a server).")
@click.option("--worker-id", default=None, hidden=True,
              help="The worker id the supervisor gives the process it starts.")
@click.option("--supervisor-fd", type=int, default=None, hidden=True,
              help="The supervisor's control socket, in the process it starts.")
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
    supervisor: bool,
    max_tasks_per_child: int | None,
    max_memory_per_child: str | None,
    metrics_port: int | None,
    metrics_host: str,
    metrics_gauges: bool,
    worker_id: str | None,
    supervisor_fd: int | None,
    log_level: str,
    namespaces: tuple[str, ...],
) -> None:
    """Run jobs until SIGTERM or SIGINT (a second signal stops at once).

    On the first signal the worker stops claiming, lets running jobs finish for
    --grace, then gives the leases of unfinished jobs back so another worker takes
    them at once.

    The worker runs in a process of its own under a small supervisor (this process):
    when the worker process dies (a segfault, os._exit in a task), the supervisor ends
    the attempts it was running at once (each a crashed attempt, retried by its task's
    policy), logs one line, and starts a fresh worker process. It forwards SIGTERM and
    SIGINT, and exits with the worker process's status.

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
    limits = ChildLimits.build(max_tasks_per_child=max_tasks_per_child,
                               max_memory_per_child=max_memory_per_child)
    configure_logging(log_level, target.output.format)
    app = target.load(app_spec)
    status = 0
    try:
        wait_for_store(app)
        if supervisor:
            arguments = click.get_current_context().meta[_ARGS]
            retries = {name: task.options.retry for name, task in app.tasks.items()}
            status = Supervisor(app.store, _command(arguments), retries=retries).run()
        else:
            worker = Worker(app, settings, worker_id=worker_id)
            stop_metrics = _serve_metrics(app, metrics_host, metrics_port, metrics_gauges)
            try:
                run_worker_process(worker, limits, supervisor_fd)
            finally:
                stop_metrics()
            if burst and worker.stopped_by is not None:  # stopped before it drained
                status = 128 + worker.stopped_by
    finally:
        app.close()
    if status:
        sys.exit(status)


def _serve_metrics(
    app: App, host: str, port: int | None, gauges: bool
) -> Callable[[], None]:
    """The worker process's /metrics (the supervisor passes the options on to it)."""
    if port is None:
        return lambda: None
    try:
        from taskwheel.metrics import MetricsEndpoint, metrics_exposition
    except ImportError as exc:
        raise InvalidInput("metrics_port", "metrics need their extra: pip install "
                           f"'taskwheel[metrics]' ({exc})") from None
    exposition, detach = metrics_exposition(app.store, gauges=gauges)
    endpoint = MetricsEndpoint(exposition, host, port).start()

    def stop() -> None:
        endpoint.stop()
        detach()

    return stop


def _command(arguments: list[str]) -> Command:
    """How the supervisor starts a worker process: this command again, in one process."""

    def command(worker_id: str, control_fd: int) -> list[str]:
        return [sys.executable, "-m", "taskwheel.cli.main", "worker", *arguments,
                "--no-supervisor", "--worker-id", worker_id, "--supervisor-fd",
                str(control_fd)]

    return command
