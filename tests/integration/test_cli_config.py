"""Defaults from taskwheel.toml (or pyproject.toml's [tool.taskwheel]): below flags and
the environment, above built-in defaults; a key that is no option is refused in one
line; ``taskwheel config`` says where each setting came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import taskwheel
from contract.backends import DATABASE_URLS
from taskwheel.cli.config import default_map, read_defaults
from taskwheel.cli.main import cli

from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def test_a_listing_takes_its_database_and_options_from_the_file(
    app: taskwheel.App, url: str, tmp_path: Path
) -> None:
    send = app.task(lambda: None, name="send")
    for _ in range(3):
        send.enqueue()
    (tmp_path / "taskwheel.toml").write_text(
        f'database-url = "{url}"\n[jobs.list]\nlimit = 2\nformat = "json"\n')

    from_file = run("jobs", "list", cwd=tmp_path)
    flag_wins = run("jobs", "list", "--limit", "3", cwd=tmp_path)

    assert len(from_file.json()) == 2
    assert len(flag_wins.json()) == 3


def test_config_says_where_each_setting_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "taskwheel.toml").write_text(
        'app = "mymod:app"\ndatabase_url = "sqlite:///file.db"\n'
        '[worker]\nqueue = ["emails", "default"]\nconcurrency = 16\n')
    runner = CliRunner()

    def config(*argv: str, env: dict[str, str | None]) -> list[dict[str, object]]:
        done = runner.invoke(cli, ["config", *argv, "--format", "json"], env=env,
                             prog_name="taskwheel")
        assert done.exit_code == 0, done.stderr
        rows: list[dict[str, object]] = json.loads(done.stdout)
        return rows

    monkeypatch.chdir(tmp_path)
    quiet = config(env={"TASKWHEEL_DATABASE_URL": None, "TASKWHEEL_APP": None})
    loud = config("--app", "other:app", env={"TASKWHEEL_DATABASE_URL": "sqlite:///env.db",
                                             "TASKWHEEL_APP": None})

    assert [(r["setting"], r["command"], r["value"], r["source"], r["file"]) for r in quiet] == [
        ("app", None, "mymod:app", "file", "taskwheel.toml"),
        ("database_url", None, "sqlite:///file.db", "file", "taskwheel.toml"),
        ("namespace", None, "default", "default", None),
        ("queue", "worker", ["emails", "default"], "file", "taskwheel.toml"),
        ("concurrency", "worker", 16, "file", "taskwheel.toml"),
    ]
    assert [(r["value"], r["source"]) for r in loud[:2]] == [
        ("other:app", "flag"), ("sqlite:///env.db", "environment")]


def test_a_command_table_wins_over_the_top_and_a_repeatable_option_takes_a_list(
    tmp_path: Path
) -> None:
    (tmp_path / "taskwheel.toml").write_text(
        'namespace = "team-a"\nconcurrency = 4\n[worker]\nqueue = "emails"\nconcurrency = 16\n')

    tree = default_map(cli, read_defaults(tmp_path))

    assert tree["worker"]["queues"] == ["emails"]
    assert tree["worker"]["concurrency"] == 16
    assert tree["demo"]["concurrency"] == 4
    assert tree["worker"]["namespace"] == ["team-a"]  # serves several: a list
    assert tree["jobs"]["list"]["namespace"] == "team-a"


def test_pyproject_tool_taskwheel_is_read_when_there_is_no_taskwheel_toml(
    tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.taskwheel]\n'
                                             'app = "mymod:app"\n')
    assert read_defaults(tmp_path).shared == {"app": "mymod:app"}
    assert read_defaults(tmp_path).source == "pyproject.toml [tool.taskwheel]"
    (tmp_path / "taskwheel.toml").write_text('app = "own:app"\n')
    assert read_defaults(tmp_path).shared == {"app": "own:app"}


BAD_FILES = [
    pytest.param('[worker]\nconcurency = 3\n',
                 "taskwheel.toml: unknown setting 'concurency' in [worker] ('taskwheel worker' "
                 "has no such option); did you mean 'concurrency'?", id="typo-in-a-table"),
    pytest.param('databse_url = "sqlite:///x.db"\n',
                 "taskwheel.toml: unknown setting 'databse_url' (no command has this option); "
                 "did you mean 'database_url'?", id="typo-at-the-top"),
    pytest.param('[wroker]\nconcurrency = 3\n',
                 "taskwheel.toml: unknown table 'wroker' (no such command); did you mean "
                 "'worker'?", id="typo-of-a-command"),
    pytest.param('app = \n', "taskwheel.toml: not valid TOML", id="not-toml"),
]


@pytest.mark.parametrize(("text", "line"), BAD_FILES)
def test_a_bad_file_is_one_line_naming_the_key_and_nothing_runs(
    app: taskwheel.App, url: str, tmp_path: Path, text: str, line: str
) -> None:
    (tmp_path / "taskwheel.toml").write_text(text)

    done = run("enqueue", "send", "--app", "integration.cli_app:app", url=url, cwd=tmp_path)

    assert done.exit_code == 2
    assert done.refused().startswith(line)
    assert app.list_jobs() == []
