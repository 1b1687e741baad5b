"""``taskwheel limits set KEY --rate --burst`` and ``taskwheel limits rates`` on both
stores: a key's rate is set at run time and listed; a malformed rate or burst, a bad
key, or a burst alone for a key without a rate is one line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS

from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def test_a_key_s_rate_is_set_and_listed(app: taskwheel.App, url: str) -> None:
    call = app.task(lambda account: None, name="call",
                    rate=taskwheel.RateLimit(key="api:{account}", rate="100/min", burst=20))
    for _ in range(3):
        call.enqueue("acme")
    listed = run("limits", "rates", "--format", "json", url=url).json()
    assert [(r["key"], r["rate_per_minute"], r["burst"], r["waiting"], r["set_by_hand"])
            for r in listed] == [("api:acme", 100.0, 20, 3, False)]
    changed = run("limits", "set", "api:acme", "--rate", "5/s", "--burst", "2",
                  "--format", "json", url=url).json()
    assert (changed["rate"], changed["burst"], changed["set_by_hand"]) == (5.0, 2, True)
    assert run("limits", "set", "api:acme", "--burst", "3", url=url).stdout.startswith(
        "key api:acme: rate 300/min, burst 3, 3 waiting for tokens")
    assert app.store.admit_rated_jobs("default") == 3
    shown = run("limits", "rates", "api:acme", "--format", "json", url=url).json()
    assert [(r["waiting"], r["admitted"]) for r in shown] == [(0, 3)]
    # A rate for a key no job has yet, beside a concurrency limit for it.
    both = run("limits", "set", "api:new", "4", "--rate", "1/10s", "--format", "json",
               url=url).json()
    assert both["capacity"] == 4
    assert app.store.get_rate("default", "api:new").rate == 0.1


def test_bad_rates_are_one_line_and_write_nothing(app: taskwheel.App, url: str) -> None:
    app.task(lambda account: None, name="call",
             rate=taskwheel.RateLimit(key="api:{account}", rate="1/s")).enqueue("a")
    before = run("limits", "rates", "--format", "json", url=url).json()
    for bad in ("100/fortnight", "0/min", "-3/s", "fast", "5"):
        refused = run("limits", "set", "api:a", "--rate", bad, url=url).refused()
        assert refused.startswith("--rate:"), (bad, refused)
    for bad in ("0", "-1", "two", "2147483648"):
        assert run("limits", "set", "api:a", "--rate", "1/s", "--burst", bad,
                   url=url).refused().startswith("--burst:")
    assert "KEY" in run("limits", "set", "has space", "--rate", "1/s", url=url).refused()
    assert run("limits", "set", "nope", "--burst", "3", url=url).refused().startswith(
        "key 'nope' has no rate limit")
    assert run("limits", "rates", "nope", url=url).refused().startswith(
        "key 'nope' has no rate limit")
    assert run("limits", "set", "api:a", url=url).refused() == (
        "LIMIT: give LIMIT, --rate or --burst")
    assert run("limits", "rates", "--format", "json", url=url).json() == before
    assert app.store.list_limits("default") == []
