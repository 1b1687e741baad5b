"""``taskwheel schedules``: add, inspect, pause, resume, remove, trigger and preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from taskwheel.cli.options import Target, app_option, common_options, listing_options
from taskwheel.cli.output import Output, new_table
from taskwheel.cli.values import parse_arguments, parse_datetime
from taskwheel.clock import to_datetime
from taskwheel.durations import format_duration
from taskwheel.errors import InvalidInput
from taskwheel.schedules import (
    DEFAULT_MISFIRE_GRACE,
    Misfire,
    Overlap,
    Schedule,
    build_trigger,
)
from taskwheel.triggers import CronTrigger, DstEffect, DstFold, DstGap, Fire, Trigger, upcoming


@click.group()
def schedules() -> None:
    """Schedules: when jobs are created (cron, interval or once)."""


def _choice(kind: Any) -> click.Choice[str]:
    return click.Choice([member.value for member in kind])


trigger_options = [
    click.option("--cron", default=None, metavar="EXPR", help="A cron expression, e.g. "
                 "'0 9 * * MON-FRI'."),
    click.option("--every", default=None, metavar="DURATION",
                 help="An interval of elapsed time, e.g. 15m."),
    click.option("--at", "at_text", default=None, metavar="TIME",
                 help="Once, at this ISO 8601 time with a timezone."),
    click.option("--timezone", default=None, metavar="IANA", help="For cron: the timezone "
                 "its times are read in, e.g. Europe/Berlin.  [default: UTC]"),
    click.option("--dst-gap", type=_choice(DstGap), default=DstGap.RUN_AFTER_GAP.value,
                 show_default=True, help="A local time that does not exist (spring forward)."),
    click.option("--dst-fold", type=_choice(DstFold), default=DstFold.FIRST.value,
                 show_default=True, help="A local time that happens twice (fall back)."),
]


def with_trigger_options(command: Any) -> Any:
    for option in reversed(trigger_options):
        command = option(command)
    return command


# -- add -------------------------------------------------------------------------------------


@schedules.command("add")
@click.argument("name")
@click.option("--task", required=True, help="The task each fire enqueues.")
@click.option("--args", "args_text", default="[]", metavar="JSON", show_default=True,
              help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_text", default="{}", metavar="JSON", show_default=True,
              help="Keyword arguments, a JSON object.")
@with_trigger_options
@click.option("--misfire", type=_choice(Misfire), default=Misfire.RUN_ONCE.value,
              show_default=True, help="Fire times missed (scheduler down, paused).")
@click.option("--max-catch-up", type=int, default=10, show_default=True,
              help="Most missed times one catch_up creates jobs for.")
@click.option("--misfire-grace", default=f"{DEFAULT_MISFIRE_GRACE:g}s", metavar="DURATION",
              show_default=True, help="A fire this late is still on time (the default "
              "covers a scheduler failover).")
@click.option("--overlap", type=_choice(Overlap), default=Overlap.ALLOW.value,
              show_default=True, help="When the previous job of the schedule is unfinished.")
@click.option("--jitter", default="0s", metavar="DURATION", show_default=True,
              help="Delay each job by up to this much (the same for a given fire).")
@click.option("--start", "start_text", default=None, metavar="TIME", help="No fire before.")
@click.option("--end", "end_text", default=None, metavar="TIME", help="No fire after.")
@click.option("--queue", default=None, help="[default: the task's]")
@click.option("--priority", type=int, default=None, help="[default: the task's]")
@click.option("--timeout", default=None, metavar="DURATION", help="[default: the task's]")
@click.option("--max-attempts", type=int, default=None, help="[default: the task's]")
@click.option("--deadline", default=None, metavar="DURATION",
              help="Each job must start within this long of its fire time.")
@app_option
@common_options
def add_schedule(
    target: Target, *, name: str, task: str, args_text: str, kwargs_text: str,
    cron: str | None, every: str | None, at_text: str | None, timezone: str | None,
    dst_gap: str, dst_fold: str, misfire: str, max_catch_up: int, misfire_grace: str,
    overlap: str, jitter: str, start_text: str | None, end_text: str | None,
    queue: str | None, priority: int | None, timeout: str | None, max_attempts: int | None,
    deadline: str | None, app_spec: str,
) -> None:
    """Create schedule NAME, or update the one of that name."""
    job_options = {
        key: value for key, value in (
            ("queue", queue), ("priority", priority), ("timeout", timeout),
            ("max_attempts", max_attempts), ("deadline", deadline),
        ) if value is not None
    }
    args, kwargs = parse_arguments(args_text, kwargs_text)
    app = target.load(app_spec)
    try:
        schedule = app.add_schedule(
            name, task, cron=cron, every=every,
            at=None if at_text is None else parse_datetime(at_text, "at"),
            timezone=timezone, args=args, kwargs=kwargs, misfire=misfire,
            max_catch_up=max_catch_up, misfire_grace=misfire_grace, overlap=overlap,
            dst_gap=dst_gap, dst_fold=dst_fold, jitter=jitter,
            start=None if start_text is None else parse_datetime(start_text, "start"),
            end=None if end_text is None else parse_datetime(end_text, "end"),
            **job_options,
        )
        _show(target.output, schedule)
    finally:
        app.close()


# -- list, show, pause, resume, remove, trigger --------------------------------------------


@schedules.command("list")
@listing_options
def list_schedules(target: Target) -> None:
    """Every schedule with its next fire time and last run."""
    with target.client() as client:
        found = client.list_schedules()
    if target.output.data:
        target.output.records([s.to_dict() for s in found], columns=("id", "name", "task"))
        return
    table = new_table(title="schedules", title_justify="left")
    for column in ("name", "task", "when", "next fire (UTC)", "last fire (UTC)", "last job",
                   "state"):
        table.add_column(column)
    for s in found:
        table.add_row(
            s.name, s.definition.target, describe_trigger(s), _utc(s.next_fire_at),
            _utc(s.last_fire_at),
            "-" if s.last_job_id is None else f"{s.last_job_id} {s.last_job_status or 'pruned'}",
            "paused" if s.paused else ("done" if s.next_fire_at is None else "active"),
        )
    target.output.console.print(table)


@schedules.command("show")
@click.argument("name")
@click.option("--jobs", "job_count", type=int, default=10, show_default=True,
              help="Recent jobs of the schedule to list.")
@common_options
def show_schedule(target: Target, *, name: str, job_count: int) -> None:
    """One schedule, its policies and its recent jobs."""
    with target.client() as client:
        schedule = client.get_schedule(name)
        recent = client.schedule_jobs(schedule, job_count)
    if target.output.json:
        target.output.emit_json({**schedule.to_dict(), "jobs": [j.to_dict() for j in recent]})
        return
    _show(target.output, schedule)
    if recent:
        target.output.jobs(recent, title="recent jobs")


@schedules.command("pause")
@click.argument("name")
@common_options
def pause_schedule(target: Target, *, name: str) -> None:
    """Stop firing NAME until resumed."""
    with target.client() as client:
        _show(target.output, client.pause_schedule(name))


@schedules.command("resume")
@click.argument("name")
@common_options
def resume_schedule(target: Target, *, name: str) -> None:
    """Fire NAME again; times missed while paused go through its misfire policy."""
    with target.client() as client:
        _show(target.output, client.resume_schedule(name))


@schedules.command("remove")
@click.argument("name")
@common_options
def remove_schedule(target: Target, *, name: str) -> None:
    """Delete NAME (the jobs it created stay)."""
    with target.client() as client:
        client.remove_schedule(name)
    if target.output.json:
        target.output.emit_json({"removed": name})
    else:
        target.output.note(f"removed schedule {name}")


@schedules.command("trigger")
@click.argument("name")
@common_options
def trigger_schedule(target: Target, *, name: str) -> None:
    """Fire NAME now, once, outside its timing."""
    with target.client() as client:
        fired = client.trigger_schedule(name)
    if target.output.json:
        target.output.emit_json({"schedule": name, "result": fired.result.value,
                                 "fire_at": fired.fire_at.isoformat(),
                                 "job_id": fired.job_id,
                                 "workflow_run_id": fired.workflow_run_id})
    else:
        made = (f"workflow run {fired.workflow_run_id}" if fired.workflow_run_id is not None
                else f"job {fired.job_id}")
        target.output.note(f"schedule {name}: {fired.result.value} at "
                           f"{_utc(fired.fire_at)}, {made}")


# -- preview ---------------------------------------------------------------------------------


@schedules.command("preview")
@click.argument("name", required=False)
@with_trigger_options
@click.option("--count", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="How many fire times.")
@click.option("--from", "from_text", default=None, metavar="TIME",
              help="Start after this ISO 8601 time.  [default: now]")
@common_options
def preview(
    target: Target, *, name: str | None, cron: str | None, every: str | None,
    at_text: str | None, timezone: str | None, dst_gap: str, dst_fold: str, count: int,
    from_text: str | None,
) -> None:
    """The next fire times of schedule NAME (within its start and end; none while it
    is paused or once it is done), or of --cron/--every/--at: in local time and UTC,
    marking those a DST change moved or doubled. ``local`` is the instant that fires;
    a fire moved out of a skipped hour also shows the wall time it stood for."""
    after = datetime.now(UTC) if from_text is None else parse_datetime(from_text, "from")
    if after.tzinfo is None:
        raise InvalidInput("from", f"{from_text} has no timezone; add one (e.g. +00:00)")
    idle: str | None = None
    trigger: Trigger
    if name is not None:
        if cron or every or at_text:
            raise InvalidInput("cron", "give a schedule NAME or a trigger, not both")
        with target.client() as client:
            schedule = client.get_schedule(name)
        fires = schedule.upcoming(after, count)
        trigger = schedule.definition.trigger
        if schedule.paused:
            idle = f"schedule {name} is paused: it fires nothing until resumed"
        elif schedule.next_fire_at is None:
            idle = f"schedule {name} is done: it will not fire again"
    else:
        trigger = build_trigger(
            cron=cron, every=every,
            at=None if at_text is None else parse_datetime(at_text, "at"),
            timezone=timezone, dst_gap=dst_gap, dst_fold=dst_fold,
        )
        fires = upcoming(trigger, after, count)
    if target.output.json:
        target.output.emit_json([
            {"utc": f.at.isoformat(), "local": f.local.isoformat(),
             "nominal": f.nominal.isoformat(), "dst": f.dst.value}
            for f in fires
        ])
        return
    if idle is not None:
        target.output.note(idle)
        return
    if not fires:
        target.output.note("no fire times after " + after.isoformat())
        return
    title = f"next {len(fires)} fire times"
    if isinstance(trigger, CronTrigger):
        title += f" of cron {trigger.expression!r} ({trigger.fields})"
    table = new_table(title=title, title_justify="left")
    for column in ("local", "UTC", "DST"):
        table.add_column(column)
    for fire in fires:
        table.add_row(_local(fire), fire.at.strftime("%Y-%m-%d %H:%M:%S"), _dst_note(fire))
    target.output.console.print(table)


def _dst_note(fire: Fire) -> str:
    if fire.dst is DstEffect.MOVED:
        return (f"moved: {fire.nominal:%H:%M:%S} does not exist (clocks went forward); "
                "fired when the gap ended")
    return _DST_NOTE[fire.dst]


_DST_NOTE = {
    DstEffect.NONE: "",
    DstEffect.FIRST_OF_TWO: "doubled local time: first of two",
    DstEffect.SECOND_OF_TWO: "doubled local time: second of two",
}


def _local(fire: Fire) -> str:
    return fire.local.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")


# -- shared ----------------------------------------------------------------------------------


def describe_trigger(schedule: Schedule) -> str:
    spec = schedule.definition.trigger.to_dict()
    kind = spec.get("kind")
    if kind == "cron":
        return f"cron {spec.get('expression')} {spec.get('timezone')}"
    if kind == "interval":
        return f"every {format_duration(float(spec['every']))}"
    return f"once {spec.get('at')}"


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _show(output: Output, schedule: Schedule) -> None:
    if output.json:
        output.emit_json(schedule.to_dict())
        return
    table = new_table(title=f"schedule {schedule.name}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    d = schedule.definition
    job_rows: list[tuple[str, str]] = [] if d.job is None else [
        ("args", d.job.args_json), ("kwargs", d.job.kwargs_json),
        ("queue", d.job.queue), ("priority", str(d.job.priority)),
    ]
    rows: list[tuple[str, str]] = [
        ("task" if d.job is not None else "creates", d.target),
        ("when", describe_trigger(schedule)),
        *job_rows,
        ("misfire", f"{d.misfire.value} (grace {d.misfire_grace}s, at most {d.max_catch_up})"),
        ("overlap", d.overlap.value), ("jitter", f"{d.jitter}s"),
        ("start", _utc(to_datetime(d.start))), ("end", _utc(to_datetime(d.end))),
        ("state", "paused" if schedule.paused else
         ("done" if schedule.next_fire_at is None else "active")),
        ("next fire", _utc(schedule.next_fire_at)), ("last fire", _utc(schedule.last_fire_at)),
        ("last job", "-" if schedule.last_job_id is None else
         f"{schedule.last_job_id} ({schedule.last_job_status or 'pruned'})"),
    ]
    spec = d.trigger.to_dict()
    if spec.get("kind") == "cron":
        rows.insert(2, ("dst", f"gap {spec.get('dst_gap')}, fold {spec.get('dst_fold')}"))
    for field, value in rows:
        table.add_row(field, value)
    output.console.print(table)
