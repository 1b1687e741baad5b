"""How the command line writes: records to stdout as tables, JSON or CSV, logs to stderr.

JSON output is one document per command, built from the records' ``to_dict`` forms,
so scripts can rely on it; CSV (listings only) is the same records, one row each under
a header row, a nested value as its JSON in its cell; tables are for people and may
change.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import click

from taskwheel.durations import format_duration
from taskwheel.explanations import Explanation
from taskwheel.jobs import Attempt, Job, QueueStats, Stats
from taskwheel.lifecycle import JobStatus

if TYPE_CHECKING:
    # rich is imported where a table is drawn: every process the command line starts
    # (workers and schedulers included) builds an Output, and rich costs each 3.5 MB.
    from rich.console import Console
    from rich.table import Table

# Tables piped into files or other programs are not cut at 80 columns.
_PIPE_WIDTH = 200


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


# Every command answers as a table or JSON; listings also as CSV.
ANSWER_FORMATS = (Format.TABLE, Format.JSON)
LISTING_FORMATS = (Format.TABLE, Format.JSON, Format.CSV)


def terminal_console() -> Console:
    """The console of stdout: as wide as the terminal, or wide when piped."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    # No emoji codes: a name like "tenant:a:" is printed as it is.
    return Console(highlight=False, emoji=False, width=_PIPE_WIDTH if piped else None)


def new_table(*columns: str, **options: Any) -> Table:
    """A rich table (rich is imported here, at the first table drawn)."""
    from rich.table import Table

    return Table(*columns, **options)


class Output:
    """Writes a command's answer in the chosen format.

    ``compact`` writes each JSON document on one line (a listing followed with
    ``--watch`` prints one per redraw: JSON lines)."""

    def __init__(self, format: Format, *, console: Console | None = None,
                 compact: bool = False) -> None:
        self.format = format
        self._console = console
        self.compact = compact

    @property
    def console(self) -> Console:
        """The console tables are drawn on: made when first drawn on."""
        if self._console is None:
            self._console = terminal_console()
        return self._console

    @property
    def json(self) -> bool:
        return self.format is Format.JSON

    @property
    def data(self) -> bool:
        """Whether the answer is for programs (JSON or CSV) rather than people."""
        return self.format is not Format.TABLE

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=None if self.compact else 2, ensure_ascii=False,
                              default=str))

    def records(self, rows: Sequence[Mapping[str, Any]],
                columns: Sequence[str] = ()) -> None:
        """A listing for programs: a JSON list of the records, or CSV rows under a header
        (``columns``, then any other key of the rows in order of appearance)."""
        if self.json:
            self.emit_json(list(rows))
        else:
            click.echo(csv_document(rows, columns), nl=False)

    def note(self, text: str) -> None:
        """A line for people; JSON and CSV output stay a single document."""
        if not self.data:
            self.console.print(text, markup=False)

    def answer(self, record: Any, text: str) -> None:
        """A command's one answer: ``record`` for JSON, the line ``text`` for people."""
        if self.json:
            self.emit_json(record)
        else:
            self.note(text)

    def job(self, job: Job) -> None:
        if self.json:
            self.emit_json(job.to_dict())
        else:
            self.console.print(job_table(job))

    def job_with_attempts(self, job: Job, attempts: Sequence[Attempt]) -> None:
        if self.json:
            self.emit_json({"job": job.to_dict(), "attempts": [a.to_dict() for a in attempts]})
            return
        self.console.print(job_table(job))
        if not attempts:
            self.console.print("no attempts yet", markup=False)
            return
        self.console.print(attempts_table(attempts))
        # The table has room for one line of error: the latest traceback (a shell
        # command's stderr tail, for a shell task) in full below it.
        failed = [(attempt.attempt, attempt.traceback) for attempt in attempts
                  if attempt.traceback]
        if failed:
            number, traceback = failed[-1]
            earlier = (f"; earlier ones: {len(failed) - 1} more, with --format json"
                       if len(failed) > 1 else "")
            self.console.print(f"traceback of attempt {number}{earlier}:", markup=False)
            self.console.print(traceback.rstrip(), markup=False, highlight=False,
                               soft_wrap=True)

    def explanation(self, explanation: Explanation) -> None:
        """Why a job is where it is: its state, then one line per reason (its code, then
        its sentence)."""
        if self.json:
            self.emit_json(explanation.to_dict())
            return
        self.console.print(f"job {explanation.job_id} is {explanation.status.value} "
                           f"(as of {explanation.to_dict()['at']}):", markup=False)
        for reason in explanation.reasons:
            self.console.print(f"  {reason.code.value}: {reason.message}", markup=False,
                               soft_wrap=True)

    def jobs(self, jobs: Sequence[Job], title: str = "jobs", limit: int | None = None) -> None:
        """The first ``limit`` jobs (all by default); given one more than that (as a
        listing asked for), a line saying there are more."""
        shown = jobs if limit is None else jobs[:limit]
        if self.data:
            self.records([job.to_dict() for job in shown], columns=Job.__slots__)
        elif not shown:
            self.console.print(f"no {title}", markup=False)
        else:
            self.console.print(jobs_table(shown, title))
            if len(jobs) > len(shown):
                self.console.print(f"showing the newest {limit} {title}; there are more "
                                   "(raise --limit to see them)", markup=False)

    def stats(self, stats: Stats) -> None:
        if self.json:
            self.emit_json(_plain(asdict(stats)))
            return
        if self.format is Format.CSV:
            # One row per queue (the workers are a table of their own: JSON has both).
            self.records([_queue_row(queue) for queue in stats.queues],
                         columns=("queue", *(status.value for status in JobStatus),
                                  "ready_by_priority", "oldest_ready_age"))
            return
        if stats.queues:
            self.console.print(queues_table(stats))
        else:
            self.console.print("no jobs", markup=False)
        if stats.workers:
            self.console.print(workers_table(stats))
        else:
            self.console.print("no workers", markup=False)


