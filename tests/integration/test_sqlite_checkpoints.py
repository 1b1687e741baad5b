"""A SQLite store copies its WAL back into the database file from a thread of the
writing process, never inside a commit below ten times SQLite's own size for it.

SQLite checkpoints inside the COMMIT that grows the WAL past 1,000 pages, and that
writer then still holds the write lock every process queues on: in a drain of two
worker processes, a commit in a hundred took 5-15 ms and every other writer waited."""

from __future__ import annotations

from pathlib import Path

import pytest

import taskwheel
from taskwheel.stores.sqlite.connection import Checkpointer
from waiting import wait_for

PAGE = 4096


def write_past_sqlite_s_checkpoint_size(path: Path) -> tuple[taskwheel.App, int]:
    """A migrated app on ``path`` whose one commit grew the WAL past 1,000 pages; and the
    database file's size before that commit."""
    app = taskwheel.App(f"sqlite:///{path}")
    app.migrate()

    @app.task()
    def carry(payload: str) -> None:
        """A job whose argument fills half a page."""

    before = path.stat().st_size
    app.enqueue_many(carry.prepare("x" * (PAGE // 2)) for _ in range(3000))
    assert Path(f"{path}-wal").stat().st_size > 1000 * PAGE
    return app, before


def test_a_commit_past_sqlite_s_checkpoint_size_copies_nothing_back_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Checkpointer, "PERIOD", 3600.0)  # the thread stays asleep
    path = tmp_path / "kept.db"
    app, before = write_past_sqlite_s_checkpoint_size(path)
    try:
        assert path.stat().st_size == before  # the pages are in the WAL alone
    finally:
        app.close()


def test_the_writing_process_copies_its_commits_back_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One commit, however large, waits up to `Checkpointer.LINGER` (5 s; half a second
    here) for others before its turn."""
    monkeypatch.setattr(Checkpointer, "LINGER", 0.5)
    path = tmp_path / "copied.db"
    app, before = write_past_sqlite_s_checkpoint_size(path)
    try:
        wait_for(lambda: path.stat().st_size > before + 1000 * PAGE, timeout=10,
                 what="the checkpointer to copy the commit back into the database file")
        assert app.list_jobs()  # and the file reads as it did
    finally:
        app.close()


def test_the_wal_starts_again_while_a_writer_keeps_committing(tmp_path: Path) -> None:
    """A copy made while writers append never catches up with them, and a WAL starts
    again from its beginning only once all of it is copied: the checkpointer copies the
    rest with the write lock held. Without that, 15,000 single enqueues grew it to the
    bound (10,000 pages, 40 MB); with it, it stays within a few megabytes."""
    path = tmp_path / "busy.db"
    app = taskwheel.App(f"sqlite:///{path}")
    app.migrate()

    @app.task()
    def noop() -> None:
        """A job."""

    wal = Path(f"{path}-wal")
    largest = 0
    try:
        for n in range(15_000):
            noop.enqueue()
            if n % 50 == 0:
                largest = max(largest, wal.stat().st_size)
    finally:
        app.close()
    # About 1,500 pages here; half the bound leaves room for a slow machine.
    assert largest < 5_000 * PAGE, f"the WAL reached {largest / PAGE:.0f} pages"
