"""Usage errors read like taskwheel's own refusals: one line naming the option, argument
or command at fault, the reason, the help to read; exit code 2."""

from __future__ import annotations

import json

import pytest

from .command_line import APP
from .command_line import taskwheel as run

USAGE_ERRORS = [
    pytest.param(["enqueue", "send", "--app", APP, "--priority", "high"],
                 "--priority: 'high' is not a valid integer (see taskwheel enqueue --help)",
                 id="bad-value"),
    pytest.param(["jobs", "list", "--stauts", "dead"],
                 "--stauts: no such option; did you mean --status or --task? "
                 "(see taskwheel jobs list --help)", id="typo-of-an-option"),
    pytest.param(["jobs", "list", "--colour", "red"],
                 "--colour: no such option (see taskwheel jobs list --help)",
                 id="unknown-option"),
    pytest.param(["jobs", "lst"],
                 "lst: no such command; did you mean list? (see taskwheel jobs --help)",
                 id="typo-of-a-command"),
    pytest.param(["jobs", "show"], "ID: missing (a required argument) "
                 "(see taskwheel jobs show --help)", id="missing-argument"),
    pytest.param(["keys", "create"], "--role: missing (a required option) "
                 "(see taskwheel keys create --help)", id="missing-option"),
    pytest.param(["jobs", "list", "--limit", "0"],
                 "--limit: 0 is not in the range x>=1 (see taskwheel jobs list --help)",
                 id="out-of-range"),
    pytest.param(["jobs", "show", "1", "2"],
                 "got unexpected extra argument (2) (see taskwheel jobs show --help)",
                 id="extra-argument"),
    pytest.param(["jobs", "list", "--limit"], "--limit: requires an argument",
                 id="option-without-value"),
]


@pytest.mark.parametrize(("argv", "line"), USAGE_ERRORS)
def test_a_usage_error_is_one_line_naming_what_is_wrong_and_where_to_look(
    argv: list[str], line: str
) -> None:
    done = run(*argv)

    assert done.exit_code == 2
    assert done.stdout == ""
    assert done.refused() == line


def test_a_usage_error_under_format_json_names_its_field() -> None:
    done = run("jobs", "list", "--stauts", "dead", "--format", "json")

    assert done.exit_code == 2
    assert json.loads(done.stderr) == {
        "error": "--stauts: no such option; did you mean --status or --task? "
                 "(see taskwheel jobs list --help)",
        "field": "--stauts",
    }


def test_taskwheel_alone_shows_its_help() -> None:
    done = run()

    assert done.exception is None
    assert "Commands:" in done.stdout + done.stderr
    assert "jobs" in done.stdout + done.stderr
