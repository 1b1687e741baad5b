"""Options every command shares, and how errors become one line and an exit code."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from taskwheel.app import App, load_app, open_checked_store
from taskwheel.cli.output import ANSWER_FORMATS, LISTING_FORMATS, Format, Output, error_line
from taskwheel.cli.watch import follow, watch_option
from taskwheel.client import Client
from taskwheel.errors import InvalidInput, StoreUnavailable, TaskwheelError
from taskwheel.stores import DATABASE_URL_ENV
from taskwheel.validators import ALL_NAMESPACES, validate_namespaces

APP_ENV = "TASKWHEEL_APP"
log = logging.getLogger("taskwheel.cli")


@dataclass(frozen=True)
class Target:
    """Where a command acts (database and namespace) and how it answers."""

    database_url: str | None  # None: the app's own, else $TASKWHEEL_DATABASE_URL or ./taskwheel.db
    namespace: str | None  # None: the app's own, else "default"
    output: Output

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A client of the namespace on the database, for commands that need no task
        registry; the store is closed afterwards. An unmigrated database is refused
        (`SchemaOutdated`)."""
        store = open_checked_store(self.database_url)
        try:
            yield Client(store, self.namespace or "default")
        finally:
            store.close()

    def load(self, spec: str) -> App:
        """The user's app, pointed at the database and namespace given to the command."""
        app = load_app(spec)
        app.configure(database_url=self.database_url, namespace=self.namespace)
        return app


def common_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add ``--format``, ``--database-url`` and ``--namespace`` to a command, hand it a
    `Target`, and turn taskwheel's errors into one line and an exit code."""
    return _with_common_options(command, several_namespaces=False, listing=False)


def listing_options(command: Callable[..., None]) -> Callable[..., None]:
    """`common_options` for a listing: ``--format`` also takes ``csv``, and ``--watch
    [SECONDS]`` draws the listing again every few seconds until Ctrl-C (the command is
    called once per drawing)."""
    return _with_common_options(command, several_namespaces=False, listing=True)


def serving_options(command: Callable[..., None]) -> Callable[..., None]:
    """`common_options` for a process that serves namespaces: ``--namespace`` may be
    given several times (the first is also the app's), and ``--all-namespaces`` serves
    every one; the command receives them as ``namespaces``."""
    # Added to the wrapped command: `functools.wraps` would drop an option given to the
    # command itself.
    return click.option(
        "--all-namespaces", is_flag=True,
        help="Serve every namespace (an operator's fleet); not with --namespace.",
    )(_with_common_options(command, several_namespaces=True, listing=False))


def _with_common_options(
    command: Callable[..., None], *, several_namespaces: bool, listing: bool
) -> Callable[..., None]:
    formats = LISTING_FORMATS if listing else ANSWER_FORMATS

    @functools.wraps(command)
    @click.option(
        "--namespace", "namespace", default=None, multiple=several_namespaces,
        help="Tenant to serve (repeat for several); overrides the app's own.  "
        "[default: default]" if several_namespaces else
        "Tenant to act in; overrides the app's own.  [default: default]",
    )
    @click.option(
        "--database-url", envvar=DATABASE_URL_ENV, default=None, show_envvar=True,
        help="sqlite:///path.db or postgresql://user@host/db[?schema=name]; overrides the "
        "app's own.  [default: sqlite:///taskwheel.db]",
    )
    @click.option(
        "--format", "output_format", type=click.Choice([f.value for f in formats]),
        default=Format.TABLE.value, show_default=True, help="How to print the answer.",
    )
    @click.pass_context
    def run(
        ctx: click.Context,
        /,
        output_format: str,
        database_url: str | None,
        namespace: str | tuple[str, ...] | None,
        **kwargs: Any,
    ) -> None:
        try:
            if several_namespaces:
                given = tuple(namespace or ())
                if kwargs.pop("all_namespaces"):
                    if given:
                        raise InvalidInput("all_namespaces", "serve every namespace or the "
                                           "ones --namespace names, not both")
                    given = (ALL_NAMESPACES,)
                kwargs["namespaces"] = validate_namespaces(given, "namespace")
                first = given[0] if given and given[0] != ALL_NAMESPACES else None
            else:
                assert not isinstance(namespace, tuple)
                first = namespace
            interval = kwargs.pop("watch", None)
            format = Format(output_format)
            if interval is None:
                command(Target(database_url or None, first, Output(format)), **kwargs)
            else:
                follow(lambda output: command(Target(database_url or None, first, output),
                                              **kwargs), format, interval)
        except TaskwheelError as exc:
            field, message = _describe(ctx, exc)
            error_line(message, field=field, as_json=output_format == Format.JSON.value)
            ctx.exit(2 if isinstance(exc, InvalidInput) else 1)

    return watch_option(run) if listing else run


def _describe(ctx: click.Context, exc: TaskwheelError) -> tuple[str | None, str]:
    """The error's field spelled as the user typed it (the option, or the argument's
    name), and the error's line."""
    if not isinstance(exc, InvalidInput):
        return None, str(exc)
    spelled = f"--{exc.field.replace('_', '-')}"
    for param in ctx.command.params:
        if param.name == exc.field or spelled in param.opts:
            name = spelled_name(param)
            return name, f"{name}: {exc.reason}"
    return exc.field, str(exc)


def spelled_name(param: click.Parameter) -> str:
    """An option or argument as the user knows it: ``--max-attempts``, ``ID``."""
    if isinstance(param, click.Option):
        long_names = [opt for opt in param.opts if opt.startswith("--")]
        return (long_names or param.opts)[0]
    return re.sub(r"[\[\].]", "", param.human_readable_name)


def app_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--app", "app_spec", envvar=APP_ENV, required=True, show_envvar=True,
        metavar="MODULE:ATTRIBUTE", help="The taskwheel.App that defines the tasks.",
    )(command)


def wait_for_store(app: App, *, migrate: bool = False, longest: float = 5.0) -> None:
    """Open the app's store (checking its schema, or migrating it when ``migrate``) and
    check that it can be written, waiting with backoff while the database cannot be
    reached: a worker or scheduler started during an outage starts when it ends,
    instead of exiting. A configuration error (no such database or role, a read-only
    file) is not waited out: it is raised, and the command exits with one line."""
    delay = 0.1
    while True:
        try:
            if migrate:
                app.migrate()
            app.store.check_writable()
            return
        except StoreUnavailable as error:
            log.warning("%s; trying again in %.1fs", error, delay)
            time.sleep(delay)
            delay = min(longest, delay * 2)
