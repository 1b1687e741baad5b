"""``taskwheel bench``: measure enqueue rate, drain rate and enqueue→start latency;
``taskwheel bench schedules``: fire lateness, scheduler CPU and memory at N schedules;
``taskwheel bench failover``: the time a standby scheduler takes over;
``taskwheel bench workflows``: the overhead per step of a chain and a fan-out/fan-in;
``taskwheel bench server``: the HTTP server's enqueue rate, long-poll latency and drain;
``taskwheel bench watching``: a /metrics scrape of a big deployment, and the drain with
dashboard tabs open and /metrics scraped against the drain without;
``taskwheel bench scale``: whether the costs stay flat as tables and schedules grow;
``taskwheel bench features``: each optional feature's drain cost against the plain drain;
``taskwheel bench dispatch``: fair shares' cost to the drain, their fairness, aging."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from taskwheel.bench.core import (
    BenchResult,
    CeilingResult,
    DrainResult,
    EnqueueResult,
    run_benchmark,
    summarise,
)
from taskwheel.bench.dispatch import (
    DispatchBenchResult,
    DispatchBenchSettings,
    run_dispatch_benchmark,
)
from taskwheel.bench.failover import FailoverResult, run_failover_benchmark
from taskwheel.bench.features import (
    Feature,
    FeatureBenchResult,
    FeatureBenchSettings,
    run_features_benchmark,
)
from taskwheel.bench.report import Percentiles, Progress
from taskwheel.bench.scale import FULL, ScaleBenchResult, ScaleBenchSettings, run_scale_benchmark
from taskwheel.bench.schedules import BurstResult, ScheduleBenchResult, run_schedule_benchmark
from taskwheel.bench.server import ServerBenchResult, ServerBenchSettings, run_server_benchmark
from taskwheel.bench.settings import (
    BenchSettings,
    BenchStore,
    FailoverSettings,
    ScheduleBenchSettings,
    WorkflowBenchSettings,
    postgres_url_for,
)
from taskwheel.bench.watching import (
    WatchingBenchResult,
    WatchingBenchSettings,
    run_watching_benchmark,
    summary_lines,
)
from taskwheel.bench.workflows import ShapeResult, WorkflowBenchResult, run_workflow_benchmark
from taskwheel.cli.output import ANSWER_FORMATS, Format, Output, error_line
from taskwheel.cli.progress import phases
from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.schedules import DEFAULT_MISFIRE_GRACE
from taskwheel.tasks import Pool

R = TypeVar("R")

format_option = click.option(
    "--format", "output_format", type=click.Choice([f.value for f in ANSWER_FORMATS]),
    default=Format.TABLE.value, show_default=True, help="How to print the figures.")
quiet_option = click.option("--quiet", is_flag=True, help="No progress lines on stderr.")


@click.group(invoke_without_command=True)
@click.option("--store", type=click.Choice([s.value for s in BenchStore]), default=None,
              help="Store to measure.  [default: the one --database-url names, else sqlite]")
@click.option("--database-url", default=None, metavar="URL",
              help="sqlite:///path.db or postgresql://... to measure on; the benchmark works "
              "in namespaces of its own and leaves its jobs there (on PostgreSQL, in a "
              "schema of its own dropped afterwards, unless the URL names one with "
              "?schema=).  [default: SQLite: a fresh temporary file, deleted afterwards; "
              "PostgreSQL: $TASKWHEEL_DATABASE_URL]")
@click.option("--jobs", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Jobs enqueued in batches, and jobs drained.")
@click.option("--single-jobs", type=click.IntRange(min=1), default=None,
              help="Jobs enqueued one call each.  [default: min(jobs, 5000)]")
@click.option("--enqueue-batch", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Jobs per enqueue_many call.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=100, show_default=True,
              help="Jobs each worker runs at once.")
@click.option("--pool", type=click.Choice([p.value for p in Pool]), default=Pool.ASYNC.value,
              show_default=True, help="Where the workers run task code.")
@click.option("--claim-batch", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most jobs a worker claims in one statement (its --batch-size).")
@click.option("--latency-jobs", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Jobs of the latency benchmark.")
@click.option("--latency-rate", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Jobs per second the latency benchmark enqueues.")
@click.option("--delayed-jobs", type=click.IntRange(min=1), default=300, show_default=True,
              help="Delayed jobs of the start-lateness benchmark (leads 10 ms to 2 s).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a drain or latency phase may take at most.")
@click.option("--keys", type=click.IntRange(min=0), default=0, show_default=True,
              help="Spread the drained jobs over this many concurrency keys (0: none).")
@click.option("--key-limit", type=click.IntRange(min=1), default=1, show_default=True,
              help="Slots of each key with --keys.")
@click.option("--repeat", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Runs of the whole benchmark, each on a fresh database; with more than "
              "one, every figure is also printed as its median [min-max].")
@format_option
@quiet_option
@click.pass_context
def bench(
    ctx: click.Context,
    /,
    *,
    store: str | None,
    database_url: str | None,
    jobs: int,
    single_jobs: int | None,
    enqueue_batch: int,
    workers: int,
    concurrency: int,
    pool: str,
    claim_batch: int,
    latency_jobs: int,
    latency_rate: float,
    delayed_jobs: int,
    timeout: float,
    keys: int,
    key_limit: int,
    repeat: int,
    output_format: str,
    quiet: bool,
) -> None:
    """Measure the store and workers: single and batch enqueue rate, drain rate of
    no-op jobs with worker processes, and enqueue→start latency percentiles.

    Prints the figures with the machine, the store's settings and how each figure was
    measured (see bench/README.md). Takes about half a minute with the defaults.
    The subcommands measure the scheduler; their options follow their name.
    """
    if ctx.invoked_subcommand is not None:
        if ctx.invoked_subcommand == "workflows":
            if store == BenchStore.POSTGRES.value:
                error_line("--store: bench workflows measures SQLite only")
                ctx.exit(2)
            return
        try:
            ctx.obj = postgres_url_for(store, database_url)
        except InvalidInput as error:
            error_line(f"--{error.field.replace('_', '-')}: {error.reason}")
            ctx.exit(2)
        return
    output = Output(Format(output_format))
    results = [
        _measure(ctx, quiet, lambda progress: run_benchmark(BenchSettings.build(
            database_url=database_url, store=store, jobs=jobs, single_jobs=single_jobs,
            enqueue_batch=enqueue_batch, workers=workers, concurrency=concurrency,
            pool=pool, claim_batch=claim_batch, latency_jobs=latency_jobs,
            latency_rate=latency_rate, delayed_jobs=delayed_jobs, timeout=timeout,
            keys=keys, key_limit=key_limit,
        ), progress))
        for _ in range(repeat)
    ]
    if repeat == 1:
        if output.json:
            output.emit_json(results[0].to_dict())
        else:
            output.console.print(figures_table(results[0]))
            output.console.print(settings_table(results[0].settings))
        return
    runs = [result.to_dict() for result in results]
    summary = summarise(runs)
    if output.json:
        output.emit_json({"summary": summary, "runs": runs})
    else:
        output.console.print(summary_table(summary, repeat))
        output.console.print(settings_table(results[-1].settings))


@bench.command("schedules", short_help="Fire lateness, CPU and memory at N schedules; a burst.")
@click.option("--schedules", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Active schedules, each firing once a --period, their fires spread "
              "evenly over it.")
@click.option("--period", default="60s", metavar="DURATION", show_default=True,
              help="How often each schedule fires (whole seconds, 1s to 1d).")
@click.option("--duration", default="65s", metavar="DURATION", show_default=True,
              help="The measured window, from the first fire; the period and 5s lets "
              "every schedule fire.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes running the fired no-op jobs.")
@click.option("--burst", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="Schedules all due at one instant, measured after the window (0: none).")
@click.option("--schedulers", type=click.IntRange(min=1, max=16), default=1,
              show_default=True, help="Scheduler processes of the steady phase, sharing the "
              "partitions (each one's CPU and memory is read over its share).")
@click.option("--timeout", default="120s", metavar="DURATION", show_default=True,
              help="The longest any wait (start-up, last fires, jobs to finish) may take.")
@format_option
@quiet_option
@click.pass_context
def bench_schedules(
    ctx: click.Context, /, *, schedules: int, period: str, duration: str, workers: int,
    burst: int, schedulers: int, timeout: str, output_format: str, quiet: bool,
) -> None:
    """Measure the scheduler: fire lateness (created_at - fire time) and start lateness
    at N active schedules, duplicates, the scheduler's CPU share and memory per
    schedule, and a burst of schedules due at one instant.

    One `taskwheel scheduler` and idle `taskwheel worker` processes on a fresh
    temporary SQLite file. Takes the duration plus creation and start-up (about 1.5
    minutes for 10,000 schedules). See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_schedule_benchmark(
        ScheduleBenchSettings.build(schedules=schedules, duration=duration, workers=workers,
                                    burst=burst, timeout=timeout, postgres_url=ctx.obj,
                                    schedulers=schedulers, period=period),
        progress,
    ))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(schedules_table(result))
        output.console.print(settings_table(result.settings))


