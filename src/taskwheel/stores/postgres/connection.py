"""Connections to PostgreSQL: the URL and its options, the pool, transactions, the clock.

Pool connections are in autocommit mode: an operation that is one statement is one round
trip and its own transaction. Operations of several statements run in an explicit
transaction, pipelined when the statements do not need each other's results, so that
they cost a round trip or two rather than one per statement (which matters most when
the database is across a network). Every connection's ``search_path`` is the store's
schema, set when it connects (no round trip of its own).

A connection is checked when it leaves the pool, without a round trip: an idle
connection has nothing to say, so one whose socket is readable has been closed or told
that it is being shut down (server restart, ``pg_terminate_backend``); it is discarded
and the next one taken at once, while the pool reconnects in the background with
exponential backoff. A connection that breaks in use fails that operation with
`StoreUnavailable`; its transaction is rolled back (or never committed) and the pool
replaces it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from taskwheel.errors import InvalidInput, StoreError, StoreUnavailable

log = logging.getLogger(__name__)
# The pool logs each failed connection attempt as a warning. Where logging is configured
# (workers, schedulers) that reaches their logs; where it is not (a one-off command), the
# command's own one-line error says it better than the interpreter's fallback printing
# every attempt to stderr.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

DEFAULT_SCHEMA = "taskwheel"
# Lower case, so that the name means the same quoted or not; short enough that the
# wake-up channel built from it ("taskwheel:<schema>") fits PostgreSQL's 63 bytes.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")
# How long a store that has not yet reached its database waits for a connection before
# it checks whether the database can be reached at all.
_FIRST_CONTACT_SLICE = 0.25
# How long a claim waits for the claim connection that no other claim holds: it is
# idle in its pool unless the pool is still making it (then the claim uses the main
# pool). The pool refuses a wait of zero.
_CLAIMS_CONNECTION_WAIT = 0.001

Connection = psycopg.Connection[DictRow]


@dataclass(frozen=True)
class ConnectionSettings:
    """What a store URL says: the libpq connection string, the schema, the pool.

    The URL's own query parameters ``schema``, ``pool_min_size``, ``pool_max_size`` and
    ``pool_timeout`` are taskwheel's (libpq would refuse them) and are taken out; every
    other parameter goes to libpq as it is (``sslmode``, ``connect_timeout``,
    ``application_name``, ``options``...).

    Example:
        >>> s = ConnectionSettings.from_url("postgresql://db/app?schema=jobs&sslmode=require")
        >>> s.conninfo, s.schema
        ('postgresql://db/app?sslmode=require', 'jobs')
    """

    conninfo: str
    schema: str = DEFAULT_SCHEMA
    pool_min_size: int = 1
    # A worker makes one store call at a time and a scheduler too: four leave room for
    # an application's own threads without letting a fleet exhaust max_connections.
    pool_max_size: int = 4
    # How long an operation waits for a connection (the database restarting, say)
    # before it fails with StoreUnavailable.
    pool_timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None) -> ConnectionSettings:
        """Settings from a URL; ``schema``, if given, overrides the URL's."""
        conninfo, options = _take_options(url)
        try:
            conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:
            # libpq's own words name the parameter: 'invalid URI query parameter: "foo"'.
            raise InvalidInput("database_url", f"{_reason(exc)} in {_redacted(url)!r}") from None
        if schema is None and options.get("schema") == "":
            raise InvalidInput("database_url", "?schema= is empty: name a schema, or leave the "
                               f"parameter out for {DEFAULT_SCHEMA!r}")
        chosen = schema if schema is not None else options.get("schema") or DEFAULT_SCHEMA
        if not _SCHEMA_NAME.fullmatch(chosen):
            raise InvalidInput(
                "schema",
                f"{chosen!r} is not a usable schema name (lower-case letters, digits and "
                "underscores, not starting with a digit, at most 48 characters)",
            )
        sizes = {
            name: _positive(options, name, int, default)
            for name, default in (("pool_min_size", cls.pool_min_size),
                                  ("pool_max_size", cls.pool_max_size))
        }
        if sizes["pool_min_size"] > sizes["pool_max_size"]:
            raise InvalidInput("pool_min_size", "must not exceed pool_max_size")
        return cls(
            conninfo=conninfo,
            schema=chosen,
            pool_min_size=sizes["pool_min_size"],
            pool_max_size=sizes["pool_max_size"],
            pool_timeout=_positive(options, "pool_timeout", float, cls.pool_timeout),
        )


