"""The ``taskwheel`` command: run workers, enqueue jobs, inspect and repair queues.

Every command takes ``--format table|json``, ``--database-url`` (or
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
    $ taskwheel scheduler --app myproject.tasks:app
    $ taskwheel schedules preview --cron '30 2 * * *' --timezone Europe/Berlin --count 5
    $ taskwheel workflows submit etl.yaml --app myproject.tasks:app
    $ taskwheel workflows show 7
    $ taskwheel keys create --namespace team-a --role operate
    $ taskwheel server --app myproject.tasks:app --port 8080
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from taskwheel.cli.admin import demo, migrate, stats
from taskwheel.cli.jobs import dlq, enqueue, jobs
from taskwheel.cli.keys import keys, quotas
from taskwheel.cli.scheduler import dev, scheduler
from taskwheel.cli.schedules import schedules
from taskwheel.cli.server import server
from taskwheel.cli.webhooks import webhooks
from taskwheel.cli.worker import worker
from taskwheel.cli.workflows import workflows


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskwheel")
def cli() -> None:
    """taskwheel: jobs, schedules and workflows on SQLite or PostgreSQL."""


for command in (worker, scheduler, dev, server, enqueue, jobs, dlq, schedules, workflows, stats,
                keys, quotas, webhooks, migrate, demo):
    cli.add_command(command)


def _register_optional_commands() -> None:
    try:
        from taskwheel.cli.bench import bench  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        # Written separately: the rest of the command line works without it.
        if exc.name != "taskwheel.cli.bench":
            click.echo(f"warning: the bench command is unavailable: {exc}", err=True)
        return
    cli.add_command(bench)


_register_optional_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``taskwheel`` console script."""
    cli.main(args=argv, prog_name="taskwheel")


if __name__ == "__main__":
    main()
