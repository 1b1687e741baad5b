"""``taskwheel limits`` on both stores: a key's limit is listed, shown and set at run
time (waiting jobs admitted at once); a key is paused and resumed; a bad limit, a bad
key or an unknown key is one line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskwheel
from contract.backends import DATABASE_URLS

from .command_line import taskwheel as run


@pytest.fixture
def url(app: taskwheel.App, backend: str, tmp_path: Path) -> str:
    return DATABASE_URLS[backend](tmp_path)


def claimable(app: taskwheel.App) -> int:
    return len(app.store.claim_jobs("default", "w1", ["default"], 10, 30).jobs)


def test_a_key_s_limit_is_listed_set_paused_and_resumed(app: taskwheel.App, url: str) -> None:
    sync = app.task(lambda tenant: None, name="sync",
                    concurrency=taskwheel.ConcurrencyLimit(key="tenant:{tenant}", limit=1))
    for _ in range(3):
        sync.enqueue("a")
    listed = run("limits", "list", "--format", "json", url=url).json()
    assert [(k["key"], k["capacity"], k["in_use"], k["waiting"]) for k in listed] == [
        ("tenant:a", 1, 1, 2)]
    set_ = run("limits", "set", "tenant:a", "2", "--format", "json", url=url).json()
    assert (set_["capacity"], set_["in_use"], set_["set_by_hand"]) == (2, 2, True)
    assert run("limits", "pause", "tenant:a", "--for", "10m", "--format", "json",
               url=url).json()["paused"] is True
    assert claimable(app) == 0
    assert run("limits", "resume", "tenant:a", "--format", "json", url=url).json() == {
        "key": "tenant:a", "released": 2}
    assert claimable(app) == 2
    shown = run("limits", "show", "tenant:a", url=url)
    assert shown.stdout.startswith("key tenant:a: limit 2, 2 in use, 1 waiting")
    assert run("limits", "set", "tenant:a", "none", "--format", "json", url=url).json()[
        "capacity"] is None


def test_bad_input_is_one_line_and_writes_nothing(app: taskwheel.App, url: str) -> None:
    app.task(lambda tenant: None, name="sync",
             concurrency=taskwheel.ConcurrencyLimit(key="tenant:{tenant}", limit=1)
             ).enqueue("a")
    before = run("limits", "list", "--format", "json", url=url).json()
    for bad in ("0", "-1", "ten", "1.5", "2147483648"):
        assert "limit" in run("limits", "set", "tenant:a", bad, url=url).refused().lower()
    assert "KEY" in run("limits", "set", "has space", "1", url=url).refused()
    for command in (("show", "nope"), ("pause", "nope"), ("resume", "nope")):
        assert run("limits", *command, url=url).refused().startswith("key 'nope' has no")
    assert run("limits", "resume", "tenant:a", url=url).refused() == (
        "key 'tenant:a' is not paused")
    assert "until" in run("limits", "pause", "tenant:a", "--until",
                          "2000-01-01T00:00:00+00:00", url=url).refused()
    assert run("limits", "list", "--format", "json", url=url).json() == before


def test_a_breaker_is_opened_listed_and_closed(app: taskwheel.App, url: str) -> None:
    app.task(lambda tenant: None, name="call",
             breaker=taskwheel.CircuitBreaker(failures=3, window="1m", cooldown="30s",
                                              key="api:{tenant}")).enqueue("a")
    app.task(lambda account: None, name="fetch", queue="elsewhere",
             breaker=taskwheel.CircuitBreaker(failures=4, failure_rate=0.5,
                                              key="rated:{account}")).enqueue("b")
    listed = run("breakers", "list", "--format", "json", url=url).json()
    assert [(b["key"], b["breaker"], b["breaker_failures"], b["breaker_window"],
             b["breaker_failure_rate"], b["attempts"]) for b in listed] == [
        ("api:a", "closed", 3, 60.0, None, 0), ("rated:b", "closed", 4, 60.0, 0.5, 0)]
    table = run("breakers", "list", url=url).stdout
    assert "4 at 50% in 60s" in table
    assert "0 of 0" in table  # failures of attempts, under a rate
    opened = run("breakers", "open", "api:a", "--for", "5m", "--format", "json", url=url)
    assert opened.json()["breaker"] == "open"
    assert claimable(app) == 0
    assert run("breakers", "close", "api:a", url=url).stdout.startswith(
        "key api:a: breaker closed, 0 jobs waiting")
    assert claimable(app) == 1
    assert run("breakers", "close", "api:a", url=url).refused() == (
        "the breaker of key 'api:a' is not open")
    assert run("breakers", "open", "nope", url=url).refused().startswith("key 'nope' has no")
