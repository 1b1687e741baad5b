"""Where a benchmark measures: a temporary folder for its files and logs, a database of
its own (a fresh SQLite file there, or a fresh schema on a PostgreSQL server, dropped
afterwards), and the benchmark app pointed at it. Every run also works in namespaces of
its own (``bench-<random>-<phase>``), so a database that holds other jobs is left
untouched.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from taskwheel.bench.app import app
from taskwheel.stores import Store


@contextlib.contextmanager
def temporary_workdir() -> Iterator[Path]:
    """A fresh folder for the run's SQLite files and process logs, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="taskwheel-bench-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_database(
    database_url: str | None, postgres: bool, workdir: Path, token: str
) -> tuple[str, bool]:
    """The URL the core benchmark measures on, and whether it names a schema to drop
    afterwards: ``database_url`` as given, or a file in ``workdir`` for SQLite without
    one; on PostgreSQL a fresh schema unless the URL names one (``?schema=``)."""
    if not postgres:
        return database_url or f"sqlite:///{workdir / 'bench.db'}", False
    assert database_url is not None
    params = parse_qsl(urlsplit(database_url).query, keep_blank_values=True)
    if any(key == "schema" for key, _ in params):
        return database_url, False
    return _with_schema(database_url, f"taskwheel_bench_{token}"), True


def fresh_database(
    workdir: Path, phase: str, postgres_url: str | None
) -> tuple[str, str, bool]:
    """A new database for one phase of a benchmark (a SQLite file in ``workdir`` when
    ``postgres_url`` is None, else a new schema on that server), a namespace of the
    phase's own, and whether the database is a schema to drop afterwards."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}-{phase}"
    if postgres_url is None:
        return f"sqlite:///{workdir / f'{phase}.db'}", namespace, False
    schema = f"taskwheel_bench_{uuid.uuid4().hex[:8]}_{phase}"
    return _with_schema(postgres_url, schema), namespace, True


def _with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` instead of any schema it named."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    params.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(params)))


def open_app(
    stack: contextlib.ExitStack, url: str, namespace: str, throwaway: bool = False
) -> Store:
    """Point the benchmark app at the run's database; its store, opened and migrated
    here, outside every timing. The app is closed when ``stack`` unwinds, and a
    throwaway schema dropped once the processes entered on ``stack`` after this call
    have stopped."""
    app.close()
    app.configure(database_url=url, namespace=namespace)
    stack.callback(app.close)
    store = app.store
    if throwaway:
        stack.callback(drop_schema, store)
    return store


def drop_schema(store: Store) -> None:
    from taskwheel.stores.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        store.drop_schema()
