"""Nothing is created by a typo: a URL without a scheme, with parameters its store does
not know or with an empty schema is refused naming the part; every command but
``migrate`` on a database that was never migrated says so in one line and creates
nothing (no file, no schema)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pg_server import drop_schema, new_schema_name, postgres_url, with_schema
from taskwheel.errors import InvalidInput
from taskwheel.stores import open_store

from .command_line import APP, taskwheel


@contextlib.contextmanager
def missing_database(backend: str, directory: Path) -> Iterator[tuple[str, object]]:
    """A URL naming a database nobody migrated, and a probe saying whether it exists."""
    if backend == "sqlite":
        path = directory / "missing.db"
        yield f"sqlite:///{path}", path.exists
        return
    schema = new_schema_name()
    try:
        def exists() -> bool:
            with psycopg.connect(postgres_url()) as conn:
                return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                    (schema,)).fetchone() is not None
        yield with_schema(postgres_url(), schema), exists
    finally:
        drop_schema(schema)


@pytest.mark.parametrize("command", [
    ("jobs", "list"), ("jobs", "show", "1"), ("stats",), ("dlq", "list"),
    ("schedules", "list"), ("workflows", "list"), ("enqueue", "send", "--app", APP),
])
def test_a_command_on_a_database_never_migrated_says_so_and_creates_nothing(
    backend: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    with missing_database(backend, tmp_path) as (url, exists):
        line = taskwheel(*command, url=url).refused()

        assert line.endswith("the database has no taskwheel schema yet: run `taskwheel migrate`")
        assert not exists()  # type: ignore[operator]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_only_migrate_creates_the_database(backend: str, tmp_path: Path) -> None:
    with missing_database(backend, tmp_path) as (url, exists):
        assert taskwheel("migrate", url=url).exit_code == 0
        assert exists()  # type: ignore[operator]
        assert taskwheel("jobs", "list", "--format", "json", url=url).json() == []


def test_a_url_without_a_scheme_is_refused_and_creates_no_file(tmp_path: Path) -> None:
    line = taskwheel("enqueue", "send", "--app", APP, url="foo", cwd=tmp_path).refused()
    migrate = taskwheel("migrate", url="foo", cwd=tmp_path).refused()

    assert line == migrate
    assert line.startswith("--database-url: no scheme in 'foo' (use sqlite:///foo")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidInput, match="database_url: no scheme"):
        open_store(str(tmp_path / "jobs.db"))


@pytest.mark.parametrize("url", ["sqlite:///bad.db?mode=ro", "sqlite:///bad.db#x"])
def test_a_sqlite_url_with_parameters_is_refused_rather_than_made_a_file_name(
    tmp_path: Path, url: str
) -> None:
    line = taskwheel("migrate", url=url, cwd=tmp_path).refused()

    assert line.startswith("--database-url: a SQLite URL takes no ")
    assert "'bad.db" in line
    assert list(tmp_path.iterdir()) == []


def test_a_postgres_url_with_a_parameter_libpq_does_not_know_is_refused_naming_it() -> None:
    url = with_schema(postgres_url(), "taskwheel_test_nothing") + "&colour=blue"

    line = taskwheel("migrate", url=url).refused()

    assert line.startswith('--database-url: invalid URI query parameter: "colour"')


def test_a_password_in_a_refused_url_is_not_shown() -> None:
    line = taskwheel("jobs", "list", url="postgresql://me:hunter2@localhost/db?colour=1").refused()

    assert "hunter2" not in line
    assert "me:***@localhost" in line


def test_an_empty_schema_in_a_postgres_url_is_refused_not_read_as_the_default() -> None:
    line = taskwheel("migrate", url=with_schema(postgres_url(), "")).refused()

    assert line.startswith("--database-url: ?schema= is empty")


def test_a_path_naming_a_directory_or_another_kind_of_file_creates_nothing_beside_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")

    folder = taskwheel("migrate", url=f"sqlite:///{tmp_path / 'folder'}").refused()
    notes = taskwheel("migrate", url=f"sqlite:///{tmp_path / 'notes.txt'}").refused()

    assert folder.endswith(f"{tmp_path / 'folder'} is a directory, not a database file")
    assert notes.endswith(f"{tmp_path / 'notes.txt'} is not a SQLite database")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]
    assert list((tmp_path / "folder").iterdir()) == []
