"""Usage errors (a mistyped option, a value of the wrong type, a missing argument) as
one line naming what is wrong and where to look, instead of click's usage block.

Example:
    $ taskwheel enqueue send --priority high --app myproject.tasks:app
    error: --priority: 'high' is not a valid integer (see taskwheel enqueue --help)
    $ taskwheel jobs list --stauts dead
    error: --stauts: no such option; did you mean --status? (see taskwheel jobs list --help)
"""

from __future__ import annotations

import re

import click

from taskwheel.cli.options import spelled_name


def describe_usage_error(exc: click.UsageError) -> tuple[str | None, str]:
    """The option, argument or command the error is about (None when it names none)
    and the error's line, ending with the help to read."""
    field, message = _what_is_wrong(exc)
    hint = "" if exc.ctx is None else f" (see {exc.ctx.command_path} --help)"
    return field, f"{message}{hint}"


def _what_is_wrong(exc: click.UsageError) -> tuple[str | None, str]:
    if isinstance(exc, click.NoSuchOption):
        return exc.option_name, (f"{exc.option_name}: no such option"
                                 + _did_you_mean(exc.possibilities))
    if isinstance(exc, click.exceptions.NoSuchCommand):
        return exc.command_name, (f"{exc.command_name}: no such command"
                                  + _did_you_mean(exc.possibilities))
    param = getattr(exc, "param", None)
    hint = getattr(exc, "param_hint", None)
    name = spelled_name(param) if param is not None else hint if isinstance(hint, str) else None
    if isinstance(exc, click.MissingParameter):
        what = "argument" if isinstance(param, click.Argument) else "option"
        return name, f"{name or 'a value'}: missing (a required {what})"
    if isinstance(exc, click.BadParameter) and name is not None:
        return name, f"{name}: {_sentence(exc.message)}"
    if isinstance(exc, click.BadOptionUsage):
        # "Option '--limit' requires an argument." says the option's name twice.
        reason = re.sub(r"^option '[^']*' ", "", _sentence(exc.message))
        return exc.option_name, f"{exc.option_name}: {reason}"
    return name, _sentence(exc.format_message())


def _did_you_mean(possibilities: list[str] | None) -> str:
    if not possibilities:
        return ""
    names = sorted(possibilities)
    spoken = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"; did you mean {spoken}?"


def _sentence(message: str) -> str:
    """Click's message without its final full stop (the hint follows it) and with its
    first letter lowered, as our other error lines read."""
    message = re.sub(r"\.$", "", message.strip())
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[:1].lower() + message[1:]
    return message
