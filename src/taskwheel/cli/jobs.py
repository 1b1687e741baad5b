"""``taskwheel enqueue``, ``jobs`` and ``dlq``: create, inspect and repair jobs."""

from __future__ import annotations

import sys
from typing import Any

import click

from taskwheel.cli.batch import read_requests, write_requests
from taskwheel.cli.options import Target, app_option, common_options, listing_options
from taskwheel.cli.progress import working
from taskwheel.cli.tail import tail_jobs
from taskwheel.cli.values import parse_arguments, parse_datetime, parse_deadline
from taskwheel.durations import parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.jobs import JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.validators import MAX_ID

# -- enqueue ---------------------------------------------------------------------------------


@click.command()
@click.argument("task", required=False)
@click.option("--args", "args_text", default=None, metavar="JSON",
              help="Positional arguments, a JSON list.  [default: []]")
@click.option("--kwargs", "kwargs_text", default=None, metavar="JSON",
              help="Keyword arguments, a JSON object.  [default: {}]")
@click.option("--from-file", "from_file", default=None, metavar="FILE",
              help="Enqueue the requests of a JSON-lines file instead of TASK (- reads "
              "stdin); the other options are defaults for its lines.")
@click.option("--queue", default=None, help="[default: the task's]")
@click.option("--priority", type=int, default=None, help="Higher runs first. [default: the task's]")
@click.option("--delay", default=None, metavar="DURATION",
              help="Run after this long, e.g. 10s, 5m, 1h30m.")
@click.option("--at", "at_text", default=None, metavar="TIME",
              help="Run at this time: ISO 8601 with a timezone, e.g. 2030-01-01T09:00:00+00:00.")
@click.option("--deadline", default=None, metavar="TIME|DURATION",
              help="Must start before this: an ISO 8601 time or a duration from now.")
@click.option("--timeout", default=None, metavar="DURATION",
              help="Longest run of one attempt, e.g. 30s.")
@click.option("--max-attempts", type=int, default=None, help="[default: the task's retry policy]")
@click.option("--idempotency-key", default=None,
              help="A second enqueue with this key returns the first job.")
@click.option("--fairness-key", default=None,
              help="The job's share of claims: its key's weight among the namespace's "
              "keys (taskwheel fairness).  [default: the task's]")
@click.option("--wait", "wait_text", default=None, metavar="DURATION",
              help="While the queue is full (its maximum depth), keep trying this long, "
              "e.g. 30s.  [default: refuse at once]")
@app_option
@common_options
def enqueue(
    target: Target,
    *,
    task: str | None,
    args_text: str | None,
    kwargs_text: str | None,
    from_file: str | None,
    queue: str | None,
    priority: int | None,
    delay: str | None,
    at_text: str | None,
    deadline: str | None,
    timeout: str | None,
    max_attempts: int | None,
    idempotency_key: str | None,
    fairness_key: str | None,
    wait_text: str | None,
    app_spec: str,
) -> None:
    """Create a job of TASK, checked against the app's task registry first; or, with
    --from-file, one job per line of a JSON-lines file (each line an enqueue request as
    the HTTP API takes it), every line checked before any job is written."""
    wait = 0.0 if wait_text is None else parse_duration(wait_text, "wait", longest=86_400)
    options: dict[str, Any] = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "at": None if at_text is None else parse_datetime(at_text, "at"),
        "deadline": None if deadline is None else parse_deadline(deadline),
        "timeout": timeout,
        "max_attempts": max_attempts,
        "idempotency_key": idempotency_key,
        "fairness_key": fairness_key,
    }
    if (task is None) == (from_file is None):
        raise InvalidInput("task", "give TASK or --from-file (one of them)")
    if from_file is not None:
        if args_text is not None or kwargs_text is not None:
            raise InvalidInput("from_file", "each line of the file has its own args and "
                               "kwargs: not with --args or --kwargs")
        if wait_text is not None:
            raise InvalidInput("wait", "not with --from-file: a full queue refuses the batch")
        _enqueue_file(target, app_spec, from_file,
                      {name: value for name, value in options.items() if value is not None})
        return
    assert task is not None
    args, kwargs = parse_arguments(args_text or "[]", kwargs_text or "{}")
    app = target.load(app_spec)
    try:
        handle = app.enqueue(
            task, args=args, kwargs=kwargs, wait=wait,
            **{name: value for name, value in options.items() if value is not None},
        )
        if target.output.json:
            target.output.emit_json({**handle.record.to_dict(), "existing": handle.existing})
            return
        target.output.job(handle.record)
        if handle.existing:
            target.output.note(f"existing job {handle.id} returned for key "
                               f"{handle.record.idempotency_key!r}: nothing was created")
    finally:
        app.close()


