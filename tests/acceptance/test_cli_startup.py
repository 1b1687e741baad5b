"""The command line loads the benchmarks only for ``taskwheel bench``: any other command
starts without them (about a fifth of its start-up), and a configuration file is still
checked against every command, ``bench`` included. What draws tables (rich) and what
sends HTTP requests (http.client, urllib.request) is loaded only by a command that
uses it: a worker or a scheduler process, which never draws, is 4 MB smaller without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs one command in a fresh interpreter and prints what it loaded.
_PROBE = """
import sys
from taskwheel.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("bench loaded:", "taskwheel.bench.core" in sys.modules, "exit:", code)
print("commands loaded:", sorted(m.removeprefix("taskwheel.cli.") for m in sys.modules
                                 if m.removeprefix("taskwheel.cli.") in COMMAND_MODULES))
print("drawing and HTTP:", sorted(m for m in ("rich", "http.client", "urllib.request")
                                  if m in sys.modules))
"""
# The modules of the commands (the rest of taskwheel.cli is what they share; main reads
# the configuration file and answers completion itself, so config and completion too).
_COMMAND_MODULES = ("admin", "alerts", "bench", "fairness", "jobs", "keys", "limits",
                    "queues", "scheduler", "schedules", "server", "tail", "webhooks",
                    "worker", "workflows")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    probe = f"COMMAND_MODULES = {_COMMAND_MODULES!r}\n{_PROBE}"
    return subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)


def _probe(tmp_path: Path, *args: str) -> str:
    done = _run(tmp_path, *args)
    return done.stdout.strip().splitlines()[-3] + " | " + done.stderr.strip()


def _commands(tmp_path: Path, *args: str) -> str:
    done = _run(tmp_path, *args)
    assert "exit: 0" in done.stdout, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-2].removeprefix("commands loaded: ")


def _loaded(tmp_path: Path, *args: str) -> str:
    done = _run(tmp_path, *args)
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


def test_a_command_loads_its_own_module_and_no_other_command_s(tmp_path: Path) -> None:
    """A scheduler or a worker process holds its own command's modules only (the other
    commands' are about 2 MB of a scheduler's 36); a configuration file, checked
    against every command, loads them all."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert _commands(tmp_path, "migrate", "--database-url", url) == "['admin']"
    assert _commands(tmp_path, "worker", "--app", "taskwheel.bench.app:app", "--burst",
                     "--database-url", url) == "['worker']"
    assert _commands(tmp_path, "jobs", "list", "--database-url", url) == "['jobs', 'tail']"
    (tmp_path / "taskwheel.toml").write_text("[jobs.list]\nlimit = 5\n")
    assert _commands(tmp_path, "migrate", "--database-url", url) == repr(
        sorted(_COMMAND_MODULES))
