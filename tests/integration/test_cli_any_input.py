"""Whatever a user types into any option or argument of any command, the command either
does what it is asked or refuses: one line on stderr, a non-zero exit and the database
as it was. Never a traceback (an uncaught exception), on either store.

The values are arbitrary strings and numbers, weighted towards the ones that used to
slip through (huge, negative, not finite, not Unicode, dates out of range, JSON of the
wrong shape). Commands that run until stopped (worker, scheduler, dev, demo, bench) and
``--database-url`` (its own tests: test_database_urls.py) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli import tail, watch
from taskwheel.cli.config import commands_of
from taskwheel.cli.main import cli
from taskwheel.jobs import JobFilter
from taskwheel.workflows import Workflow

from .command_line import APP
from .command_line import taskwheel as run

# Every command that answers and exits: its positional arguments and options of a valid
# call. The value under test replaces one of them (or is added).
VALID: dict[tuple[str, ...], tuple[list[str], dict[str, str]]] = {
    ("enqueue",): (["send"], {"--app": APP}),
    ("jobs", "list"): ([], {}),
    ("jobs", "show"): (["1"], {}),
    ("jobs", "explain"): (["1"], {}),
    ("jobs", "cancel"): (["1"], {}),
    ("jobs", "delete"): (["1"], {}),
    ("jobs", "retry"): (["1"], {}),
    ("jobs", "tail"): ([], {}),
    ("dlq", "list"): ([], {}),
    ("dlq", "replay"): (["1"], {}),
    ("dlq", "purge"): ([], {}),
    ("schedules", "add"): (["s"], {"--task": "send", "--app": APP, "--every": "1h"}),
    ("schedules", "list"): ([], {}),
    ("schedules", "show"): (["s"], {}),
    ("schedules", "pause"): (["s"], {}),
    ("schedules", "resume"): (["s"], {}),
    ("schedules", "remove"): (["s"], {}),
    ("schedules", "trigger"): (["s"], {}),
    ("schedules", "preview"): ([], {"--every": "1h"}),
    ("workflows", "submit"): (["WORKFLOW_FILE"], {"--app": APP}),
    ("workflows", "list"): ([], {}),
    ("workflows", "show"): (["1"], {}),
    ("workflows", "retry"): (["1"], {}),
    ("workflows", "cancel"): (["1"], {}),
    ("stats",): ([], {}),
    ("config",): ([], {}),
    ("completion",): (["bash"], {}),
    ("keys", "create"): ([], {"--role": "read"}),
    ("keys", "list"): ([], {}),
    ("keys", "revoke"): (["tw_00000000"], {}),
    ("queues", "pause"): (["emails"], {}),
    ("queues", "resume"): (["emails"], {}),
    ("queues", "limit"): (["emails"], {"--max-depth": "10"}),
    ("queues", "unlimit"): (["emails"], {}),
    ("queues", "list"): ([], {}),
    ("queues", "age"): (["emails"], {"--rate": "1/min", "--cap": "8"}),
    ("queues", "reserve"): (["emails"], {"--share": "10%", "--below": "5"}),
    ("fairness", "weight"): (["customer:1"], {"--weight": "2"}),
    ("fairness", "list"): ([], {}),
    ("fairness", "namespace"): ([], {"--weight": "2"}),
    ("fairness", "namespaces"): ([], {}),
    ("tasks", "pause"): (["send"], {}),
    ("tasks", "resume"): (["send"], {}),
    ("tasks", "paused"): ([], {}),
    ("limits", "list"): ([], {}),
    ("limits", "show"): (["tenant:1"], {}),
    ("limits", "set"): (["tenant:1", "3"], {}),
    ("limits", "pause"): (["tenant:1"], {}),
    ("limits", "resume"): (["tenant:1"], {}),
    ("limits", "rates"): ([], {}),
    ("breakers", "list"): ([], {}),
    ("breakers", "open"): (["tenant:1"], {}),
    ("breakers", "close"): (["tenant:1"], {}),
    ("quotas", "set"): ([], {"--max-queued": "10"}),
    ("quotas", "show"): ([], {}),
    ("webhooks", "create"): (["hook"], {"--task": "send", "--app": APP}),
    ("webhooks", "list"): ([], {}),
    ("webhooks", "remove"): (["hook"], {}),
    ("alerts", "add"): (["rule"], {"--kind": "no_worker", "--queue": "default",
                                   "--url": "http://127.0.0.1:9/hook"}),
    ("alerts", "list"): ([], {}),
    ("alerts", "remove"): (["rule"], {}),
    ("alerts", "test"): (["rule"], {}),
}
LONG_RUNNING = {("worker",), ("scheduler",), ("dev",), ("demo",), ("bench",), ("migrate",),
                ("server",)}
NOT_FUZZED = {"database_url"}
TRIGGERS = {"--cron", "--every", "--at"}


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], click.Command]
]:
    for found, command in commands_of(group, path):
        if not isinstance(command, click.Group):
            yield found, command


def _inputs() -> list[tuple[tuple[str, ...], str, int | None]]:
    """(command, option or argument, the argument's position) for every input that
    takes a value."""
    found = []
    for path, command in _commands(cli):
        if path[:1] in LONG_RUNNING:
            continue
        for param in command.params:
            if param.name in NOT_FUZZED or getattr(param, "is_flag", False):
                continue
            if isinstance(param, click.Option):
                found.append((path, max(param.opts, key=len), None))
            else:
                arguments = [p for p in command.params if isinstance(p, click.Argument)]
                found.append((path, param.human_readable_name, arguments.index(param)))
    return found


INPUTS = _inputs()


def test_every_command_that_takes_input_has_a_valid_call_to_start_from() -> None:
    assert {path for path, _, _ in INPUTS} == set(VALID)


SUSPECTS = [
    "", " ", "-1", "0", "1", "1e308", "-1e308", "nan", "inf", "1e-320", "0.5",
    str(2**63), str(2**64), str(-(2**63) - 1), "99999999999d", "1e300s", "0s", "-5s",
    "null", "[]", "{}", "[1]", '{"a": 1, "a": 2}', '["\\ud800"]', '{"\\ud800": 1}',
    "2020-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00",
    "2030-01-01T00:00:00", "* * * * * *", "61 * * * *", "\ud800", "\udcff", "\x00", "a" * 600,
    "Europe/Nowhere", "../../etc/passwd", "-", "json", "table",
]
VALUES = st.one_of(
    st.sampled_from(SUSPECTS),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Zs", "Nd"]),
            max_size=5),
    st.integers().map(str),
    st.floats().map(repr),
)


@pytest.fixture(autouse=True)
def _ctrl_c_after_one_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that follows something until Ctrl-C (``--watch``, ``jobs tail``) gets
    it at its first pause."""
    def ctrl_c(*_waiting: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(watch, "pause", ctrl_c)
    # ``jobs tail`` waits for the store's notifications between its looks, not a pause.
    monkeypatch.setattr(tail, "wait_for_news", ctrl_c)


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    """The app's database with something in it: a job, a schedule, a workflow run."""
    send = app.task(lambda *args, **kwargs: None, name="send")
    send.enqueue("hello")
    app.add_schedule("s", send, every="1h")
    workflow = Workflow("wf")
    workflow.step("send", ["one"])
    app.submit(workflow)
    (tmp_path / "wf.json").write_text(json.dumps({"name": "wf", "steps": [{"task": "send"}]}))
    return DATABASE_URLS[backend](tmp_path)


def snapshot(app: taskwheel.App) -> Any:
    jobs = [job.to_dict() for job in app.list_jobs(JobFilter(limit=10_000))]
    schedules = [schedule.to_dict() for schedule in app.client.list_schedules()]
    runs = [run.to_dict() for run in app.list_workflow_runs()]
    queues = [[found.to_dict() for found in app.client.queue_aging()],
              [found.to_dict() for found in app.client.queue_reserves()]]
    return jobs, schedules, runs, queues


def call(command: tuple[str, ...], name: str, position: int | None, value: str,
         workflow_file: Path) -> list[str]:
    positional, options = VALID[command]
    positional = [str(workflow_file) if p == "WORKFLOW_FILE" else p for p in positional]
    options = dict(options)
    if position is not None:
        positional = [*positional[:position], value, *positional[position + 1:]]
    else:
        if name in TRIGGERS:
            options = {k: v for k, v in options.items() if k not in TRIGGERS}
        options[name] = value
    return [*command, *positional, *(item for pair in options.items() for item in pair)]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(INPUTS), value=VALUES)
def test_any_value_of_any_option_is_done_or_refused_in_one_line_leaving_the_database_as_it_was(
    app: taskwheel.App, url: str, tmp_path: Path,
    target: tuple[tuple[str, ...], str, int | None], value: str,
) -> None:
    command, name, position = target
    argv = call(command, name, position, value, tmp_path / "wf.json")
    before = snapshot(app)

    done = run(*argv, url=url)

    assert done.exception is None, f"{argv!r} raised {done.exception!r}"
    if done.exit_code != 0:
        done.refused()
        assert snapshot(app) == before, argv