def _enqueue_file(target: Target, app_spec: str, path: str, defaults: dict[str, Any]) -> None:
    app = target.load(app_spec)
    try:
        requests = read_requests(app, path, defaults)
        ids, existing = write_requests(app, requests)
    finally:
        app.close()
    if target.output.json:
        target.output.emit_json({"enqueued": len(ids) - existing, "existing": existing,
                                 "ids": ids})
        return
    target.output.note(f"enqueued {len(ids) - existing} jobs ({ids[0]} to {max(ids)})"
                       + (f"; {existing} requests returned the existing job of their "
                          "idempotency key" if existing else ""))


# -- jobs ------------------------------------------------------------------------------------


@click.group()
def jobs() -> None:
    """List, inspect, cancel and retry jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]), default=None)
@click.option("--queue", default=None)
@click.option("--task", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@listing_options
def list_jobs(
    target: Target, status: str | None, queue: str | None, task: str | None, limit: int
) -> None:
    """Jobs, newest first."""
    # One more than shown: whether there are more to say so.
    where = JobFilter(status=None if status is None else JobStatus(status), queue=queue,
                      task=task, limit=_one_more(limit))
    with target.client() as client:
        target.output.jobs(client.list_jobs(where), limit=limit)


def _one_more(limit: int) -> int:
    return limit + 1 if limit < MAX_ID else limit


@jobs.command("show")
@click.argument("job_id", metavar="ID", type=int)
@common_options
def show_job(target: Target, job_id: int) -> None:
    """A job and the history of its attempts."""
    with target.client() as client:
        handle = client.job(job_id)
        target.output.job_with_attempts(handle.record, handle.attempts())


@jobs.command("explain")
@click.argument("job_id", metavar="ID", type=int)
@common_options
def explain_job(target: Target, job_id: int) -> None:
    """Why a job is not running (or where it stands), from the store at this instant."""
    with target.client() as client:
        target.output.explanation(client.explain(job_id))


@jobs.command("cancel")
@click.argument("job_id", metavar="ID", type=int)
@common_options
def cancel_job(target: Target, job_id: int) -> None:
    """Cancel a waiting job, or ask the worker running it to stop."""
    with target.client() as client:
        job = client.cancel_job(job_id)
        target.output.job(job)
        if job.status is JobStatus.RUNNING:
            target.output.note(f"cancel requested: the worker running job {job.id} will stop it")


@jobs.command("retry")
@click.argument("job_id", metavar="ID", type=int)
@common_options
def retry_job(target: Target, job_id: int) -> None:
    """Queue a finished job again with a fresh set of attempts."""
    with target.client() as client:
        target.output.job(client.retry_job(job_id))


@jobs.command("delete")
@click.argument("job_ids", metavar="ID...", type=int, nargs=-1, required=True)
@common_options
def delete_jobs(target: Target, job_ids: tuple[int, ...]) -> None:
    """Delete jobs and their history for good, all or none: a running job, or a step of
    a workflow run still going, is refused (cancel it first), as is an unknown id."""
    with target.client() as client:
        target.output.jobs(client.delete_jobs(list(job_ids)))


# -- dead-letter queue -----------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """The dead-letter queue: jobs whose attempts ran out."""


@dlq.command("list")
@click.option("--queue", default=None)
@click.option("--task", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@listing_options
def list_dead(target: Target, queue: str | None, task: str | None, limit: int) -> None:
    """Dead jobs, newest first."""
    with target.client() as client:
        target.output.jobs(client.list_dead(queue=queue, task=task, limit=_one_more(limit)),
                           title="dead jobs", limit=limit)


@dlq.command("replay")
@click.argument("job_ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead job.")
@common_options
def replay_dead(target: Target, job_ids: tuple[int, ...], replay_all: bool) -> None:
    """Queue dead jobs again, with a fresh set of attempts."""
    if replay_all == bool(job_ids):
        raise InvalidInput("all", "give job ids or --all (one of them)")
    with target.client() as client, working("replaying dead jobs"):
        replayed = client.replay_dead(None if replay_all else list(job_ids))
    if target.output.json:
        target.output.emit_json({"replayed": replayed})
    elif replayed:
        target.output.note(f"replayed {len(replayed)} jobs: {', '.join(map(str, replayed))}")
    else:
        target.output.note("no dead jobs to replay")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def purge_dead(target: Target, yes: bool) -> None:
    """Delete dead jobs and their attempts for good."""
    with target.client() as client:
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInput("yes", "stdin is not a terminal, so nobody can confirm; "
                                   "pass --yes to purge")
            dead = sum(q.counts.get(JobStatus.DEAD.value, 0) for q in client.stats().queues)
            click.confirm(f"Delete {dead} dead jobs of namespace {client.namespace!r} and "
                          "their attempts?", abort=True, err=True)
        with working("purging dead jobs"):
            purged = client.purge_dead()
    if target.output.json:
        target.output.emit_json({"purged": purged})
    else:
        target.output.note(f"purged {purged} dead jobs")


jobs.add_command(tail_jobs)
