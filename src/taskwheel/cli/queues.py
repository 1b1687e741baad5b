"""``taskwheel queues`` and ``taskwheel tasks``: pause and resume the dispatch of a
queue's or a task's jobs, and set a queue's maximum depth (see `taskwheel.gates`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click

from taskwheel.cli.fairness import age_queue, reserve_queue
from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.output import _when, new_table
from taskwheel.cli.values import parse_datetime
from taskwheel.durations import parse_duration
from taskwheel.gates import GateKind, Pause


@click.group()
def queues() -> None:
    """Pause and resume queues; limit their depth."""


def _pause_end_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option("--until", "until_text", default=None, metavar="TIME",
                           help="Resume it at this time (ISO 8601 with a timezone).")(command)
    return click.option("--for", "for_text", default=None, metavar="DURATION",
                        help="Resume it after this long, e.g. 10m.  [default: only by "
                        "hand]")(command)


def _until(until_text: str | None) -> datetime | None:
    return None if until_text is None else parse_datetime(until_text, "until")


def _for(for_text: str | None) -> float | None:
    return None if for_text is None else parse_duration(for_text, "for", allow_zero=False)


@queues.command("pause")
@click.argument("queue")
@_pause_end_options
@common_options
def pause_queue(target: Target, *, queue: str, for_text: str | None,
                until_text: str | None) -> None:
    """Stop dispatching QUEUE's jobs: no worker claims one until it is resumed (by hand,
    or by maintenance at the end --for or --until give). Running jobs finish; enqueues
    still land and wait; nothing is lost."""
    with target.client() as client:
        _paused(target, client.pause_queue(queue, until=_until(until_text),
                                              duration=_for(for_text)))


@queues.command("resume")
@click.argument("queue")
@common_options
def resume_queue(target: Target, *, queue: str) -> None:
    """Dispatch QUEUE's jobs again (refused if it is not paused)."""
    with target.client() as client:
        released = client.resume_queue(queue)
    _resumed(target, GateKind.QUEUE, queue, released)


@queues.command("limit")
@click.argument("queue")
@click.option("--max-depth", type=int, required=True,
              help="Most jobs waiting to run in the queue (queued, scheduled, waiting); "
              "an enqueue past it is refused and writes nothing.")
@common_options
def limit_queue(target: Target, *, queue: str, max_depth: int) -> None:
    """Set QUEUE's maximum depth (jobs already there stay)."""
    with target.client() as client:
        limit = client.set_queue_limit(queue, max_depth)
    if target.output.json:
        target.output.emit_json(limit.to_dict())
    else:
        target.output.note(f"queue {queue}: at most {limit.max_depth} jobs waiting to run "
                           f"({limit.depth} now)")


@queues.command("unlimit")
@click.argument("queue")
@common_options
def unlimit_queue(target: Target, *, queue: str) -> None:
    """Remove QUEUE's maximum depth (refused if it has none)."""
    with target.client() as client:
        client.remove_queue_limit(queue)
    if target.output.json:
        target.output.emit_json({"queue": queue, "max_depth": None})
    else:
        target.output.note(f"queue {queue}: no maximum depth")


