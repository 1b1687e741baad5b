"""Checkpoints and lease extensions from running tasks: they reach the retry, and from
an async task they never block the worker's event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

import taskwheel
from taskwheel import AttemptOutcome, JobStatus, Retry
from taskwheel.maintenance import MaintenanceSettings
from waiting import wait_for

from .conftest import running_worker

RETRY_ONCE = Retry(max_attempts=2, base="10ms", jitter=0)


def test_an_async_checkpoint_while_the_store_is_slow_blocks_no_other_coroutine(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_save, real_heartbeat = app.store.save_checkpoint, app.store.heartbeat
    beats: list[float] = []

    def slow_save(job_id: int, fence: int, state_json: str) -> bool:
        entered.set()
        release.wait(20)
        return real_save(job_id, fence, state_json)

    def counted_heartbeat(
        worker_id: str, lease_ttl: float, leases: Mapping[int, int]
    ) -> dict[int, bool]:
        beats.append(time.monotonic())
        return real_heartbeat(worker_id, lease_ttl, leases)

    monkeypatch.setattr(app.store, "save_checkpoint", slow_save)
    monkeypatch.setattr(app.store, "heartbeat", counted_heartbeat)

    @app.task(pass_context=True)
    async def saver(ctx: taskwheel.Context) -> bool:
        return ctx.checkpoint({"rows": 10})  # returns at once, on the loop

    @app.task
    async def quick(n: int) -> int:
        return n

    job = saver.enqueue()
    with running_worker(app, lease_ttl="1s", heartbeat="50ms"):
        assert entered.wait(10), "the checkpoint never reached the store"
        # The store call blocks on the writer thread; the loop goes on.
        others = [quick.enqueue(n) for n in range(5)]
        assert [o.result(timeout=5) for o in others] == list(range(5))
        counted = len(beats)
        wait_for(lambda: len(beats) >= counted + 3, timeout=5, what="heartbeats to go on")
        # Its outcome waits for its checkpoint: a retry must find the checkpoint.
        assert job.refresh().status is JobStatus.RUNNING
        release.set()
        assert job.result(timeout=5) is True
    assert job.record.checkpoint == {"rows": 10}
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]


@pytest.mark.parametrize("style", ["sync", "awaited"])
def test_an_async_tasks_last_checkpoint_is_handed_to_its_retry(
    app: taskwheel.App, style: str
) -> None:
    @app.task(pass_context=True, retry=RETRY_ONCE)
    async def resume(ctx: taskwheel.Context, rows: int) -> Any:
        if ctx.last_checkpoint is not None:
            return ctx.last_checkpoint
        for row in range(rows):  # a burst of checkpoints: the last one counts
            if style == "sync":
                assert ctx.checkpoint({"row": row})
            else:
                assert await ctx.checkpoint_async({"row": row})
        raise RuntimeError("fails after saving progress")

    job = resume.enqueue(200)
    with running_worker(app):
        assert job.result(timeout=20) == {"row": 199}
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.FAILED,
                                                    AttemptOutcome.SUCCEEDED]


def test_extending_the_lease_from_an_async_task_keeps_the_job_without_heartbeats(
    app: taskwheel.App, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.store, "heartbeat", lambda worker_id, ttl: {})

    @app.task(pass_context=True)
    async def long_run(ctx: taskwheel.Context) -> list[bool]:
        import asyncio

        answers = [await ctx.extend_lease_async("3s")]
        await asyncio.sleep(0.8)  # beyond the 300 ms lease, within the extension
        answers.append(ctx.extend_lease("3s"))
        return answers

    job = long_run.enqueue()
    settings = MaintenanceSettings.build(every="50ms")
    with running_worker(app, lease_ttl="300ms", heartbeat="100ms", maintenance=settings):
        assert job.result(timeout=10) == [True, True]
    assert [a.outcome for a in job.attempts()] == [AttemptOutcome.SUCCEEDED]


def test_a_stale_attempt_learns_that_its_checkpoints_are_refused(
    app: taskwheel.App,
) -> None:
    answers: list[bool] = []
    runs: list[int] = []

    @app.task(pass_context=True)
    async def stale(ctx: taskwheel.Context) -> str:
        runs.append(ctx.fencing_token)
        if len(runs) > 1:
            return "run again"
        # The job is taken from this attempt (as if its worker had been presumed dead).
        holder = app.store.get_job(app.namespace, ctx.job_id).worker_id
        assert holder is not None
        app.store.release_jobs(holder, {ctx.job_id: ctx.fencing_token})
        answers.append(await ctx.checkpoint_async("late"))
        answers.append(ctx.checkpoint("later"))  # the refusal is remembered
        return "stale"

    job = stale.enqueue()
    with running_worker(app):
        assert job.result(timeout=10) == "run again"
        wait_for(lambda: len(answers) == 2, what="the stale attempt's checkpoints")
    assert answers == [False, False]
    assert job.refresh().record.checkpoint is None
