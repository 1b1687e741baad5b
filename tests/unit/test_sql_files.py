"""The named SQL blocks as the drivers receive them: without the comments written for
the reader, and short enough for psycopg to parse each statement once."""

from __future__ import annotations

import pytest

from taskwheel.stores.sql_files import MAX_STATEMENT_BYTES, load_queries, without_comments


def test_comments_and_indentation_go_and_quoted_dashes_stay() -> None:
    sql = ("-- what it does\n"
           "SELECT '--not a comment', \"a--b\"  -- trailing\n"
           "    FROM t\n"
           "WHERE x = 'it''s -- still\n"
           "   -- inside the literal'\n")
    assert without_comments(sql) == (
        "SELECT '--not a comment', \"a--b\"\n"
        "FROM t\n"
        "WHERE x = 'it''s -- still\n"
        "   -- inside the literal'")


@pytest.mark.parametrize("package", ["taskwheel.stores.postgres", "taskwheel.stores.sqlite"])
def test_every_query_is_short_enough_to_be_parsed_once(package: str) -> None:
    """psycopg reuses a statement's parsed form only below 4 kB of text: a longer claim
    was parsed again at every run (0.15 ms of each job's wait to start)."""
    for name, sql in load_queries(package, "queries.sql").items():
        assert len(sql.encode()) < MAX_STATEMENT_BYTES, name


def test_the_limit_is_psycopgs() -> None:
    from psycopg import _queries

    psycopgs = getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", MAX_STATEMENT_BYTES)
    assert psycopgs >= MAX_STATEMENT_BYTES


def test_the_two_dialects_name_the_same_statements() -> None:
    """One intent, one name, in both queries.sql files (DESIGN.md): the orchestration
    written once calls each by that name. PostgreSQL alone switches its claims to
    generic plans and back, has a claim of ready jobs alone for a claimer whose
    alarm has not rung (its claim_at_once also makes due jobs ready; SQLite's takes
    ready jobs only, and leaves due ones to the claim in steps), and writes a lone
    request without a key by a statement of its own (insert_job: its batches are one
    JSON parameter, SQLite's are rows of plain values, a lone request one of them)."""
    postgres = set(load_queries("taskwheel.stores.postgres", "queries.sql"))
    sqlite = set(load_queries("taskwheel.stores.sqlite", "queries.sql"))
    assert postgres - sqlite == {"generic_plans", "chosen_plans", "claim_ready", "insert_job"}
    assert sqlite - postgres == set()