_OWN_PARAMETERS = ("schema", "pool_min_size", "pool_max_size", "pool_timeout")


def _take_options(url: str) -> tuple[str, dict[str, str]]:
    """The URL without taskwheel's own query parameters, and those parameters."""
    if "://" not in url:
        return url, {}  # a key=value connection string: nothing of ours in it
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in params if key in _OWN_PARAMETERS}
    # Percent-encoded (quote), not form-encoded: libpq reads a "+" as itself, so a space
    # written as one broke the options parameter ("-c a=1 -c b=2").
    rest = urlencode([(key, value) for key, value in params if key not in _OWN_PARAMETERS],
                     quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), ours


def _redacted(url: str) -> str:
    """``url`` without its password, fit to be shown in an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _positive(options: dict[str, str], name: str, kind: type[Any], default: Any) -> Any:
    if name not in options:
        return default
    try:
        value = kind(options[name])
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise InvalidInput(name, f"must be a number > 0, got {options[name]!r}")
    return value


def advisory_key(schema: str, purpose: str) -> int:
    """A stable 64-bit advisory lock key for ``purpose`` within ``schema``."""
    digest = hashlib.blake2b(f"taskwheel:{schema}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def readable(descriptors: list[int], timeout: float) -> set[int]:
    """The descriptors that become readable within ``timeout`` seconds. ``poll`` where
    there is one: ``select`` fails on descriptors above 1023, which a busy process has."""
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in descriptors:
            poller.register(fd, select.POLLIN)
        return {fd for fd, _ in poller.poll(timeout * 1000)}
    ready, _, _ = select.select(descriptors, [], [], timeout)
    return set(ready)


def _looks_idle(conn: Connection) -> bool:
    """False if a connection about to be handed out is closed or has something to say
    (which, for an idle connection, is the server closing it)."""
    if conn.broken or conn.closed:
        return False
    try:
        return not readable([conn.pgconn.socket], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return False


def _live(pool: ConnectionPool[Connection], conn: Connection) -> Connection | None:
    """``conn``, taken from ``pool``; None if the server closed it while it sat there:
    then it is given back closed (the pool makes a new one in the background)."""
    if _looks_idle(conn):
        return conn
    log.info("discarding a pooled connection the server closed")
    conn.close()
    pool.putconn(conn)
    return None


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Driver errors of ``operation`` as the store's own: `StoreUnavailable` for a
    connection's failures, `StoreError` for the rest."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(operation, _reason(exc)) from exc
    except psycopg.Error as exc:
        raise StoreError(operation, _reason(exc)) from exc


_BEGIN = "BEGIN"
# Several reads that must agree with each other (counts, and the time they were made).
_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


@contextlib.contextmanager
def _pipelined_transaction(conn: Connection, begin: str) -> Iterator[None]:
    """BEGIN, the block's statements and COMMIT in one pipeline sync: one round trip.
    (psycopg's ``transaction()`` syncs a pipeline on the way in and out, costing three.)"""
    committed = False
    try:
        with conn.pipeline():
            conn.execute(begin)
            yield
            conn.execute("COMMIT")
        committed = True
    finally:
        idle = conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
        if not committed and not conn.broken and not idle:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")


class Database:
    """The store's connection pool, and how operations use it."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.schema = settings.schema
        params = conninfo_to_dict(settings.conninfo)
        # The schema rides on the connection's startup packet: no SET round trip. So
        # does a default the URL's own options may override: no parallel plans. The
        # store's statements run on the server beside the jobs' work, and its periodic
        # reads (a /metrics scrape, the dashboard's refresh) took about twice the CPU
        # spread over parallel workers that one process takes alone (a scrape's grouped
        # read: 3 processes of 11 ms against one of 17 ms).
        given = str(params.get("options") or "")
        options = " ".join(part for part in (
            "-c max_parallel_workers_per_gather=0", given,
            f"-c search_path={settings.schema}") if part)
        self.application_name = str(params.get("application_name") or "taskwheel")
        self.conninfo = make_conninfo(
            settings.conninfo, options=options, application_name=self.application_name
        )
        # The claim connection's: the same, planning with generic plans (see `claiming`),
        # and named so in pg_stat_activity, as the LISTEN connection is.
        self._claims_conninfo = make_conninfo(
            self.conninfo, options=f"{options} -c plan_cache_mode=force_generic_plan",
            application_name=f"{self.application_name}:claims"[:63])
        self._claims: ConnectionPool[Connection] | None = None
        self._claims_made = threading.Lock()
        self._claiming = threading.Lock()  # held while a claim has the claim connection
        self.pipelines = psycopg.Pipeline.is_supported()
        self.pool: ConnectionPool[Connection] = ConnectionPool(
            self.conninfo,
            connection_class=psycopg.Connection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.pool_timeout,
            name=f"taskwheel:{settings.schema}",
            open=False,
        )
        # Connections are made in the background: a store opens at once, and its first
        # operation waits for a connection (or fails with the reason it cannot have one).
        self.pool.open(wait=False)
        self._reached = False

    @contextlib.contextmanager
    def connection(self, operation: str, timeout: float | None = None) -> Iterator[Connection]:
        """A live connection from the pool, for statements that commit on their own;
        waiting for one at most ``timeout`` seconds (the pool's timeout by default)."""
        with translated(operation):
            conn = self._take(operation, timeout or self.settings.pool_timeout)
            try:
                yield conn
            finally:
                # A broken connection is discarded here, and replaced in the background.
                self.pool.putconn(conn)

    @contextlib.contextmanager
    def claiming(self, operation: str) -> Iterator[tuple[Connection, bool]]:
        """A connection for one claim statement, and whether it plans with generic plans.

        A process that claims (a worker; the server, for workers that pull over HTTP)
        keeps one connection for its claims, made at its first claim, whose statements
        all run with generic plans: the claim statement's plan is chosen once, and no
        SET and RESET travel with each claim (measured in pairs, a claim of one job
        took 0.79 ms of wall time and 0.30 ms of the client's CPU with them, 0.68 and
        0.23 without). A claim that finds it busy (another thread claiming), not made
        yet or closed by the server takes a connection of the pool instead, which plans
        generically for that statement only (`PostgresExecutor._generic`): a claim
        never waits for the claim connection."""
        pool = self._claims
        if pool is None:
            with self._claims_made:
                if self._claims is None and not self.pool.closed:
                    self._claims = ConnectionPool(
                        self._claims_conninfo,
                        connection_class=psycopg.Connection[DictRow],
                        kwargs={"autocommit": True, "row_factory": dict_row},
                        min_size=1, max_size=1, timeout=self.settings.pool_timeout,
                        name=f"taskwheel-claims:{self.settings.schema}", open=False,
                    )
                    self._claims.open(wait=False)  # made in the background
                pool = self._claims
        conn: Connection | None = None
        if pool is not None and self._claiming.acquire(blocking=False):
            try:
                # Free, then: at once, unless it is still being made.
                conn = _live(pool, pool.getconn(timeout=_CLAIMS_CONNECTION_WAIT))
            except psycopg.OperationalError:  # none in time, or the pool is closed
                conn = None
            finally:
                if conn is None:
                    self._claiming.release()
        if conn is None or pool is None:
            with self.connection(operation) as shared:
                yield shared, False
            return
        try:
            with translated(operation):
                yield conn, True
        finally:
            pool.putconn(conn)
            self._claiming.release()

    @contextlib.contextmanager
    def transaction(
        self, operation: str, *, pipeline: bool = False, snapshot: bool = False
    ) -> Iterator[Connection]:
        """A connection inside one transaction, committed when the block ends.

        With ``pipeline``, the statements are sent without waiting for each other, and
        BEGIN, they and COMMIT travel together: read their results after the block, once
        they have all arrived. (Reading one inside the block works too; it waits for it.)
        With ``snapshot``, a read-only transaction whose statements all see one snapshot.
        """
        begin = _BEGIN_SNAPSHOT if snapshot else _BEGIN
        with self.connection(operation) as conn:
            if pipeline and self.pipelines:
                with _pipelined_transaction(conn, begin):
                    yield conn
            else:
                conn.execute(begin)
                try:
                    yield conn
                except BaseException:
                    if not conn.broken:
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    def _take(self, operation: str, timeout: float) -> Connection:
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                # Until the database has been reached once, wait in short slices: a
                # wrong URL or a server that is down fails at once, with the reason.
                conn = self.pool.getconn(timeout=remaining if self._reached else
                                         min(remaining, _FIRST_CONTACT_SLICE))
            except PoolTimeout as exc:
                if not self._reached and remaining > _FIRST_CONTACT_SLICE:
                    if self.pool.get_stats().get("connections_errors", 0):
                        failure = self._connection_failure(min(remaining, 5.0))
                        if failure is not None:
                            raise _connection_error(operation, failure) from exc
                    continue
                raise _connection_error(operation, self._why_no_connection(timeout)) from exc
            if _live(self.pool, conn) is not None:
                self._reached = True
                return conn
            # Closed by the server while it sat in the pool (`_live` gave it back): take
            # the next, without a pause.

    def _connection_failure(self, timeout: float = 5.0) -> str | None:
        """Why a connection attempt of our own fails, or None when it succeeds."""
        try:
            # libpq takes whole seconds, and at least 2.
            probe = psycopg.connect(self.conninfo, connect_timeout=max(2, round(timeout)))
        except psycopg.Error as exc:
            return f"cannot connect to the database: {_reason(exc)}"
        probe.close()
        return None

    def _why_no_connection(self, timeout: float) -> str:
        """Why the pool had no connection to give within ``timeout``: the database is
        unreachable (say how), or every connection was busy."""
        failure = self._connection_failure(min(timeout, 5.0))
        if failure is not None:
            return failure
        if not self._reached:
            return f"no connection to the database within {timeout:g}s"
        return (
            f"no free connection within {timeout:g}s (all {self.settings.pool_max_size} "
            "of the pool busy; raise pool_max_size?)"
        )

    def connect(self, **kwargs: Any) -> Connection:
        """A connection of its own, outside the pool (for LISTEN)."""
        conn: Connection = psycopg.Connection.connect(
            self.conninfo, autocommit=True, row_factory=dict_row, **kwargs
        )
        return conn

    def close(self) -> None:
        with self._claims_made:  # no claim connection is made after this
            self.pool.close()
            if self._claims is not None:
                self._claims.close()


# What the server answers a connection it will never accept as configured: no such
# database or role, a wrong password, no pg_hba.conf entry. Waiting does not help (unlike
# a server starting up, shutting down or out of connection slots), so these are
# `StoreError`, which a worker or scheduler reports at once instead of retrying.
_CONFIGURATION_ERRORS = re.compile(
    r'database ".*" does not exist|role ".*" does not exist|authentication failed|'
    r"no pg_hba\.conf entry|permission denied for database|no password supplied|"
    r"is not permitted to log in"
)


def _connection_error(operation: str, failure: str) -> StoreError:
    """The error for a connection that failed so: `StoreError` for a configuration
    error, `StoreUnavailable` (worth waiting out) otherwise."""
    if _CONFIGURATION_ERRORS.search(failure):
        return StoreError(operation, failure)
    return StoreUnavailable(operation, failure)


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (libpq repeats itself over several)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(exc).__name__


class DatabaseClock:
    """The database's clock as seen from this host: the local wall clock corrected by its
    offset from the database's, measured on first use and again every ``refresh``
    seconds in the background, so that reading the time never waits for the database
    (workers read it on their event loop).

    Time judgements (due, expired, lease lost) are made by the database's own clock in
    SQL; this estimate serves the callers of `Store.now` (how long to sleep, which fire
    times are due), for whom a millisecond of error is nothing and a round trip per call
    would be a waste. Until the database has been reached, the local clock stands in.
    """

    def __init__(self, database: Database, query: str, refresh: float = 60.0) -> None:
        self._database = database
        self._query = query
        self._refresh = refresh
        self._offset: float | None = None
        self._measured_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def now(self) -> float:
        local = time.time()
        if self._offset is None and self._measured_at == 0.0:
            with self._lock:
                if self._offset is None and self._measured_at == 0.0:
                    self._measure()  # the first time, in the caller's thread
        elif local - self._measured_at > self._refresh and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._measure, daemon=True, name="taskwheel-clock").start()
        return time.time() + (self._offset or 0.0)

    def _measure(self) -> None:
        try:
            # Never long: the first measurement is made in the caller's thread.
            with self._database.connection("now", timeout=1.0) as conn:
                before = time.time()
                row = conn.execute(self._query).fetchone()
                after = time.time()
            assert row is not None
            self._offset = float(row["now"]) - (before + after) / 2
        except StoreUnavailable as exc:
            # Keep the last offset, or the local clock (clocks drift by far less than a
            # refresh period); try again a refresh period later.
            log.warning("could not read the database clock (%s); trying again in %gs",
                        exc, self._refresh)
        finally:
            self._measured_at = time.time()
            self._refreshing = False
