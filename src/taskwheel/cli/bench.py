"""``taskwheel bench``: measure enqueue rate, drain rate and enqueue→start latency."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from taskwheel.benchmark import BenchResult, BenchSettings, run_benchmark
from taskwheel.cli.output import Format, Output, error_line
from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.tasks import Pool


@click.command()
@click.option("--store", type=click.Choice(["sqlite"]), default="sqlite", show_default=True,
              help="Store to measure (PostgreSQL is not available yet).")
@click.option("--database-url", default=None, metavar="URL",
              help="sqlite:///path.db to measure on; the benchmark works in namespaces of its "
              "own and leaves its jobs there.  [default: a fresh temporary file, deleted "
              "afterwards]")
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
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds a drain or latency phase may take at most.")
@click.option("--format", "output_format", type=click.Choice([f.value for f in Format]),
              default=Format.TABLE.value, show_default=True, help="How to print the figures.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@click.pass_context
def bench(
    ctx: click.Context,
    /,
    *,
    store: str,
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
    timeout: float,
    output_format: str,
    quiet: bool,
) -> None:
    """Measure the store and workers: single and batch enqueue rate, drain rate of
    no-op jobs with worker processes, and enqueue→start latency percentiles.

    Prints the figures with the machine, the store's settings and how each figure was
    measured (see bench/README.md). Takes about half a minute with the defaults.
    """
    del store  # one choice for now; the option names the store in every report
    output = Output(Format(output_format))
    try:
        settings = BenchSettings.build(
            database_url=database_url, jobs=jobs, single_jobs=single_jobs,
            enqueue_batch=enqueue_batch, workers=workers, concurrency=concurrency, pool=pool,
            claim_batch=claim_batch, latency_jobs=latency_jobs, latency_rate=latency_rate,
            timeout=timeout,
        )
        progress = None if quiet else (lambda line: click.echo(f"bench: {line}", err=True))
        result = run_benchmark(settings, progress)
    except InvalidInput as exc:
        error_line(f"--{exc.field.replace('_', '-')}: {exc.reason}")
        ctx.exit(2)
    except TaskwheelError as exc:
        error_line(str(exc))
        ctx.exit(1)
    if output.json:
        output.emit_json(result.to_dict())
    else:
        output.console.print(figures_table(result))
        output.console.print(settings_table(result.settings))


def figures_table(result: BenchResult) -> Table:
    table = Table(title="taskwheel bench", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("how")
    single, batch, drain = result.enqueue_single, result.enqueue_batch, result.drain
    table.add_row("enqueue, one job per call", f"{single.per_s:,.0f} jobs/s",
                  f"{single.jobs:,} jobs in {single.seconds:.2f}s")
    table.add_row("enqueue, batches", f"{batch.per_s:,.0f} jobs/s",
                  f"{batch.jobs:,} jobs in {batch.calls} calls, {batch.seconds:.2f}s")
    workers = ", ".join(f"{n:,}" for n in drain.jobs_by_worker.values())
    table.add_row("drain, no-op jobs", f"{drain.per_s:,.0f} jobs/s",
                  f"{drain.jobs:,} jobs in {drain.seconds:.2f}s (per worker: {workers}; "
                  f"{drain.claims} claims, {drain.reports} reports)")
    for label, sample in (("enqueue → task code", result.latency.to_code),
                          ("enqueue → claimed", result.latency.to_claim)):
        table.add_row(
            f"latency, {label}", f"p50 {sample.p50:.2f} ms",
            f"p95 {sample.p95:.2f}, p99 {sample.p99:.2f}, max {sample.max:.2f} ms "
            f"({sample.count} jobs at {result.latency.achieved_rate:.0f}/s)",
        )
    return table


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
