"""The command line loads the benchmarks only for ``taskwheel bench``: any other command
starts without them (about a fifth of its start-up), and a configuration file is still
checked against every command, ``bench`` included."""

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
"""


def _probe(tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip().splitlines()[-1] + " | " + done.stderr.strip()


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
