"""Test helpers for applications that use taskwheel: run their jobs without a worker
and without sleeping.

Installed with taskwheel as a pytest plugin (entry point ``pytest11``): define a
``taskwheel_app`` fixture that returns your `App`, and ask for ``tw``, an `InProcess`
on a fresh SQLite store in the test's temporary directory, whose clock only the test
moves::

    @pytest.fixture
    def taskwheel_app() -> taskwheel.App:
        return myproject.jobs.app

    def test_signup_sends_a_welcome(tw: InProcess) -> None:
        signup("a@b.c")
        tw.assert_enqueued(send_welcome, args=["a@b.c"])
        [job] = tw.drain()
        assert job.result == "sent"

Outside pytest, use `InProcess` as a context manager.
"""

from __future__ import annotations

from taskwheel.testing.harness import InProcess

__all__ = ["InProcess"]
