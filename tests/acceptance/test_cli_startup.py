"""The command line loads the benchmarks only for ``taskwheel bench``: any other command
starts without them (about a fifth of its start-up), and a configuration file is still
checked against every command, ``bench`` included. What draws tables (rich) and what
sends HTTP requests (http.client, urllib.request) is loaded only by a command that
uses it: a worker or a scheduler process, which never draws, is 4 MB smaller without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs one command in a fresh interpreter and prints whether the benchmarks were loaded.
_PROBE = """
import sys
from taskwheel.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("bench loaded:", "taskwheel.bench.core" in sys.modules, "exit:", code)
print("drawing and HTTP:", sorted(m for m in ("rich", "http.client", "urllib.request")
                                  if m in sys.modules))
"""


def _probe(tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip().splitlines()[-2] + " | " + done.stderr.strip()


def _loaded(tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert "exit: 0" in done.stdout, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1].removeprefix("drawing and HTTP: ")


def test_a_command_other_than_bench_starts_without_the_benchmarks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert _probe(tmp_path, "migrate", "--database-url", url).startswith(
        "bench loaded: False exit: 0")
    assert _probe(tmp_path, "jobs", "list", "--database-url", url).startswith(
        "bench loaded: False exit: 0")
    assert _probe(tmp_path, "bench", "--help").startswith("bench loaded: True exit: 0")


def test_a_configuration_file_is_checked_against_the_bench_command_too(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert _probe(tmp_path, "migrate", "--database-url", url).endswith("| ")
    (tmp_path / "taskwheel.toml").write_text("[bench]\njobs = 10\n")
    assert _probe(tmp_path, "jobs", "list", "--database-url", url).startswith(
        "bench loaded: True exit: 0")

    (tmp_path / "taskwheel.toml").write_text("[bench]\njbos = 10\n")
    refused = _probe(tmp_path, "jobs", "list", "--database-url", url)
    assert refused.startswith("bench loaded: True exit: 2"), refused
    assert "jbos" in refused


def test_a_worker_and_a_json_listing_load_neither_tables_nor_an_http_client(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    _probe(tmp_path, "migrate", "--database-url", url)
    assert _loaded(tmp_path, "worker", "--app", "taskwheel.bench.app:app", "--burst",
                   "--database-url", url) == "[]"
    assert _loaded(tmp_path, "jobs", "list", "--format", "json", "--database-url", url) == "[]"
    # The probe sees a table being drawn: the same listing as a table loads rich.
    assert _loaded(tmp_path, "jobs", "list", "--database-url", url) == "['rich']"
