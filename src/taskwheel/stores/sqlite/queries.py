"""The named blocks of ``queries.sql``, each split once into its statements, and what
runs them.

Where the PostgreSQL store writes several tables in one statement (an INSERT inside a
WITH), SQLite cannot: its block for the same name holds several statements, which the
executor runs in turn inside its one write transaction (see the top of queries.sql).
`Statements` is the part of the executor that runs blocks; everything that reads a
block's answer is in the executor itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskwheel.stores.sql_files import load_queries

Params = Mapping[str, Any] | Sequence[Any]


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


def load_blocks(filename: str) -> dict[str, tuple[str, ...]]:
    """The blocks of ``filename`` (in this package) by name, each as its statements."""
    return {name: split_statements(sql, source=f"{filename}: {name}")
            for name, sql in load_queries(__package__ or __name__, filename).items()}


Q = load_blocks("queries.sql")


def statement(name: str) -> str:
    """The statement of the block ``name``, which holds one."""
    (only,) = Q[name]
    return only


@dataclass(frozen=True, slots=True)
class Result:
    """What one statement of a block answered: its rows (all of them, read before the
    next statement runs), the rows it wrote (-1 for a query) and the id it inserted."""

    rows: list[sqlite3.Row]
    count: int
    last_id: int | None


class Statements:
    """Runs the blocks of queries.sql on the connection the executor supplies."""

    def _c(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _execute(self, name: str, params: Params = ()) -> sqlite3.Cursor:
        """The block ``name``, which holds one statement."""
        return self._c().execute(statement(name), params)

    def _run(self, name: str, params: Params) -> list[Result]:
        """Every statement of the block ``name`` in turn, each with ``params``, each read
        to its end before the next one runs."""
        conn = self._c()
        results: list[Result] = []
        for sql in Q[name]:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall()
            results.append(Result(rows, cursor.rowcount, cursor.lastrowid))
        return results