@queues.command("list")
@listing_options
def list_queues(target: Target) -> None:
    """Queues that are paused, have a maximum depth, age, or keep a reserve."""
    with target.client() as client:
        paused = {p.name: p for p in client.pauses() if p.kind is GateKind.QUEUE}
        limits = {limit.queue: limit for limit in client.queue_limits()}
        aging = {found.queue: found for found in client.queue_aging()}
        reserves = {found.queue: found for found in client.queue_reserves()}
    names = sorted({*paused, *limits, *aging, *reserves})
    rows = []
    for name in names:
        pause, limit = paused.get(name), limits.get(name)
        ages, reserve = aging.get(name), reserves.get(name)
        rows.append({
            "queue": name, "paused": pause is not None,
            "paused_at": None if pause is None else pause.paused_at.isoformat(),
            "until": None if pause is None or pause.until is None else pause.until.isoformat(),
            "held": 0 if pause is None else pause.held,
            "max_depth": None if limit is None else limit.max_depth,
            "depth": None if limit is None else limit.depth,
            "aging_per_minute": None if ages is None else ages.rate * 60,
            "aging_cap": None if ages is None else ages.cap,
            "reserve_share": None if reserve is None else reserve.share,
            "reserve_below": None if reserve is None else reserve.below,
        })
    if target.output.data:
        target.output.records(rows, columns=("queue", "paused", "paused_at", "until", "held",
                                             "max_depth", "depth", "aging_per_minute",
                                             "aging_cap", "reserve_share", "reserve_below"))
        return
    table = new_table(title="queues", title_justify="left")
    for column in ("queue", "paused since", "until", "held", "max depth", "depth",
                   "aging", "reserve"):
        table.add_column(column)
    for name in names:
        pause, limit = paused.get(name), limits.get(name)
        ages, reserve = aging.get(name), reserves.get(name)
        table.add_row(name, "-" if pause is None else _when(pause.paused_at),
                      "-" if pause is None or pause.until is None else _when(pause.until),
                      "-" if pause is None else str(pause.held),
                      "-" if limit is None else str(limit.max_depth),
                      "-" if limit is None else str(limit.depth),
                      "-" if ages is None else f"{ages.rate * 60:g}/min" + (
                          "" if ages.cap is None else f" up to {ages.cap}"),
                      "-" if reserve is None else f"{reserve.share:.0%} below "
                      f"{reserve.below}")
    target.output.console.print(table)


@click.group()
def tasks() -> None:
    """Pause and resume a task's jobs, in every queue."""


@tasks.command("pause")
@click.argument("task")
@_pause_end_options
@common_options
def pause_task(target: Target, *, task: str, for_text: str | None,
               until_text: str | None) -> None:
    """Stop dispatching TASK's jobs, in every queue, until it is resumed (by hand, or at
    the end --for or --until give)."""
    with target.client() as client:
        _paused(target, client.pause_task(task, until=_until(until_text),
                                             duration=_for(for_text)))


@tasks.command("resume")
@click.argument("task")
@common_options
def resume_task(target: Target, *, task: str) -> None:
    """Dispatch TASK's jobs again (refused if it is not paused)."""
    with target.client() as client:
        released = client.resume_task(task)
    _resumed(target, GateKind.TASK, task, released)


@tasks.command("paused")
@listing_options
def paused_tasks(target: Target) -> None:
    """The paused tasks, each with the queued jobs it holds."""
    with target.client() as client:
        found = [p for p in client.pauses() if p.kind is GateKind.TASK]
    if target.output.data:
        target.output.records([p.to_dict() for p in found],
                              columns=("namespace", "kind", "name", "paused_at", "held", "until"))
        return
    table = new_table(title="paused tasks", title_justify="left")
    for column in ("task", "paused since", "until", "held"):
        table.add_column(column)
    for pause in found:
        table.add_row(pause.name, _when(pause.paused_at),
                      "-" if pause.until is None else _when(pause.until), str(pause.held))
    target.output.console.print(table)


def _paused(target: Target, pause: Pause) -> None:
    if target.output.json:
        target.output.emit_json(pause.to_dict())
    else:
        end = "" if pause.until is None else f" until {_when(pause.until)}"
        target.output.note(f"{pause.kind.value} {pause.name} paused since "
                           f"{_when(pause.paused_at)}{end}: {pause.held} jobs held")


def _resumed(target: Target, kind: GateKind, name: str, released: int) -> None:
    if target.output.json:
        target.output.emit_json({"kind": kind.value, "name": name, "released": released})
    else:
        target.output.note(f"{kind.value} {name} resumed: {released} jobs claimable again")


# A queue's aging and reserve live with the other fairness commands.
queues.add_command(age_queue)
queues.add_command(reserve_queue)