# -- tables -----------------------------------------------------------------------------------


def job_table(job: Job) -> Table:
    table = new_table(title=f"job {job.id}", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("task", job.task),
        ("status", job.status.value + (" (cancel requested)" if job.cancel_requested else "")),
        ("queue", job.queue),
        ("priority", job.priority),
        ("args", _compact(job.args)),
        ("kwargs", _compact(job.kwargs)),
        ("run at", _when(job.run_at)),
        ("deadline", _when(job.deadline)),
        ("timeout", None if job.timeout is None else format_duration(job.timeout)),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("fence", job.fence),
        ("guarantee", job.guarantee.value),
        ("worker", job.worker_id),
        ("lease expires", _when(job.lease_expires_at)),
        ("started", _when(job.started_at)),
        ("created", _when(job.created_at)),
        ("finished", _when(job.finished_at)),
        ("idempotency key", job.idempotency_key),
        ("fairness key", job.fairness_key),
        ("result", None if job.status is not JobStatus.SUCCEEDED else _compact(job.result)),
        ("last error", job.last_error),
        ("checkpoint", None if job.checkpoint is None else _compact(job.checkpoint)),
    ]
    if job.workflow_run_id is not None:
        rows.insert(1, ("workflow", f"step {job.step} of run {job.workflow_run_id}"))
    for name, value in rows:
        table.add_row(name, _cell(value))
    return table


