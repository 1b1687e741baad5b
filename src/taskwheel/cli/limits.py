"""``taskwheel limits``: each key's concurrency limit, slots in use and waiting jobs;
set a limit at run time; pause and resume a key (see `taskwheel.limits`); each key's
rate limit, set at run time with ``limits set KEY --rate 100/min --burst 20`` and
listed with ``limits rates`` (see `taskwheel.rates`).
``taskwheel breakers``: the keys' circuit breakers; open and close one by hand (see
`taskwheel.breakers`)."""

from __future__ import annotations

import click

from taskwheel.cli.options import Target, common_options, listing_options
from taskwheel.cli.output import _when, new_table
from taskwheel.cli.queues import _for, _pause_end_options, _until
from taskwheel.errors import InvalidInput
from taskwheel.limits import KeyLimit, validate_capacity
from taskwheel.rates import KeyRate, parse_rate, validate_burst

_COLUMNS = ("key", "capacity", "in_use", "waiting", "set_by_hand", "paused", "paused_until")
_RATE_COLUMNS = ("key", "rate", "rate_per_minute", "burst", "tokens", "waiting", "admitted",
                 "set_by_hand")


@click.group()
def limits() -> None:
    """Concurrency and rate limits per key: list, show, set, rates; pause and resume."""


@limits.command("list")
@listing_options
def list_limits(target: Target) -> None:
    """Every key of the namespace: its limit, jobs holding a slot, jobs waiting."""
    with target.client() as client:
        found = client.limits()
    if target.output.data:
        target.output.records([limit.to_dict() for limit in found], columns=_COLUMNS)
        return
    table = new_table(title="keys", title_justify="left")
    for column in ("key", "limit", "in use", "waiting", "set", "paused until"):
        table.add_column(column)
    for limit in found:
        table.add_row(limit.key, _capacity(limit), str(limit.in_use), str(limit.waiting),
                      "by hand" if limit.set_by_hand else "declared", _pause(limit))
    target.output.console.print(table)


@limits.command("show")
@click.argument("key")
@common_options
def show_limit(target: Target, *, key: str) -> None:
    """KEY's limit, slots in use, waiting jobs and pause (refused for a key never seen)."""
    with target.client() as client:
        _print(target, client.limit(key))


@limits.command("set")
@click.argument("key")
@click.argument("limit", metavar="[LIMIT]", required=False)
@click.option("--rate", "rate_text", metavar="RATE",
              help="Start KEY's jobs at this rate at most: 100/min, 5/s, 2/10s, 1000/h.")
@click.option("--burst", "burst_text", metavar="TOKENS",
              help="The rate's bucket: starts allowed at once (default: the key's, or 1).")
@common_options
def set_limit(target: Target, *, key: str, limit: str | None, rate_text: str | None,
              burst_text: str | None) -> None:
    """Run at most LIMIT jobs of KEY at once, from now on, whatever its task declares
    (``none``: no limit). Raising it admits waiting jobs at once; lowering it lets
    running jobs finish. With --rate and/or --burst, set KEY's rate limit instead (or
    as well): from the next admission pass on, its jobs start at RATE at most."""
    if limit is None and rate_text is None and burst_text is None:
        raise InvalidInput("limit", "give LIMIT, --rate or --burst")
    capacity = None if limit in (None, "none") else _capacity_of(limit)
    burst = None if burst_text is None else _burst_of(burst_text)
    if rate_text is not None:
        parse_rate(rate_text)  # every value is checked before anything is written
    with target.client() as client:
        if rate_text is not None or burst is not None:
            rated = client.set_rate(key, rate_text, burst=burst)
            if limit is None:
                _print_rate(target, rated)
                return
        _print(target, client.set_limit(key, capacity))


@limits.command("rates")
@click.argument("key", required=False)
@listing_options
def list_rates(target: Target, *, key: str | None) -> None:
    """Every rate-limited key of the namespace (KEY: that one, refused if it has no
    rate limit): its rate, burst, tokens, jobs waiting for tokens and admitted."""
    with target.client() as client:
        found = client.rates() if key is None else [client.rate(key)]
    if target.output.data:
        target.output.records([rate.to_dict() for rate in found], columns=_RATE_COLUMNS)
        return
    table = new_table(title="rates", title_justify="left")
    for column in ("key", "rate", "burst", "tokens", "waiting", "admitted", "set"):
        table.add_column(column)
    for rate in found:
        table.add_row(rate.key, _per_minute(rate), str(rate.burst), f"{rate.tokens:g}",
                      str(rate.waiting), str(rate.admitted),
                      "by hand" if rate.set_by_hand else "declared")
    target.output.console.print(table)


