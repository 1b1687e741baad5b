"""The real ``taskwheel`` command on PostgreSQL: ``migrate`` creates the schema the URL
names, every command takes a PostgreSQL URL, an unreachable server is one clear line,
and ``bench --store postgres`` prints its figures and leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from pg_server import postgres_url, with_schema

_SCRIPT = Path(sys.executable).with_name("taskwheel")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "taskwheel.cli.main"]


def taskwheel(*args: str, url: str | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWHEEL_")}
    if url is not None:
        env["TASKWHEEL_DATABASE_URL"] = url
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def tables_in(admin: psycopg.Connection[tuple[Any, ...]], schema: str) -> set[str]:
    return {row[0] for row in admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}


def test_migrate_creates_the_schema_the_url_names_once(
    schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    url = with_schema(postgres_url(), schema)

    first = taskwheel("migrate", "--database-url", url, "--format", "json")
    again = taskwheel("migrate", "--format", "json", url=url)  # from the environment

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "applied": ["0001_initial.sql", "0002_schedules.sql", "0003_workflows.sql",
                    "0004_due_wakeups.sql", "0005_schedule_owner.sql",
                    "0006_api_keys_and_quotas.sql", "0007_webhooks.sql",
                    "0008_dispatch_control.sql", "0009_observability.sql",
                    "0010_prunable.sql", "0011_prune_by_status.sql", "0012_key_gates.sql",
                    "0013_fair_shares.sql", "0014_rate_limits.sql",
                    "0015_key_room.sql", "0016_namespace_shares.sql",
                    "0017_caps_reserves_failure_rates.sql",
                    "0018_slots_released_by_report.sql",
                    "0019_ready_jobs_whatever_the_statistics.sql",
                    "0020_admission_by_statement.sql",
                    "0021_pauses_probed_by_key.sql"],
        "schema_version": 21,
    }
    assert json.loads(again.stdout) == {"applied": [], "schema_version": 21}
    assert {"jobs", "attempts", "workers", "leases", "schedules", "migrations", "api_keys",
            "quotas"} <= tables_in(
        admin, schema)
    assert "jobs" not in tables_in(admin, "public")


def test_commands_work_on_a_postgres_url(schema: str) -> None:
    url = with_schema(postgres_url(), schema)
    assert taskwheel("migrate", url=url).returncode == 0

    stats = taskwheel("stats", "--format", "json", url=url)

    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["queues"] == []


def test_a_command_on_an_unmigrated_schema_is_one_line_and_creates_nothing(
    schema: str, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    url = with_schema(postgres_url(), schema)

    done = taskwheel("jobs", "list", url=url)

    assert done.returncode == 1
    assert done.stderr == ("error: postgres store: open failed: the database has no "
                           "taskwheel schema yet: run `taskwheel migrate`\n")
    assert admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                         (schema,)).fetchone() == (0,)


def test_an_unreachable_server_is_one_clear_line_and_exit_code_1() -> None:
    done = taskwheel("migrate", "--database-url", "postgresql://postgres@127.0.0.1:1/test")

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "cannot connect to the database" in line
    assert "127.0.0.1" in line


def test_bench_on_postgres_prints_every_figure_and_drops_its_schema(
    admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    done = taskwheel(
        "bench", "--store", "postgres", "--database-url", postgres_url(), "--jobs", "300",
        "--single-jobs", "50", "--latency-jobs", "20", "--latency-rate", "200", "--quiet",
        "--format", "json", timeout=120,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for rate in ("enqueue_single_per_s", "enqueue_batch_per_s", "drain_per_s"):
        assert result[rate] > 0, rate
    assert result["latency_ms"]["count"] == 20
    assert result["details"]["drain"]["jobs"] == 300
    store = result["settings"]["store"]
    assert store["kind"] == "postgres"
    for setting in ("synchronous_commit", "server_version", "pool_min_size", "pool_max_size"):
        assert setting in store, setting
    assert store["schema_dropped_afterwards"] is True
    assert admin.execute("SELECT to_regnamespace(%s)", (store["schema"],)).fetchone() == (None,)


def test_bench_refuses_postgres_without_a_server_url() -> None:
    done = taskwheel("bench", "--store", "postgres", "--jobs", "10")

    assert done.returncode == 2
    assert "--database-url" in done.stderr