def attempts_table(attempts: Sequence[Attempt]) -> Table:
    table = new_table(title="attempts", title_justify="left")
    for column in ("attempt", "fence", "worker", "started", "ended", "took", "outcome"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", overflow="fold")
    for attempt in attempts:
        took = (attempt.ended_at - attempt.started_at).total_seconds()
        table.add_row(
            str(attempt.attempt), str(attempt.fence), _cell(attempt.worker_id),
            _when(attempt.started_at), _when(attempt.ended_at), format_duration(max(0.0, took)),
            attempt.outcome.value, _cell(attempt.error),
        )
    return table


def jobs_table(jobs: Sequence[Job], title: str) -> Table:
    table = new_table(title=title, title_justify="left")
    for column in ("id", "task", "queue", "status", "priority", "attempt", "run at", "finished"):
        table.add_column(column, no_wrap=True)
    table.add_column("last error", overflow="ellipsis", max_width=60, no_wrap=True)
    for job in jobs:
        table.add_row(
            str(job.id), job.task, job.queue, job.status.value, str(job.priority),
            f"{job.attempt}/{job.max_attempts}", _when(job.run_at), _when(job.finished_at),
            _cell(job.last_error),
        )
    return table


def queues_table(stats: Stats) -> Table:
    present = {status for queue in stats.queues for status in queue.counts}
    states = [status.value for status in JobStatus if status.value in present]
    table = new_table(title="queues", title_justify="left")
    table.add_column("queue", no_wrap=True)
    for state in states:
        table.add_column(state, justify="right")
    table.add_column("ready by priority")
    table.add_column("oldest ready", justify="right")
    for queue in stats.queues:
        by_priority = "  ".join(f"p{p}: {n}" for p, n in queue.ready_by_priority.items())
        age = queue.oldest_ready_age
        table.add_row(
            queue.queue,
            *(str(queue.counts.get(state, 0)) for state in states),
            by_priority or "-",
            "-" if age is None else format_duration(age),
        )
    return table


def workers_table(stats: Stats) -> Table:
    table = new_table(title="workers", title_justify="left")
    for column in ("worker", "pid", "queues", "pool", "concurrency", "started", "last seen",
                   "alive"):
        table.add_column(column, no_wrap=True)
    for worker in stats.workers:
        table.add_row(
            worker.id, str(worker.pid), ",".join(worker.queues), worker.pool,
            str(worker.concurrency), _when(worker.started_at), _when(worker.last_seen_at),
            "yes" if worker.alive else "no",
        )
    return table


def _queue_row(queue: QueueStats) -> dict[str, Any]:
    return {"queue": queue.queue,
            **{status.value: queue.counts.get(status.value, 0) for status in JobStatus},
            "ready_by_priority": {str(p): n for p, n in queue.ready_by_priority.items()},
            "oldest_ready_age": queue.oldest_ready_age}


def csv_document(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> str:
    """Rows as CSV (RFC 4180: CRLF line ends, a field quoted when it holds a comma, a
    quote or a line break): a header row of ``columns`` and then any other key of the
    rows, then one row per record. A missing key or None is an empty field; a list or
    a mapping is its JSON; true and false are spelled so."""
    header = list(dict.fromkeys([*columns, *(key for row in rows for key in row)]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_field(row.get(column)) for column in header])
    return buffer.getvalue()


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _plain(value: Any) -> Any:
    """Dataclass dicts made JSON-ready: datetimes as ISO 8601 strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# -- logs ----------------------------------------------------------------------------------


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log record, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        # A mapping logged as a value ("stopped: %s", stats) travels as itself, not as
        # its Python repr inside the message.
        values = record.args if isinstance(record.args, tuple) else ()
        mappings = [value for value in values if isinstance(value, Mapping)]
        if mappings:
            entry["data"] = mappings[0] if len(mappings) == 1 else mappings
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, format: Format) -> None:
    """Send taskwheel's logs to stderr, readable by people or, as JSON, by machines."""
    handler = logging.StreamHandler(sys.stderr)
    if format is Format.JSON:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"
        ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def error_line(message: str, *, field: str | None = None, as_json: bool = False) -> None:
    """The one line a failed command leaves on stderr: ``error: <message>``, or under
    ``--format json`` a JSON object ``{"error": <message>, "field": <option or null>}``."""
    # One line whatever the message holds (a driver's words span several), and printable
    # whatever the terminal's encoding (a value quoted back may hold anything).
    message = " ".join(message.splitlines()).encode("utf-8", "backslashreplace").decode()
    if as_json:
        click.echo(json.dumps({"error": message, "field": field}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {message}", err=True)


__all__ = ["ANSWER_FORMATS", "LISTING_FORMATS", "Format", "Output", "configure_logging",
           "csv_document", "error_line"]
