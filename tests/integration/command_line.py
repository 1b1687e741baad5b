"""The ``taskwheel`` command run in-process (click's runner): fast enough for property
tests, and an uncaught exception is seen as such instead of as a traceback on stderr."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from taskwheel.cli.main import cli

from . import cli_app

# The tests folder is on sys.path (it holds the top-level test packages).
APP = "integration.cli_app:app"


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def json(self) -> Any:
        assert self.exit_code == 0, self.stderr
        return json.loads(self.stdout)

    def refused(self) -> str:
        """The one error line of a refused command (which must have been refused so):
        ``error: <message>``, or a JSON object under ``--format json``; its message."""
        assert self.exception is None or isinstance(self.exception, SystemExit), (
            f"uncaught {self.exception!r}"
        )
        assert self.exit_code != 0, self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        if lines[0].startswith("{"):  # under --format json
            error: str = json.loads(lines[0])["error"]
            return error
        assert lines[0].startswith("error: "), lines[0]
        return lines[0].removeprefix("error: ")


def taskwheel(*args: str, url: str | None = None, cwd: Path | None = None) -> Ran:
    """Run ``taskwheel ARGS`` (on ``url``, given as --database-url after the command)."""
    argv = [*args, *(["--database-url", url] if url is not None else [])]
    runner = CliRunner()
    env = {"TASKWHEEL_DATABASE_URL": None, "TASKWHEEL_APP": None}
    if cwd is None:
        result = runner.invoke(cli, argv, env=env, catch_exceptions=True, prog_name="taskwheel")
    else:
        before = Path.cwd()
        os.chdir(cwd)
        try:
            result = runner.invoke(cli, argv, env=env, catch_exceptions=True, prog_name="taskwheel")
        finally:
            os.chdir(before)
    # The app is one object for every run in this process: a --namespace given to one
    # command must not become the next one's.
    cli_app.app.configure(namespace="default")
    exception = result.exception
    if isinstance(exception, SystemExit):
        exception = None
    return Ran(result.exit_code, result.stdout, result.stderr, exception)
