"""``taskwheel stats``, ``migrate`` and ``demo``."""

from __future__ import annotations

import click

from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.progress import working
from taskwheel.errors import InvalidInput
from taskwheel.stores import open_store


@click.command()
@listing_options
def stats(target: Target) -> None:
    """Per queue: jobs by state, ready jobs by priority, the oldest ready job's age;
    and the workers, alive or not."""
    with target.client() as client:
        target.output.stats(client.stats())


@click.command()
@common_options
def migrate(target: Target) -> None:
    """Apply pending schema migrations (creating the schema of a new database).

    The only command that changes a database's schema, apart from ``dev`` and
    ``demo`` (for a laptop); every other command refuses a database that is not
    migrated."""
    store = open_store(target.database_url)
    try:
        with working("migrating"):
            applied = store.migrate()
        version = store.schema_version()
    finally:
        store.close()
    if target.output.json:
        target.output.emit_json({"applied": applied, "schema_version": version})
    elif applied:
        for name in applied:
            target.output.note(f"applied {name}")
        target.output.note(f"schema is at version {version}")
    else:
        target.output.note(f"already up to date (schema version {version})")


@click.command()
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes to start.")
@click.option("--concurrency", type=click.IntRange(min=1), default=2, show_default=True,
              help="Jobs each worker runs at once.")
@common_options
def demo(target: Target, *, workers: int, concurrency: int) -> None:
    """Enqueue jobs of three priorities, drain them with worker processes, let a failing
    job retry into the dead-letter queue, and summarise what happened. Migrates the
    database first."""
    from taskwheel import demo as demo_module

    if target.namespace is not None:
        raise InvalidInput("namespace", "the demo runs in the default namespace")
    demo_module.app.configure(database_url=target.database_url)
    try:
        result = demo_module.run_demo(workers=workers, concurrency=concurrency)
    finally:
        demo_module.app.close()
    counts: dict[str, int] = {}
    for job in result.jobs:
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    if target.output.json:
        target.output.emit_json({
            "database_url": result.database_url,
            "workers": result.workers,
            "elapsed": result.elapsed,
            "jobs_by_status": counts,
            "mean_start_rank_by_priority": result.start_rank_by_priority,
            "idempotent_enqueue_returned": [result.duplicate_of, result.duplicate_returned],
            "dead": [{"job": job.to_dict(), "attempts": [a.to_dict() for a in attempts]}
                     for job, attempts in result.dead],
        })
        return
    note = target.output.note
    note(f"{len(result.jobs)} jobs on {result.database_url}, drained by {result.workers} "
         f"worker processes in {result.elapsed:.2f}s")
    note("by status: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    note("thumbnails started earlier the higher their priority (mean start rank): "
         + ", ".join(f"p{p}: {rank:.1f}" for p, rank in result.start_rank_by_priority.items()))
    same = "the same job" if result.duplicate_of == result.duplicate_returned else "a NEW job"
    note(f"enqueueing with a used idempotency key returned {same} "
         f"({result.duplicate_of} -> {result.duplicate_returned})")
    for job, attempts in result.dead:
        target.output.job_with_attempts(job, attempts)
    note("look around: taskwheel jobs list | taskwheel dlq list | taskwheel stats")
