"""The tests' one way to wait: `waiting.wait_for`."""

from __future__ import annotations

import itertools

import pytest

from waiting import WaitTimedOut, wait_for


def test_wait_for_returns_the_first_truthy_value_the_condition_gives() -> None:
    calls = itertools.count()

    assert wait_for(lambda: [n] if (n := next(calls)) >= 3 else [], what="a third call") == [3]


def test_wait_for_fails_naming_what_was_awaited_and_what_the_condition_last_gave() -> None:
    with pytest.raises(WaitTimedOut, match=r"waiting for the moon; the condition last returned 0$"):
        wait_for(lambda: 0, what="the moon", timeout=0.05)


def test_a_condition_that_raises_fails_the_wait_at_once() -> None:
    def broken() -> bool:
        raise LookupError("no such job")

    with pytest.raises(LookupError, match="no such job"):
        wait_for(broken, what="a job", timeout=60)
