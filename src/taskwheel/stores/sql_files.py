"""Named SQL blocks in ``.sql`` files: ``-- name: claim_jobs`` starts a block; a block
may hold several statements (`split_statements`)."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str) -> dict[str, str]:
    """Parse ``filename`` in ``package`` into {name: sql}."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} defined twice")
        queries[name] = without_comments(body)
    return queries


# psycopg parses a statement's text once and reuses the result only for a statement
# shorter than this (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH); a test holds every
# query below it.
MAX_STATEMENT_BYTES = 4096


def without_comments(sql: str) -> str:
    """``sql`` without its ``--`` comments (a ``--`` inside a quoted literal or name
    stays), the lines they leave empty and the indentation. These are for the reader of
    the file, not the server: psycopg keeps the parsed form of a statement only below
    4 kB of text (`MAX_STATEMENT_BYTES`), and the claim's comments once took it past
    that, so every claim parsed its statement again."""
    return _LAYOUT.sub(_kept, sql).strip()


# A quoted literal or name (kept whole, whatever it holds), a comment with the blanks
# before it, or a line break with the indentation, empty lines and comment lines after it.
_LAYOUT = re.compile(r"""('[^']*'|"[^"]*")|[ \t]*--[^\n]*|\n(?:[ \t]*(?:--[^\n]*)?\n)*[ \t]*""")


def _kept(match: re.Match[str]) -> str:
    quoted = match.group(1)
    if quoted is not None:
        return quoted
    return "\n" if match.group(0).startswith("\n") else ""


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """The numbered ``NNNN_name.sql`` files of a migrations package, in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files(package).iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    # Numbers are handed out to work done in parallel, so a gap (a migration of work
    # not merged yet) is allowed: a store applies each version it has not recorded. A
    # number used twice is not.
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise ValueError(f"migrations in {package} are not numbered 1, 2, ... once each: "
                         f"{versions}")
    return found


def split_statements(sql: str, *, source: str) -> tuple[str, ...]:
    """The statements of ``sql`` (a block, a migration), each complete: a statement ends
    at the end of a line that completes it (``sqlite3.complete_statement``); the last
    one may leave out its ";". Comments before a statement go with it."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = "".join(part for part in buffer.splitlines(keepends=True)
                   if not part.strip().startswith("--")).strip()
    if rest:
        if not sqlite3.complete_statement(buffer + "\n;"):
            raise ValueError(f"{source}: incomplete SQL statement: {rest[:80]!r}")
        statements.append(buffer.strip())
    if not statements:
        raise ValueError(f"{source}: no statement")
    return tuple(statements)


def load_blocks(package: str, filename: str) -> dict[str, tuple[str, ...]]:
    """The blocks of ``filename`` in ``package`` by name, each split into its statements
    (a dialect whose block may hold several: SQLite)."""
    return {name: split_statements(sql, source=f"{filename}: {name}")
            for name, sql in load_queries(package, filename).items()}