@limits.command("pause")
@click.argument("key")
@_pause_end_options
@common_options
def pause_key(target: Target, *, key: str, for_text: str | None,
              until_text: str | None) -> None:
    """Admit no job of KEY until it is resumed (by hand, or at the end --for or --until
    give): its ready jobs wait, running ones finish, nothing is lost."""
    with target.client() as client:
        _print(target, client.pause_key(key, until=_until(until_text),
                                        duration=_for(for_text)))


@limits.command("resume")
@click.argument("key")
@common_options
def resume_key(target: Target, *, key: str) -> None:
    """Admit KEY's jobs again, up to its limit (refused if it is not paused)."""
    with target.client() as client:
        released = client.resume_key(key)
    if target.output.json:
        target.output.emit_json({"key": key, "released": released})
    else:
        target.output.note(f"key {key} resumed: {released} jobs admitted")


def _capacity_of(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput("limit", f"must be a whole number from 1, or none, got {text!r}") \
            from None
    return validate_capacity(value)


def _burst_of(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput("burst", f"must be a whole number from 1, got {text!r}") from None
    return validate_burst(value)


def _per_minute(rate: KeyRate) -> str:
    return f"{rate.rate * 60:g}/min"


def _print_rate(target: Target, rate: KeyRate) -> None:
    if target.output.json:
        target.output.emit_json(rate.to_dict())
        return
    target.output.note(f"key {rate.key}: rate {_per_minute(rate)}, burst {rate.burst}, "
                       f"{rate.waiting} waiting for tokens")


def _capacity(limit: KeyLimit) -> str:
    return "none" if limit.capacity is None else str(limit.capacity)


def _pause(limit: KeyLimit) -> str:
    if not limit.paused:
        return "-"
    return "resumed by hand" if limit.paused_until is None else _when(limit.paused_until)


def _print(target: Target, limit: KeyLimit) -> None:
    if target.output.json:
        target.output.emit_json(limit.to_dict())
        return
    paused = "" if not limit.paused else f", paused (until {_pause(limit)})"
    target.output.note(f"key {limit.key}: limit {_capacity(limit)}, {limit.in_use} in use, "
                       f"{limit.waiting} waiting{paused}")


@click.group()
def breakers() -> None:
    """Circuit breakers per key: list; open and close one by hand."""


@breakers.command("list")
@listing_options
def list_breakers(target: Target) -> None:
    """Keys with a breaker rule or a breaker not closed: state, failures, until."""
    with target.client() as client:
        found = client.breakers()
    if target.output.data:
        target.output.records([limit.to_dict() for limit in found],
                              columns=("key", "breaker", "breaker_until", "failures",
                                       "attempts", "breaker_failures", "breaker_window",
                                       "breaker_cooldown", "breaker_failure_rate",
                                       "waiting"))
        return
    table = new_table(title="breakers", title_justify="left")
    for column in ("key", "state", "until", "failures", "rule", "waiting"):
        table.add_column(column)
    for limit in found:
        rule = counted = "-"
        if limit.breaker_rule is not None:
            failures, window, cooldown, rate = limit.breaker_rule
            share = "" if rate is None else f" at {rate:.0%}"
            rule = f"{failures}{share} in {window:g}s, cool {cooldown:g}s"
            counted = str(limit.failures) if rate is None else (
                f"{limit.failures} of {limit.attempts}")
        table.add_row(limit.key, limit.breaker, _breaker_until(limit), counted, rule,
                      str(limit.waiting))
    target.output.console.print(table)


@breakers.command("open")
@click.argument("key")
@_pause_end_options
@common_options
def open_breaker(target: Target, *, key: str, for_text: str | None,
                 until_text: str | None) -> None:
    """Open KEY's breaker: admit none of its jobs until the end --for or --until give
    (neither: until closed by hand), then one probe at a time. Running jobs finish."""
    with target.client() as client:
        _breaker_note(target, client.open_breaker(key, until=_until(until_text),
                                                  duration=_for(for_text)))


@breakers.command("close")
@click.argument("key")
@common_options
def close_breaker(target: Target, *, key: str) -> None:
    """Close KEY's breaker and admit its waiting jobs (refused if it is closed)."""
    with target.client() as client:
        _breaker_note(target, client.close_breaker(key))


def _breaker_until(limit: KeyLimit) -> str:
    if limit.breaker != "open":
        return "-"
    return "closed by hand" if limit.breaker_until is None else _when(limit.breaker_until)


def _breaker_note(target: Target, limit: KeyLimit) -> None:
    if target.output.json:
        target.output.emit_json(limit.to_dict())
        return
    until = "" if limit.breaker != "open" else f" until {_breaker_until(limit)}"
    target.output.note(f"key {limit.key}: breaker {limit.breaker}{until}, "
                       f"{limit.waiting} jobs waiting")