@bench.command("failover", short_help="Time for a standby scheduler to take over after SIGKILL.")
@click.option("--runs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Times the active scheduler is SIGKILLed.")
@click.option("--timeout", default="30s", metavar="DURATION", show_default=True,
              help="The longest a standby may take to fire, or a scheduler to start.")
@format_option
@quiet_option
@click.pass_context
def bench_failover(
    ctx: click.Context, /, *, runs: int, timeout: str, output_format: str, quiet: bool,
) -> None:
    """Measure failover: two `taskwheel scheduler` processes and a schedule every
    100 ms; the lease holder is SIGKILLed and the time to the standby's first job is
    taken, RUNS times (a new standby is started after each).

    Prints each run, min/median/max, lost and duplicated fire times, and the lease
    settings. See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_failover_benchmark(
        FailoverSettings.build(runs=runs, timeout=timeout, postgres_url=ctx.obj), progress,
    ))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(failover_table(result))
        output.console.print(settings_table(result.settings))


@bench.command("workflows", short_help="Overhead per step of a chain and a fan-out/fan-in.")
@click.option("--steps", type=click.IntRange(min=3), default=1_000, show_default=True,
              help="Steps of each run: a chain, and a fan-out/fan-in (one source, "
              "steps - 2 in parallel, one sink).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes, started and idle before the runs.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=100,
              show_default=True, help="Steps each worker runs at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a run may take at most.")
@format_option
@quiet_option
@click.pass_context
def bench_workflows(
    ctx: click.Context, /, *, steps: int, workers: int, concurrency: int, timeout: float,
    output_format: str, quiet: bool,
) -> None:
    """Measure workflows: a chain of STEPS no-op steps and a fan-out/fan-in of STEPS
    steps on a fresh temporary SQLite file, run by idle `taskwheel worker` processes.
    Prints each run's total time, the overhead per step ((total - the steps' own work)
    / steps) and the handoff from a finished dependency to the start of its dependent.
    See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_workflow_benchmark(
        WorkflowBenchSettings.build(steps=steps, workers=workers, concurrency=concurrency,
                                    timeout=timeout),
        progress,
    ))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(workflows_table(result))
        output.console.print(settings_table(result.settings))


