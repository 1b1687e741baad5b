"""Defaults from a file, and ``taskwheel config``: where each setting comes from.

``taskwheel.toml`` in the current directory (or, when there is none, the
``[tool.taskwheel]`` table of ``pyproject.toml``) holds defaults for the command line's
options, each named as its long option without the dashes (``database_url`` or
``database-url``). A key at the top applies to every command that has that option; a
table named for a command (``[worker]``, ``[jobs.list]``) to that command alone, and wins
over the top. A flag beats an environment variable, which beats the file, which beats the
built-in default (click's own order for a context's ``default_map``). A key that is no
option of any command (of the table's command) is refused in one line naming it:
nothing is silently ignored.

Example (taskwheel.toml):
    app = "myproject.tasks:app"
    database_url = "postgresql://app@db/app"

    [worker]
    queue = ["emails", "default"]
    concurrency = 16
"""

from __future__ import annotations

import difflib
import functools
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from taskwheel.cli.options import APP_ENV
from taskwheel.cli.output import ANSWER_FORMATS, Format, Output
from taskwheel.errors import InvalidInput
from taskwheel.stores import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from taskwheel.validators import validate_name, validate_text

FILE = "taskwheel.toml"
PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class Defaults:
    """The file's settings: where they were read, the top-level ones, and each command's
    own (by command path, e.g. ``("jobs", "list")``)."""

    source: str | None  # "taskwheel.toml", "pyproject.toml [tool.taskwheel]" or None
    shared: Mapping[str, Any]
    commands: Mapping[tuple[str, ...], Mapping[str, Any]]


def read_defaults(directory: Path) -> Defaults:
    """The defaults of ``directory``'s taskwheel.toml, else of its pyproject.toml's
    ``[tool.taskwheel]``; none when neither is there."""
    own = directory / FILE
    if own.is_file():
        return _split(_load(own, FILE), FILE)
    pyproject = directory / PYPROJECT
    if pyproject.is_file():
        table = _load(pyproject, PYPROJECT).get("tool", {}).get("taskwheel")
        if table is not None:
            name = f"{PYPROJECT} [tool.taskwheel]"
            if not isinstance(table, dict):
                raise InvalidInput("config", f"{name}: must be a table")
            return _split(table, name)
    return Defaults(None, {}, {})


def _load(path: Path, name: str) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("config", f"{name}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise InvalidInput("config", f"{name}: cannot read it ({exc.strerror})") from None


def _split(table: Mapping[str, Any], source: str) -> Defaults:
    shared: dict[str, Any] = {}
    commands: dict[tuple[str, ...], dict[str, Any]] = {}

    def walk(path: tuple[str, ...], items: Mapping[str, Any]) -> None:
        for key, value in items.items():
            if isinstance(value, dict):
                walk((*path, key), value)
            elif path:
                commands.setdefault(path, {})[_key(key)] = value
            else:
                shared[_key(key)] = value

    walk((), table)
    return Defaults(source, shared, commands)


def _key(name: str) -> str:
    return name.replace("-", "_")


def setting_name(param: click.Parameter) -> str | None:
    """The name of an option in the file: its long name without dashes (None for an
    argument, a hidden option or help)."""
    if not isinstance(param, click.Option) or param.hidden or param.is_eager:
        return None
    long_names = [opt for opt in param.opts if opt.startswith("--")]
    return _key(long_names[0][2:]) if long_names else None


def commands_of(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], click.Command]
]:
    context = click.Context(group)
    for name in group.list_commands(context):  # loads each command (see main._COMMANDS)
        command = group.get_command(context, name)
        if command is None:  # bench, where the benchmarks are not installed
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands_of(command, (*path, name))


