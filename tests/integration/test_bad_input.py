"""Bad input that used to slip through, on both stores: refused at the entry point with
one line naming the field (the option as typed, on the command line), nothing written,
and never committed first and reported as a failure afterwards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.errors import InvalidInput
from taskwheel.jobs import JobFilter

from .command_line import APP
from .command_line import taskwheel as run

LONE = "\ud800"


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def nothing_written(app: taskwheel.App) -> bool:
    return (app.list_jobs(JobFilter(limit=10)) == [] and app.client.list_schedules() == []
            and app.list_workflow_runs() == [])


def refused(action: object, field: str) -> InvalidInput:
    assert callable(action)
    with pytest.raises(InvalidInput) as caught:
        action()
    assert caught.value.field == field, caught.value
    return caught.value


# -- strings that are not Unicode (item: a lone surrogate commits, then breaks listings) ----


def test_a_lone_surrogate_in_the_arguments_is_refused_naming_where_it_is(
    app: taskwheel.App,
) -> None:
    send = app.task(lambda *args, **kwargs: None, name="send")

    assert "args[1]" in str(refused(lambda: send.enqueue("ok", LONE), "args"))
    assert "kwargs.to[0]" in str(refused(lambda: send.enqueue(to=[f"a{LONE}"]), "kwargs"))
    refused(lambda: send.enqueue(idempotency_key=LONE), "idempotency_key")
    assert nothing_written(app)
    assert send.enqueue("\U0001f600").record.args == ["\U0001f600"]  # a pair is fine


def test_the_command_line_refuses_a_lone_surrogate_before_committing(
    app: taskwheel.App, url: str
) -> None:
    line = run("enqueue", "send", "--app", APP, "--args", '["\\ud800"]', url=url).refused()

    assert line == "--args: args[0] is not valid Unicode: it holds a lone surrogate '\\ud800'"
    assert nothing_written(app)
    assert run("jobs", "list", "--format", "json", url=url).json() == []


# -- jobs and schedules that could never run ------------------------------------------------


def test_a_deadline_that_leaves_no_time_to_start_is_refused(app: taskwheel.App) -> None:
    send = app.task(lambda: None, name="send")
    now = datetime.now(UTC)

    refused(lambda: send.enqueue(deadline=now - timedelta(seconds=1)), "deadline")
    refused(lambda: send.enqueue(deadline="0s"), "deadline")
    refused(lambda: send.enqueue(delay="1h", deadline="30m"), "deadline")
    refused(lambda: send.enqueue(at=now + timedelta(hours=2),
                                 deadline=now + timedelta(hours=1)), "deadline")
    refused(lambda: send.enqueue(delay="2h", deadline=now + timedelta(hours=1)), "deadline")
    assert nothing_written(app)
    assert send.enqueue(delay="1h", deadline="2h").record.deadline is not None


def test_a_task_that_runs_late_may_be_given_a_deadline_already_past(app: taskwheel.App) -> None:
    late = app.task(lambda: None, name="late", deadline_policy="run_late")

    job = late.enqueue(deadline=datetime.now(UTC) - timedelta(minutes=1)).record

    assert job.status.value == "queued"


def test_a_schedule_that_could_never_fire_is_refused_and_not_declared(
    app: taskwheel.App,
) -> None:
    send = app.task(lambda: None, name="send")
    past = datetime.now(UTC) - timedelta(days=1)

    refused(lambda: app.add_schedule("once", send, at=past), "at")
    refused(lambda: app.add_schedule("utc", send, cron="* * * * *", timezone=""), "timezone")
    refused(lambda: app.add_schedule("ended", send, cron="* * * * *", end=past), "end")

    assert nothing_written(app)
    assert app.schedules == {}
    assert app.add_schedule("soon", send, at=datetime.now(UTC) + timedelta(hours=1))


def test_a_batch_of_schedules_with_one_that_could_never_fire_writes_none(
    app: taskwheel.App,
) -> None:
    send = app.task(lambda customer: None, name="send")
    past = datetime.now(UTC) - timedelta(days=1)
    batch = [app.define_schedule(f"c{i}", send, cron="0 9 * * *", args=[i]) for i in range(3)]

    error = refused(lambda: app.add_schedules(
        [*batch, app.define_schedule("ended", send, cron="* * * * *", args=[9], end=past)]),
        "end")

    assert "'ended'" in error.reason
    assert nothing_written(app)
    assert app.add_schedules(iter(batch)) == [True] * 3
    assert [s.name for s in app.client.list_schedules()] == ["c0", "c1", "c2"]
    assert app.schedules == {}  # written, not declared: a scheduler's sync keeps off them


def test_the_command_line_refuses_schedules_that_could_never_fire(
    app: taskwheel.App, url: str
) -> None:
    at = run("schedules", "add", "s", "--task", "send", "--app", APP,
             "--at", "2020-01-01T00:00:00Z", url=url).refused()
    end = run("schedules", "add", "s", "--task", "send", "--app", APP, "--cron", "* * * * *",
              "--end", "2020-01-01T00:00:00Z", url=url).refused()

    assert at.startswith("--at: ")
    assert end.startswith("--end: 2020-01-01T00:00:00+00:00 has passed")
    assert nothing_written(app)


# -- values out of range: one line, never a traceback ------------------------------------


@pytest.mark.parametrize(("value", "field"), [
    ({"delay": 1e300}, "delay"),
    ({"delay": timedelta.max}, "delay"),
    ({"timeout": 1e300}, "timeout"),
    ({"deadline": timedelta.max}, "deadline"),
    ({"max_attempts": 2**64}, "max_attempts"),
    ({"at": datetime.max.replace(tzinfo=UTC)}, "at"),
])
def test_the_api_refuses_values_out_of_range_naming_the_field(
    app: taskwheel.App, value: dict[str, object], field: str
) -> None:
    send = app.task(lambda: None, name="send")

    refused(lambda: send.enqueue(**value), field)
    assert nothing_written(app)


def test_the_api_refuses_ids_and_limits_the_store_cannot_hold(app: taskwheel.App) -> None:
    refused(lambda: app.job(2**63), "job_id")
    refused(lambda: app.client.cancel_job(2**63), "job_id")
    refused(lambda: app.workflow_run(2**63), "run_id")
    refused(lambda: app.list_jobs(JobFilter(limit=2**64)), "limit")


@pytest.mark.parametrize(("command", "option"), [
    (("enqueue", "send", "--app", APP, "--delay", "99999999999d"), "--delay"),
    (("enqueue", "send", "--app", APP, "--delay", "1e308"), "--delay"),
    (("enqueue", "send", "--app", APP, "--max-attempts", "18446744073709551616"),
     "--max-attempts"),
    (("jobs", "list", "--limit", str(2**64)), "--limit"),
    (("dlq", "list", "--limit", str(2**64)), "--limit"),
    (("workflows", "list", "--limit", str(2**64)), "--limit"),
    (("jobs", "show", str(2**63)), "ID"),
    (("jobs", "cancel", str(2**63)), "ID"),
    (("jobs", "retry", str(2**63)), "ID"),
    (("dlq", "replay", str(2**63)), "ID"),
    (("workflows", "show", str(2**63)), "RUN"),
    (("workflows", "cancel", str(2**63)), "RUN"),
    (("workflows", "retry", str(2**63)), "RUN"),
    (("schedules", "add", "s", "--task", "send", "--app", APP, "--every", "99999999999d"),
     "--every"),
    (("schedules", "add", "s", "--task", "send", "--app", APP, "--cron", "* * * * *",
      "--timezone", ""), "--timezone"),
])
def test_the_command_line_refuses_values_out_of_range_in_one_line(
    app: taskwheel.App, url: str, command: tuple[str, ...], option: str
) -> None:
    line = run(*command, url=url).refused()

    assert line.startswith(f"{option}: ")
    assert nothing_written(app)


def test_a_usage_error_is_one_line_too(app: taskwheel.App, url: str) -> None:
    line = run("jobs", "list", "--limit", "many", url=url).refused()

    assert line.startswith("--limit: 'many'")


def test_errors_under_format_json_are_json(app: taskwheel.App, url: str) -> None:
    done = run("enqueue", "send", "--app", APP, "--delay", "soon", "--format", "json", url=url)
    usage = run("jobs", "show", "abc", "--format=json", url=url)

    assert done.exit_code == usage.exit_code == 2
    error = json.loads(done.stderr)
    assert error["field"] == "--delay"
    assert error["error"].startswith("--delay: malformed duration 'soon'")
    assert json.loads(usage.stderr) == {
        "error": "ID: 'abc' is not a valid integer (see taskwheel jobs show --help)",
        "field": "ID",
    }


# -- the field named is the one at fault --------------------------------------------------


def test_errors_of_the_keyword_arguments_name_kwargs(app: taskwheel.App, url: str) -> None:
    unknown = run("enqueue", "add", "--app", APP, "--args", "[1]", "--kwargs", '{"c": 1}',
                  url=url).refused()
    missing = run("enqueue", "add", "--app", APP, "--kwargs", '{"b": 1}', url=url).refused()
    twice = run("enqueue", "add", "--app", APP, "--args", "[1]", "--kwargs", '{"a": 1}',
                url=url).refused()
    extra = run("enqueue", "add", "--app", APP, "--args", "[1, 2, 3]", url=url).refused()

    assert unknown.startswith("--kwargs: task 'add': got an unexpected keyword argument 'c'")
    assert missing.startswith("--kwargs: task 'add': missing a required argument: 'a'")
    assert twice.startswith("--kwargs: ")
    assert extra.startswith("--args: ")
    assert nothing_written(app)


@pytest.mark.parametrize(("option", "text"), [
    ("--kwargs", "null"), ("--kwargs", "[1]"), ("--args", "null"), ("--args", '{"a": 1}'),
    ("--kwargs", '{"a": 1, "a": 2}'),
])
def test_arguments_of_the_wrong_shape_are_refused_not_taken_as_empty(
    app: taskwheel.App, url: str, option: str, text: str
) -> None:
    line = run("enqueue", "send", "--app", APP, option, text, url=url).refused()

    assert line.startswith(f"{option}: ")
    assert nothing_written(app)


def test_a_workflow_files_own_fields_are_named_as_the_files(
    app: taskwheel.App, url: str, tmp_path: Path
) -> None:
    bad_policy = tmp_path / "policy.json"
    bad_policy.write_text(json.dumps({"name": "wf", "on_failure": "explode",
                                      "steps": [{"task": "send"}]}))
    twice = tmp_path / "twice.json"
    twice.write_text('{"name": "wf", "name": "other", "steps": [{"task": "send"}]}')
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "caf\u00e9", "steps": []}'.encode("latin-1"))

    policy_line = run("workflows", "submit", str(bad_policy), "--app", APP, url=url).refused()
    twice_line = run("workflows", "submit", str(twice), "--app", APP, url=url).refused()
    latin_line = run("workflows", "submit", str(latin), "--app", APP, url=url).refused()

    yaml_twice = tmp_path / "twice.yaml"
    yaml_twice.write_text("name: wf\nsteps: []\nsteps: [{task: send}]\n")
    yaml_line = run("workflows", "submit", str(yaml_twice), "--app", APP, url=url).refused()
    assert yaml_line.startswith(f"FILE: {yaml_twice}: file: not valid YAML: the key 'steps' "
                                "appears twice")
    assert policy_line.startswith(f"FILE: {bad_policy}: on_failure: unknown policy 'explode'")
    assert twice_line == f"FILE: {twice}: file: the key 'name' appears twice"
    assert latin_line == f"FILE: {latin} is not UTF-8 text (byte 13)"
    assert nothing_written(app)


# -- arguments have a size limit -------------------------------------------------------------


def test_arguments_beyond_the_size_limit_are_refused(app: taskwheel.App, url: str) -> None:
    send = app.task(lambda *args, **kwargs: None, name="send")
    megabyte = "x" * 1_000_000

    refused(lambda: send.enqueue(megabyte), "args")
    refused(lambda: send.enqueue(text=megabyte), "kwargs")
    assert send.enqueue("x" * 999_000).record.args == ["x" * 999_000]
    line = run("enqueue", "send", "--app", APP, "--args", json.dumps([megabyte]),
               url=url).refused()
    assert line.startswith("--args: 1000004 bytes of JSON; at most 1000000")
    assert len(app.list_jobs()) == 1


def test_the_size_limit_is_the_apps_setting(tmp_path: Path) -> None:
    app = taskwheel.App("sqlite://:memory:", max_argument_bytes=100)
    send = app.task(lambda *args: None, name="send")

    refused(lambda: send.enqueue("x" * 100), "args")
    assert send.enqueue("x" * 90).record.args == ["x" * 90]
    refused(lambda: taskwheel.App(max_argument_bytes=0), "max_argument_bytes")
    app.close()


# -- a reused idempotency key is said so ---------------------------------------------------


def test_a_reused_idempotency_key_is_reported_by_the_api_and_the_command_line(
    app: taskwheel.App, url: str
) -> None:
    send = app.task(lambda *args: None, name="send")
    first = send.enqueue("a", idempotency_key="welcome:42")
    again = send.enqueue("b", idempotency_key="welcome:42")

    table = run("enqueue", "send", "--app", APP, "--idempotency-key", "welcome:42", url=url)
    as_json = run("enqueue", "send", "--app", APP, "--idempotency-key", "welcome:42",
                  "--format", "json", url=url).json()
    fresh = run("enqueue", "send", "--app", APP, "--idempotency-key", "other", "--format",
                "json", url=url).json()

    assert (first.existing, again.existing, again.id) == (False, True, first.id)
    assert (f"existing job {first.id} returned for key 'welcome:42': nothing was created"
            in table.stdout)
    assert (as_json["id"], as_json["existing"]) == (first.id, True)
    assert fresh["existing"] is False