@bench.command("dispatch", short_help="Fair shares' and key limits' cost to the drain, "
               "fairness, aging.")
@click.option("--jobs", type=click.IntRange(min=70), default=20_000, show_default=True,
              help="Jobs of each drain.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes, started and idle before each drain.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=100,
              show_default=True, help="Jobs each worker runs at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=300.0,
              show_default=True, help="Seconds a drain may take at most.")
@click.option("--fair-first", is_flag=True,
              help="Run the fair drain before the plain one (alternate it between runs: "
              "the second drain meets the first one's dead rows).")
@format_option
@quiet_option
@click.pass_context
def bench_dispatch(
    ctx: click.Context, /, *, jobs: int, workers: int, concurrency: int, timeout: float,
    fair_first: bool, output_format: str, quiet: bool,
) -> None:
    """Measure dispatch control: the drain of JOBS no-op jobs with fair shares on (keys
    of weights 1:2:4) and over 1,000 keys with a concurrency limit of 1 each, against
    the plain drain in the same run, Jain's index of the
    keys' weight-normalised claims under saturation, and the wait of a priority-0
    trickle behind a priority-9 flood in a queue that ages (simulated clock).
    See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_dispatch_benchmark(
        DispatchBenchSettings.build(jobs=jobs, workers=workers, concurrency=concurrency,
                                    timeout=timeout, fair_first=fair_first),
        progress, postgres_url=ctx.obj,
    ))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(dispatch_table(result))
        output.console.print(settings_table(result.settings))


@bench.command("server", short_help="HTTP enqueue rate, long-poll claim latency, HTTP drain.")
@click.option("--clients", type=click.IntRange(min=1), default=8, show_default=True,
              help="Concurrent clients enqueueing.")
@click.option("--single-jobs", type=click.IntRange(min=1), default=5_000, show_default=True,
              help="Jobs enqueued one request each.")
@click.option("--batch-jobs", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Jobs enqueued in batches.")
@click.option("--batch-size", type=click.IntRange(min=1, max=10_000), default=500,
              show_default=True, help="Jobs per batch request.")
@click.option("--latency-jobs", type=click.IntRange(min=1), default=500, show_default=True,
              help="Jobs of the enqueue→claim latency phase.")
@click.option("--latency-rate", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Jobs per second the latency phase enqueues.")
@click.option("--drain-jobs", type=click.IntRange(min=1), default=5_000, show_default=True,
              help="No-op jobs the HTTP workers drain.")
@click.option("--http-workers", type=click.IntRange(min=1), default=4, show_default=True,
              help="Workers of the pull protocol draining them.")
@click.option("--claim-limit", type=click.IntRange(min=1, max=1000), default=50,
              show_default=True, help="Most jobs one claim takes.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a phase may take at most.")
@format_option
@quiet_option
@click.pass_context
def bench_server(
    ctx: click.Context, /, *, clients: int, single_jobs: int, batch_jobs: int,
    batch_size: int, latency_jobs: int, latency_rate: float, drain_jobs: int,
    http_workers: int, claim_limit: int, timeout: float, output_format: str, quiet: bool,
) -> None:
    """Measure the HTTP server from outside: enqueue rate (single and batch) with
    concurrent clients, enqueue→claim latency through the long-poll claim, and the drain
    rate of no-op jobs by workers of the pull protocol. One `taskwheel server` process
    on a fresh database (--store and --database-url before `server`); the load from
    threads of this process. See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_server_benchmark(
        ServerBenchSettings.build(
            store=BenchStore.POSTGRES if ctx.obj else BenchStore.SQLITE,
            database_url=ctx.obj, clients=clients, single_jobs=single_jobs,
            batch_jobs=batch_jobs, batch_size=batch_size, latency_jobs=latency_jobs,
            latency_rate=latency_rate, drain_jobs=drain_jobs, http_workers=http_workers,
            claim_limit=claim_limit, timeout=timeout),
        progress))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(server_table(result))
        output.console.print(settings_table(result.settings))


