"""Every listing answers as a table, JSON or CSV, and follows itself with ``--watch``
until Ctrl-C; on both stores."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import watch
from taskwheel.cli.output import csv_document

from .command_line import taskwheel as run

LISTINGS = [("jobs", "list"), ("dlq", "list"), ("schedules", "list"), ("workflows", "list"),
            ("stats",), ("keys", "list"), ("webhooks", "list"), ("quotas", "show"),
            ("alerts", "list"), ("queues", "list"), ("tasks", "paused")]


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_jobs_as_csv_are_the_json_records_one_row_each_quoted_as_rfc_4180(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda *args: None, name="send")
    send.enqueue('a "quoted", comma\nand a line break')
    send.enqueue(None)

    as_csv = run("jobs", "list", "--format", "csv", url=url)
    as_json = run("jobs", "list", "--format", "json", url=url).json()

    assert as_csv.exit_code == 0, as_csv.stderr
    assert as_csv.stdout.startswith("id,namespace,task,queue,args,")
    assert '"[""a \\""quoted\\"", comma\\nand a line break""]"' in as_csv.stdout
    parsed = rows(as_csv.stdout)
    assert [row["id"] for row in parsed] == [str(job["id"]) for job in as_json]
    assert [json.loads(row["args"]) for row in parsed] == [job["args"] for job in as_json]
    assert [row["deadline"] for row in parsed] == ["", ""]  # None is an empty field
    assert [row["cancel_requested"] for row in parsed] == ["false", "false"]


def test_csv_lines_end_in_crlf_as_rfc_4180_asks() -> None:
    # (click's test runner turns CRLF into LF: the document is checked before it.)
    assert csv_document([{"a": 1, "b": "x\ny"}, {"c": True}], columns=("a",)) == (
        'a,b,c\r\n1,"x\ny",\r\n,,true\r\n')


@pytest.mark.parametrize("listing", LISTINGS, ids=" ".join)
def test_every_listing_answers_as_csv_with_a_header_row_even_when_empty(
    app: taskwheel.App, url: str, listing: tuple[str, ...]
) -> None:
    done = run(*listing, "--format", "csv", url=url)

    assert done.exit_code == 0, done.stderr
    header = next(csv.reader(io.StringIO(done.stdout, newline="")))
    assert len(header) >= 2


def test_stats_as_csv_is_one_row_per_queue_with_a_count_per_state(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda: None, name="send")
    send.enqueue()
    send.enqueue(queue="emails")
    send.enqueue(queue="emails")

    parsed = rows(run("stats", "--format", "csv", url=url).stdout)

    assert {row["queue"]: row["queued"] for row in parsed} == {"default": "1", "emails": "2"}
    assert {row["dead"] for row in parsed} == {"0"}


def test_commands_that_are_not_listings_refuse_csv(app: taskwheel.App, url: str) -> None:
    assert run("jobs", "show", "1", "--format", "csv", url=url).refused().startswith(
        "--format: 'csv' is not one of 'table', 'json'")


def test_watch_prints_a_new_json_document_per_drawing_until_ctrl_c(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    send = app.task(lambda: None, name="send")
    send.enqueue()
    pauses: list[float] = []

    def between_drawings(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise KeyboardInterrupt  # Ctrl-C
        send.enqueue()

    monkeypatch.setattr(watch, "pause", between_drawings)

    done = run("jobs", "list", "--watch", "5", "--format", "json", url=url)

    assert done.exit_code == 0, done.stderr
    drawings = [json.loads(line) for line in done.stdout.splitlines()]
    assert [len(jobs) for jobs in drawings] == [1, 2, 3]
    assert pauses == [5.0, 5.0, 5.0]


def test_watch_without_seconds_redraws_every_two_and_csv_repeats_its_header(
    app: taskwheel.App, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.task(lambda: None, name="send").enqueue()
    pauses: list[float] = []

    def between_drawings(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(watch, "pause", between_drawings)

    done = run("stats", "--watch", "--format", "csv", url=url)

    assert done.exit_code == 0, done.stderr
    assert pauses == [2.0, 2.0]
    assert done.stdout.count("queue,scheduled,") == 2


@pytest.mark.parametrize("seconds", ["0", "nan", "inf", "1e9", "soon"])
def test_watch_refuses_an_interval_that_is_not_a_sane_number_of_seconds(
    app: taskwheel.App, url: str, seconds: str
) -> None:
    assert run("jobs", "list", f"--watch={seconds}", url=url).refused().startswith("--watch: ")