def default_map(root: click.Group, defaults: Defaults) -> dict[str, Any]:
    """Click's ``default_map`` for the command tree: for each command, its options'
    values from the file. A key of the file that names no option is refused. Without a
    file, nothing: no command is loaded to be checked (see main._COMMANDS)."""
    if not defaults.shared and not defaults.commands:
        return {}
    known: dict[tuple[str, ...], dict[str, click.Parameter]] = {}
    for path, command in commands_of(root):
        known[path] = {name: param for param in command.params
                       if (name := setting_name(param)) is not None}
    everywhere = {name for options in known.values() for name in options}
    for key in defaults.shared:
        if key not in everywhere:
            raise _unknown(defaults.source, key, everywhere, "no command has this option")
    for path, items in defaults.commands.items():
        if path not in known:
            raise _unknown(defaults.source, ".".join(path),
                           {".".join(p) for p in known}, "no such command", table=True)
        for key in items:
            if key not in known[path]:
                raise _unknown(defaults.source, key, set(known[path]),
                               f"'taskwheel {' '.join(path)}' has no such option",
                               table_of=path)
    tree: dict[str, Any] = {}
    for path, options in known.items():
        values = {**{k: v for k, v in defaults.shared.items() if k in options},
                  **defaults.commands.get(path, {})}
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        for key, value in values.items():
            param = options[key]
            node[param.name or key] = ([value] if getattr(param, "multiple", False)
                                       and not isinstance(value, list) else value)
    return tree


def _unknown(source: str | None, key: str, known: set[str], reason: str, *,
             table: bool = False, table_of: tuple[str, ...] = ()) -> InvalidInput:
    where = f" in [{'.'.join(table_of)}]" if table_of else ""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    what = "table" if table else "setting"
    return InvalidInput("config", f"{source}: unknown {what} {key!r}{where} ({reason}){hint}")


# -- taskwheel config ---------------------------------------------------------------------

_SOURCES = {
    click.core.ParameterSource.COMMANDLINE: "flag",
    click.core.ParameterSource.ENVIRONMENT: "environment",
    click.core.ParameterSource.DEFAULT_MAP: "file",
    click.core.ParameterSource.DEFAULT: "default",
}
_BUILT_IN = {"app": None, "database_url": DEFAULT_DATABASE_URL, "namespace": "default"}


@click.command("config")
@click.option("--app", "app", envvar=APP_ENV, default=None, show_envvar=True,
              metavar="MODULE:ATTRIBUTE", help="The taskwheel.App that defines the tasks.")
@click.option("--database-url", envvar=DATABASE_URL_ENV, default=None, show_envvar=True,
              help="The database commands act on.")
@click.option("--namespace", default=None, help="The tenant commands act in.")
@click.option("--format", "output_format", type=click.Choice([f.value for f in ANSWER_FORMATS]),
              default=Format.TABLE.value, show_default=True, help="How to print the answer.")
@click.pass_context
def show_config(ctx: click.Context, /, **values: Any) -> None:
    """Each setting, its value and where it came from (flag, environment, file or
    default): the shared ones (--app, --database-url, --namespace), then each other
    setting of the file."""
    output = Output(Format(values.pop("output_format")))
    checks: dict[str, Callable[[Any, str], object]] = {
        "namespace": validate_name,
        # printed back as they are: text (a lone surrogate cannot be printed)
        "app": functools.partial(validate_text, longest=1000),
        "database_url": functools.partial(validate_text, longest=10_000)}
    for name, check in checks.items():
        if values[name] is not None:
            try:
                check(values[name], name)
            except InvalidInput as exc:
                raise click.BadParameter(exc.reason, ctx,
                                         param_hint=f"--{name.replace('_', '-')}") from None
    defaults: Defaults = ctx.obj if isinstance(ctx.obj, Defaults) else Defaults(None, {}, {})
    rows = []
    for name, built_in in _BUILT_IN.items():
        source = _SOURCES.get(ctx.get_parameter_source(name) or
                              click.core.ParameterSource.DEFAULT, "default")
        value = values[name]
        rows.append({"setting": name, "command": None,
                     "value": built_in if value is None else value, "source": source,
                     "file": defaults.source if source == "file" else None})
    for key, value in defaults.shared.items():
        if key not in values:
            rows.append({"setting": key, "command": None, "value": value, "source": "file",
                         "file": defaults.source})
    for path, items in defaults.commands.items():
        for key, value in items.items():
            rows.append({"setting": key, "command": " ".join(path), "value": value,
                         "source": "file", "file": defaults.source})
    if output.json:
        output.emit_json(rows)
        return
    for row in rows:
        where = "" if row["command"] is None else f" [{row['command']}]"
        shown = "(none)" if row["value"] is None else row["value"]
        origin = row["source"] if row["file"] is None else f"file {row['file']}"
        output.note(f"{row['setting']}{where} = {shown}  ({origin})")
