"""The SQLite store never opens its database file with a descriptor of its own.

POSIX record locks belong to a process and a file: closing any descriptor of the file
drops every lock the process holds on it, its SQLite connections' included. Another
process then finds nobody using the file, checkpoints it and resets the WAL under the
process's connections, whose reads fail ("database disk image is malformed"). The check
that a path is a database, before the first write, read the file's header that way;
SQLite reads it now."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path
from typing import Any

import pytest

import taskwheel
from taskwheel.errors import StoreError


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths this process opens with Python's own ``open`` (io.open, os.open)."""
    seen: list[str] = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def record(path: Any) -> None:
        if isinstance(path, str | bytes | os.PathLike):
            seen.append(os.fsdecode(path))

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        record(file)
        return real_open(file, *args, **kwargs)

    def spy_io_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        record(file)
        return real_io_open(file, *args, **kwargs)

    def spy_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        record(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_io_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return seen


def test_a_process_s_first_write_opens_no_descriptor_of_the_database(
    tmp_path: Path, opened_files: list[str]
) -> None:
    path = tmp_path / "jobs.db"
    app = taskwheel.App(f"sqlite:///{path}", migrate=True)
    app.task(name="ping")(lambda: None)
    app.store.namespaces()  # connections open, reading
    app.enqueue("ping")  # the first write of a fresh store object on an existing file
    second = taskwheel.App(f"sqlite:///{path}")
    second.task(name="ping")(lambda: None)
    second.enqueue("ping")
    second.close()
    app.close()
    assert str(path) not in opened_files  # the -writelock beside it, only
    assert f"{path}-writelock" in opened_files


def test_a_file_that_is_not_a_database_is_still_refused_with_nothing_created(
    tmp_path: Path,
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    app = taskwheel.App(f"sqlite:///{notes}", migrate=True)
    with pytest.raises(StoreError, match="is not a SQLite database"):
        app.store.namespaces()
    app.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
