"""The ``taskwheel`` command: run workers, enqueue jobs, inspect and repair queues.

Every command takes ``--format table|json`` (listings also ``csv``, and ``--watch``),
``--database-url`` (or
``$TASKWHEEL_DATABASE_URL``) and ``--namespace`` after its name. A refused request is
one ``error: ...`` line on stderr, exit code 2 for bad input and 1 otherwise; nothing
is written when input is refused. Only ``migrate`` (and ``dev`` and ``demo``, for a
laptop) creates or upgrades a database's schema; the other commands refuse a database
that is not migrated.

Example:
    $ taskwheel migrate
    $ taskwheel worker --app myproject.tasks:app -q emails -q default -c 16
    $ taskwheel enqueue send_email --args '["a@b.c"]' --delay 10s --app myproject.tasks:app
    $ taskwheel jobs list --status dead --format json
    $ taskwheel jobs tail
    $ taskwheel scheduler --app myproject.tasks:app
    $ taskwheel schedules preview --cron '30 2 * * *' --timezone Europe/Berlin --count 5
    $ taskwheel workflows submit etl.yaml --app myproject.tasks:app
    $ taskwheel workflows show 7
    $ taskwheel queues pause emails
    $ taskwheel queues limit emails --max-depth 10000
    $ taskwheel limits set tenant:42 5
    $ taskwheel keys create --namespace team-a --role operate
    $ taskwheel server --app myproject.tasks:app --port 8080
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from taskwheel.cli.completion import COMPLETE_VAR
from taskwheel.cli.config import default_map, read_defaults
from taskwheel.cli.output import error_line
from taskwheel.cli.usage import describe_usage_error
from taskwheel.errors import InvalidInput


class _Commands(click.Group):
    """The command group: a usage error (an unknown option, a value of the wrong type) is
    one ``error:`` line with exit code 2, like taskwheel's own refusals, rather than
    click's usage block."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            _load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        given = list(sys.argv[1:] if args is None else args)
        # The options are not parsed when the usage is wrong: look for the format.
        as_json = any(a == "--format=json" or (a == "--format" and b == "json")
                      for a, b in zip(given, [*given[1:], ""][:len(given)], strict=True))
        try:
            defaults = read_defaults(Path.cwd())  # checked against every command
            extra.setdefault("default_map", default_map(self, defaults))
            extra.setdefault("obj", defaults)
        except InvalidInput as exc:
            if not standalone_mode:
                raise
            error_line(exc.reason, field=exc.field, as_json=as_json)
            sys.exit(2)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # a group called without a command: its help
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            field, message = describe_usage_error(exc)
            error_line(message, field=field, as_json=as_json)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            error_line(exc.format_message(), as_json=as_json)
            sys.exit(exc.exit_code)
        except click.Abort:
            error_line("aborted", as_json=as_json)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskwheel")
def cli() -> None:
    """taskwheel: jobs, schedules and workflows on SQLite or PostgreSQL."""


# Each command by the module it lives in, imported only when the command is run, listed
# (help, completion) or checked against a configuration file: a worker or a scheduler
# process holds its own command's modules and no other's (the others are about 2 MB of a
# scheduler's 36; the benchmarks alone, a quarter of the command line's start-up).
_COMMANDS = {
    "worker": ("worker", "worker"), "scheduler": ("scheduler", "scheduler"),
    "dev": ("scheduler", "dev"), "server": ("server", "server"),
    "enqueue": ("jobs", "enqueue"), "jobs": ("jobs", "jobs"), "dlq": ("jobs", "dlq"),
    "queues": ("queues", "queues"), "tasks": ("queues", "tasks"),
    "limits": ("limits", "limits"), "breakers": ("limits", "breakers"),
    "schedules": ("schedules", "schedules"), "workflows": ("workflows", "workflows"),
    "stats": ("admin", "stats"), "migrate": ("admin", "migrate"), "demo": ("admin", "demo"),
    "keys": ("keys", "keys"), "quotas": ("keys", "quotas"),
    "webhooks": ("webhooks", "webhooks"), "alerts": ("alerts", "alerts"),
    "fairness": ("fairness", "fairness"), "config": ("config", "show_config"),
    "completion": ("completion", "completion"), "bench": ("bench", "bench"),
}


@functools.cache
def _load(name: str) -> None:
    """Add the command ``name`` from its module, once. ``bench`` is written separately:
    the rest of the command line works without it."""
    module_name, attribute = _COMMANDS[name]
    try:
        module = importlib.import_module(f"taskwheel.cli.{module_name}")
    except ImportError as exc:
        if name != "bench":
            raise
        if exc.name != "taskwheel.cli.bench":
            click.echo(f"warning: the bench command is unavailable: {exc}", err=True)
        return
    cli.add_command(getattr(module, attribute))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``taskwheel`` console script."""
    cli.main(args=argv, prog_name="taskwheel", complete_var=COMPLETE_VAR)


if __name__ == "__main__":
    main()