@bench.command("watching",
               short_help="A /metrics scrape at 1,000 queues; the drain watched and not.")
@click.option("--queues", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Queues of the scrape's database.")
@click.option("--priorities", type=click.IntRange(min=1), default=10, show_default=True,
              help="Priorities with ready jobs in each queue.")
@click.option("--jobs-per-band", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ready jobs per queue and priority.")
@click.option("--scrapes", type=click.IntRange(min=1), default=15, show_default=True,
              help="Scrapes timed, in this process and through the server.")
@click.option("--jobs", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="No-op jobs of each drain.")
@click.option("--runs", type=click.IntRange(min=1, max=50), default=3, show_default=True,
              help="Pairs of drains (plain and watched, alternating which goes first).")
@click.option("--tabs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Dashboard streams open during a watched drain.")
@click.option("--scrape-every", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Seconds between /metrics scrapes of a watched drain.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes of each drain.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=100,
              show_default=True, help="Jobs each worker runs at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a drain may take at most.")
@format_option
@quiet_option
@click.pass_context
def bench_watching(
    ctx: click.Context, /, *, queues: int, priorities: int, jobs_per_band: int,
    scrapes: int, jobs: int, runs: int, tabs: int, scrape_every: float, workers: int,
    concurrency: int, timeout: float, output_format: str, quiet: bool,
) -> None:
    """Measure what watching costs: the whole of /metrics rendered for QUEUES x
    PRIORITIES bands (wall and CPU per scrape, in this process and through a `taskwheel
    server`), and RUNS pairs of drains of JOBS no-op jobs, one with nothing watching and
    one with TABS dashboard streams open and /metrics scraped every SCRAPE-EVERY
    seconds; prints each mode's drain rate and their ratio (--store and --database-url
    before `watching`). See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_watching_benchmark(
        WatchingBenchSettings.build(
            store=BenchStore.POSTGRES if ctx.obj else BenchStore.SQLITE,
            database_url=ctx.obj, queues=queues, priorities=priorities,
            jobs_per_band=jobs_per_band, scrapes=scrapes, jobs=jobs, runs=runs, tabs=tabs,
            scrape_every=scrape_every, workers=workers, concurrency=concurrency,
            timeout=timeout),
        progress))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(watching_table(result))
        output.console.print(settings_table(result.settings))


def watching_table(result: WatchingBenchResult) -> Table:
    table = Table(title="taskwheel bench watching", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    for row in summary_lines(result):
        table.add_row(*row)
    return table


@bench.command("scale", short_help="Drain with a full jobs table, a million schedules, "
               "the wheel's tick.")
@click.option("--finished", type=click.IntRange(min=0), default=500_000, show_default=True,
              help=f"Finished jobs (with their attempts) filled into the jobs table before "
              f"the loaded drain; the full run: {FULL['finished']:,} (0 and --scheduled 0: "
              f"no history part).")
@click.option("--scheduled", type=click.IntRange(min=0), default=50_000, show_default=True,
              help=f"Jobs due in a day filled in beside them; the full run: "
              f"{FULL['scheduled']:,}.")
@click.option("--drain-jobs", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="No-op jobs of each drain (empty table, as filled, after ANALYZE).")
@click.option("--autovacuum", "autovacuum", type=click.Choice(["on", "off"]), multiple=True,
              default=("on", "off"), show_default=True,
              help="PostgreSQL: the jobs and attempts tables' autovacuum_enabled of the "
              "runs (repeat for both); the server's settings are never changed.")
@click.option("--schedules", type=click.IntRange(min=0), default=10_000, show_default=True,
              help=f"Active schedules of the schedules part (0: none); the full run: "
              f"{FULL['schedules']:,}.")
@click.option("--schedulers", type=click.IntRange(min=1, max=16), default=4,
              show_default=True, help="Schedulers sharing the partitions in the second "
              "schedules run (the first has one).")
@click.option("--duration", default="30s", metavar="DURATION", show_default=True,
              help="The measured window of each schedules run.")
@click.option("--period", default="60s", metavar="DURATION", show_default=True,
              help="How often each schedule fires (whole seconds, 1s to 1d): a million "
              "schedules a minute is 16,667 fires a second, a million an hour 278.")
@click.option("--timers", default="10000,100000,1000000", metavar="N,N,...",
              show_default=True, help="Timing wheel sizes whose cost per tick is measured "
              "(none: no wheel part).")
@click.option("--repeat", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Runs of the history part, each on a fresh database.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes.")
@click.option("--timeout", default="10m", metavar="DURATION", show_default=True,
              help="The longest any drain, fill or wait may take.")
@format_option
@quiet_option
@click.pass_context
def bench_scale(
    ctx: click.Context, /, *, finished: int, scheduled: int, drain_jobs: int,
    autovacuum: tuple[str, ...], schedules: int, schedulers: int, duration: str, period: str,
    timers: str, repeat: int, workers: int, timeout: str, output_format: str, quiet: bool,
) -> None:
    """Measure whether the costs stay flat as the work grows: the drain rate with
    FINISHED finished jobs and SCHEDULED later ones in the jobs table against the same
    drain on the empty table just before (as filled, and after ANALYZE; on PostgreSQL
    with the tables' autovacuum on and off); fire lateness, start-up, memory and CPU at
    SCHEDULES schedules with one scheduler and with SCHEDULERS sharing them; the timing
    wheel's cost per tick at each size of TIMERS.

    The defaults take a few minutes; the full run (the sizes the help names) takes
    hours. See bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_scale_benchmark(
        ScaleBenchSettings.build(
            store=BenchStore.POSTGRES if ctx.obj else BenchStore.SQLITE,
            database_url=ctx.obj, finished=finished, scheduled=scheduled,
            drain_jobs=drain_jobs, autovacuum=autovacuum, schedules=schedules,
            schedulers=schedulers, duration=duration, period=period, timers=_sizes(timers),
            repeat=repeat, workers=workers, timeout=timeout),
        progress))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(scale_table(result))
        output.console.print(settings_table(result.settings))


def _sizes(text: str) -> list[int]:
    """``--timers``: sizes separated by commas, or none."""
    if text.strip().lower() == "none":
        return []
    sizes = []
    for part in text.split(","):
        try:
            size = int(part.strip().replace("_", ""))
        except ValueError:
            raise InvalidInput("timers", f"not a number: {part.strip()!r} (use e.g. "
                               "10000,100000 or none)") from None
        if size < 1:
            raise InvalidInput("timers", f"must be integers >= 1, got {size}")
        sizes.append(size)
    return sizes


@bench.command("features", short_help="Each optional feature's drain cost against the plain "
               "drain.")
@click.option("--jobs", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="No-op jobs of each drain.")
@click.option("--feature", "features", type=click.Choice(
    [f.value for f in Feature if f is not Feature.PLAIN]), multiple=True,
    help="A feature to measure besides the plain drain (repeat for several).  "
    "[default: every one]")
@click.option("--repeat", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Rounds (plain, then each feature); each ratio is taken inside its "
              "round.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes of each drain.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a drain may take at most.")
@format_option
@quiet_option
@click.pass_context
def bench_features(
    ctx: click.Context, /, *, jobs: int, features: tuple[str, ...], repeat: int,
    workers: int, timeout: float, output_format: str, quiet: bool,
) -> None:
    """Measure what each optional feature on the hot path costs the drain: workflows,
    a metrics handler on the event hook, tracing, pauses present, quotas present; each
    as a ratio to the plain drain of the same round (rate, and the workers' CPU per
    job), on one fresh database (--store and --database-url before `features`). See
    bench/README.md.
    """
    output = Output(Format(output_format))
    result = _measure(ctx, quiet, lambda progress: run_features_benchmark(
        FeatureBenchSettings.build(
            store=BenchStore.POSTGRES if ctx.obj else BenchStore.SQLITE,
            database_url=ctx.obj, jobs=jobs, features=list(features) or None,
            repeat=repeat, workers=workers, timeout=timeout),
        progress))
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(features_table(result))
        output.console.print(settings_table(result.settings))


def scale_table(result: ScaleBenchResult) -> Table:
    table = Table(title="taskwheel bench scale", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    for run in result.history:
        state = run.autovacuum
        label = (f" (tables' autovacuum {state['tables']['jobs']}, in effect "
                 f"{state['effective']})" if state else "")
        ratios = run.ratios()
        table.add_row(f"drain, empty table{label}", f"{run.empty.per_s:,.0f} jobs/s",
                      f"{run.empty.jobs:,} jobs; workers' CPU "
                      f"{run.empty.cpu.per_job_us(run.empty.jobs)['client']:,.0f} µs/job")
        table.add_row(f"fill: {run.fill.rows:,} rows", f"{run.fill.seconds:,.1f} s",
                      run.fill.method)
        for name, drain, key in (("as filled", run.loaded, "loaded"),
                                 ("after ANALYZE", run.analysed, "analysed")):
            table.add_row(f"drain, full table, {name}", f"{drain.per_s:,.0f} jobs/s",
                          f"{_shown(ratios[key + '_rate'])} of the empty table's rate, "
                          f"CPU per job {_shown(ratios[key + '_cpu_per_job'])} of it")
    if len(result.history) > len(result.history_summary()):
        for mode, ratio_figures in result.history_summary().items():
            for ratio, spread in ratio_figures.items():
                table.add_row(f"{ratio} (autovacuum {mode})", _shown(spread["median"]),
                              f"median [{_shown(spread['min'])}-{_shown(spread['max'])}]")
    for schedules in result.schedules:
        steady = schedules.steady
        count = len(steady.schedulers)
        fire = steady.fire_lateness
        table.add_row(f"{steady.creation.count:,} schedules, {count} scheduler(s): "
                      "fire lateness", f"p99 {fire.p99:.2f} ms",
                      f"p50 {fire.p50:.2f}, max {fire.max:.2f} ms ({fire.count:,} fires, "
                      f"{steady.duplicates} duplicates)")
        table.add_row("  start-up", f"{steady.startup_s:.2f} s",
                      "spawn → every partition held and loaded; loads took "
                      + ", ".join(f"{u.load_seconds:.2f}" for u in steady.schedulers) + " s")
        table.add_row("  memory per schedule", ", ".join(
            f"{u.memory_per_schedule_bytes:,.0f}" for u in steady.schedulers) + " B",
            f"per scheduler, over its share of {steady.scheduler.schedules:,}")
        table.add_row("  CPU", ", ".join(f"{u.cpu_share:.1%}" for u in steady.schedulers),
                      f"per scheduler, over the {steady.window_seconds:g}s window")
    for cost in result.wheel:
        table.add_row(f"wheel, {cost.timers:,} timers", f"{cost.idle_us_per_tick:.2f} µs/tick",
                      f"idle; firing {cost.firing_us_per_tick:.2f} µs/tick "
                      f"({cost.expired_per_stretch:,} expired in {cost.ticks:,} ticks, "
                      f"{cost.firing_ns_per_expired:,.0f} ns each)")
    return table


def features_table(result: FeatureBenchResult) -> Table:
    table = Table(title=f"taskwheel bench features: {len(result.rounds)} round(s)",
                  title_justify="left")
    table.add_column("feature")
    table.add_column("drain", justify="right")
    table.add_column("rate / plain", justify="right")
    table.add_column("CPU per job / plain", justify="right")
    for feature in result.rounds[0]:
        rates = sorted(r[feature].per_s for r in result.rounds)
        drain = f"{rates[len(rates) // 2]:,.0f} jobs/s"
        if feature is Feature.PLAIN:
            table.add_row(feature.value, drain, "1", "1")
            continue
        ratios = result.ratios(feature)
        table.add_row(feature.value, drain, *(
            f"{_shown(r['median'])} [{_shown(r['min'])}-{_shown(r['max'])}]"
            for r in (ratios["rate"], ratios["cpu_per_job"])))
    return table


def _shown(ratio: float | None) -> str:
    """A ratio, or "-" when its base was too small to read (CPU below the clock's tick)."""
    return "-" if ratio is None else f"{ratio:.2f}"


def dispatch_table(result: DispatchBenchResult) -> Table:
    figures = result.to_dict()
    table = Table("figure", "value", title="dispatch control")
    for name, drain in figures["drain"].items():
        table.add_row(f"drain {name}", f"{drain['per_s']:,.0f} jobs/s "
                      f"(enqueue {drain['enqueue_per_s']:,.0f}/s)")
    for name, ratio in figures["ratio_to_plain"].items():
        table.add_row(f"{name} / plain", f"{ratio:.3f}")
    for name, ratio in figures["workers_cpu_ratio_to_plain"].items():
        table.add_row(f"{name} / plain, workers' CPU", f"{ratio:.3f}")
    table.add_row("Jain's index (1:2:4)", f"{result.jain_index:.4f}")
    starvation = figures["starvation"]
    wait = starvation["trickle_wait_s"]
    table.add_row("trickle wait p99 (aging)", "never claimed" if wait is None else
                  f"{wait['p99']:g} s (bound {starvation['bound_s']:g} s)")
    table.add_row("trickle claimed without aging", str(starvation["claimed_without_aging"]))
    shares = figures["namespace_shares"]
    if shares is not None:
        ratio = shares["weighted_to_merged"]
        table.add_row("namespace claims, weighted 1:3 / merged",
                      f"{ratio['median']:.3f} [{ratio['min']:.3f}-{ratio['max']:.3f}]")
    return table


def server_table(result: ServerBenchResult) -> Table:
    table = Table(title="taskwheel bench server", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    single, batch, drain = result.enqueue_single, result.enqueue_batch, result.drain
    table.add_row("HTTP enqueue, one job per request", f"{single.per_s:,.0f} jobs/s",
                  f"{single.jobs:,} requests in {single.seconds:.2f}s")
    table.add_row("HTTP enqueue, batches", f"{batch.per_s:,.0f} jobs/s",
                  f"{batch.jobs:,} jobs in {batch.requests} requests, {batch.seconds:.2f}s")
    sample = result.claim_latency
    table.add_row("enqueue → claimed (long poll)", f"p50 {sample.p50:.2f} ms",
                  f"p95 {sample.p95:.2f}, p99 {sample.p99:.2f}, max {sample.max:.2f} ms "
                  f"({sample.count} jobs at {result.latency_rate:.0f}/s)")
    table.add_row("HTTP drain, no-op jobs", f"{drain.per_s:,.0f} jobs/s",
                  f"{drain.jobs:,} jobs in {drain.seconds:.2f}s, {drain.requests:,} requests")
    return table


def _measure(ctx: click.Context, quiet: bool, run: Callable[[Progress | None], R]) -> R:
    """Run a benchmark showing its phases on stderr (`progress.phases`: a spinner on a
    terminal, a line each piped); its errors become one line and an exit code (2 for
    bad options, naming the option)."""
    try:
        with contextlib.ExitStack() as stack:  # the spinner is gone before an error line
            return run(None if quiet else stack.enter_context(phases("bench")))
    except InvalidInput as exc:
        error_line(f"--{exc.field.replace('_', '-')}: {exc.reason}")
        ctx.exit(2)
    except TaskwheelError as exc:
        error_line(str(exc))
        ctx.exit(1)


def summary_table(summary: dict[str, dict[str, float]], runs: int) -> Table:
    table = Table(title=f"taskwheel bench: {runs} runs", title_justify="left")
    table.add_column("figure")
    table.add_column("median", justify="right")
    table.add_column("min-max", justify="right")
    def shown(value: float) -> str:
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    for name, figure in summary.items():
        table.add_row(name, shown(figure["median"]),
                      f"{shown(figure['min'])}-{shown(figure['max'])}")
    return table


def figures_table(result: BenchResult) -> Table:
    table = Table(title="taskwheel bench", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    single, batch, drain = result.enqueue_single, result.enqueue_batch, result.drain
    ceiling = result.ceiling

    def cost(what: EnqueueResult | DrainResult | CeilingResult) -> str:
        cpu = what.cpu.per_job_us(what.jobs)
        server = f" + server {cpu['server']:,.0f}" if cpu["server"] else ""
        return (f"; {ceiling_ratio(what)}CPU {cpu['client']:,.0f}{server} µs/job")

    def ceiling_ratio(what: EnqueueResult | DrainResult | CeilingResult) -> str:
        return "" if what is ceiling else f"{what.per_s / ceiling.per_s:.2f} of the ceiling, "

    table.add_row("enqueue, one job per call", f"{single.per_s:,.0f} jobs/s",
                  f"{single.jobs:,} jobs in {single.seconds:.2f}s" + cost(single))
    table.add_row("enqueue, batches", f"{batch.per_s:,.0f} jobs/s",
                  f"{batch.jobs:,} jobs in {batch.calls} calls, {batch.seconds:.2f}s"
                  + cost(batch))
    table.add_row("ceiling: raw claim + finish SQL", f"{ceiling.per_s:,.0f} jobs/s",
                  f"{ceiling.jobs:,} jobs by {ceiling.processes} tight loops in "
                  f"{ceiling.seconds:.2f}s" + cost(ceiling))
    workers = ", ".join(f"{n:,}" for n in drain.jobs_by_worker.values())
    table.add_row("drain, no-op jobs", f"{drain.per_s:,.0f} jobs/s",
                  f"{drain.jobs:,} jobs in {drain.seconds:.2f}s (per worker: {workers}; "
                  f"{drain.claims} claims, {drain.reports} reports)" + cost(drain))
    for label, sample in (("enqueue → task code", result.latency.to_code),
                          ("enqueue → claimed", result.latency.to_claim)):
        table.add_row(
            f"latency, {label}", f"p50 {sample.p50:.2f} ms",
            f"p95 {sample.p95:.2f}, p99 {sample.p99:.2f}, max {sample.max:.2f} ms "
            f"({sample.count} jobs at {result.latency.achieved_rate:.0f}/s)",
        )
    for label, sample in (("task code", result.delayed.to_code),
                          ("claimed", result.delayed.to_claim)):
        table.add_row(
            f"delayed job due → {label}", f"p50 {sample.p50:.2f} ms",
            f"p95 {sample.p95:.2f}, p99 {sample.p99:.2f}, max {sample.max:.2f} ms "
            f"({sample.count} jobs, leads 10 ms-2 s)",
        )
    return table


def schedules_table(result: ScheduleBenchResult) -> Table:
    steady = result.steady
    table = Table(title="taskwheel bench schedules", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    create = steady.creation
    table.add_row("schedules created", f"{create.per_s:,.0f} /s",
                  f"{create.count:,} add_schedule calls in {create.seconds:.2f}s")
    table.add_row("fires in the window", f"{steady.fires:,} of {steady.expected_fires:,}",
                  f"{steady.window_seconds:g}s window; duplicates {steady.duplicates}")
    _lateness_rows(table, "", steady.fire_lateness, steady.start_lateness)
    table.add_row("start-up", f"{steady.startup_s:.2f} s",
                  f"{len(steady.schedulers)} scheduler(s): spawn → every partition held and "
                  "loaded")
    usage = steady.scheduler
    table.add_row("scheduler CPU", f"{usage.cpu_share:.1%}",
                  f"{usage.cpu_seconds:.2f} CPU s over {usage.wall_seconds:.1f}s")
    table.add_row("scheduler memory per schedule", f"{usage.memory_per_schedule_bytes:,.0f} B",
                  f"RSS {_mib(usage.rss_bytes)} at the window's end - "
                  f"{_mib(usage.empty_rss_bytes)} empty, / {create.count:,}; "
                  f"{usage.memory_per_schedule_at_window_start_bytes:,.0f} B before the "
                  f"first fire; peak {_mib(usage.peak_rss_bytes)}")
    if result.burst is not None:
        _burst_rows(table, result.burst)
    return table


def _burst_rows(table: Table, burst: BurstResult) -> None:
    table.add_row(f"burst of {burst.creation.count:,}: all created",
                  f"{burst.all_created_s * 1000:,.1f} ms",
                  f"last created_at - the instant; {burst.fires:,} fires, "
                  f"duplicates {burst.duplicates}")
    _lateness_rows(table, "burst ", burst.fire_lateness, burst.start_lateness)


def _lateness_rows(table: Table, prefix: str, fire: Percentiles, start: Percentiles) -> None:
    for label, sample in ((f"{prefix}fire lateness", fire), (f"{prefix}start lateness", start)):
        table.add_row(label, f"p50 {sample.p50:.2f} ms",
                      f"p99 {sample.p99:.2f}, max {sample.max:.2f} ms ({sample.count:,} jobs)")


def failover_table(result: FailoverResult) -> Table:
    table = Table(title="taskwheel bench failover", title_justify="left")
    table.add_column("run", justify="right")
    table.add_column("failover", justify="right")
    table.add_column("lease taken", justify="right")
    table.add_column("killed pid", justify="right")
    table.add_column("first batch", justify="right")
    for run in result.runs:
        taken = "-" if run.lease_taken_s is None else f"{run.lease_taken_s:.3f} s"
        table.add_row(str(run.run), f"{run.first_fire_s:.3f} s", taken, str(run.killed_pid),
                      f"{run.first_batch_jobs} jobs")
    summary = result.to_dict()["failover_s"]
    table.add_section()
    table.add_row("min / median / max", f"{summary['min']:.3f} / {summary['median']:.3f} / "
                  f"{summary['max']:.3f} s", "", "",
                  f"{result.lost_instants} lost, {result.duplicates} duplicated "
                  f"of {result.instants:,}")
    table.add_row("over the default misfire grace", f"{result.over_grace} of "
                  f"{len(result.runs)} (grace {DEFAULT_MISFIRE_GRACE:g} s)", "", "", "")
    return table


def workflows_table(result: WorkflowBenchResult) -> Table:
    table = Table(title="taskwheel bench workflows", title_justify="left")
    table.add_column("figure")
    table.add_column("chain", justify="right")
    table.add_column("fan-out/fan-in", justify="right")
    shapes: tuple[ShapeResult, ShapeResult] = (result.chain, result.fan)
    rows: list[tuple[str, Callable[[ShapeResult], str]]] = [
        ("steps", lambda r: f"{r.steps:,}"),
        ("total", lambda r: f"{r.total_s:.3f} s"),
        ("steps' own work", lambda r: f"{r.work_s * 1000:.3f} ms"),
        ("overhead per step", lambda r: f"{r.overhead_per_step_ms:.3f} ms"),
        ("handoff p50 / p99", lambda r: f"{r.handoff_ms.p50:.2f} / {r.handoff_ms.p99:.2f} ms"),
        ("handoff max", lambda r: f"{r.handoff_ms.max:.2f} ms"),
        ("submit", lambda r: f"{r.submit_ms:.1f} ms"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(shape) for shape in shapes))
    fan = result.fan.extra
    table.add_row("all fanned-out steps started", "", f"{fan['fan_out_all_started_ms']:.1f} ms")
    table.add_row("fan-in (last middle step → sink)", "", f"{fan['fan_in_ms']:.2f} ms")
    return table


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def settings_table(settings: dict[str, Any]) -> Table:
    table = Table(title="measured on", title_justify="left", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in _flatten(settings):
        table.add_row(key, str(value))
    return table


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
