"""Shell completion: the script ``taskwheel completion bash`` prints, sourced into a real
bash and run as bash runs it on TAB, offers the commands, options and choices that fit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import COMMAND

# CI has bash and must run these: there a missing one fails rather than skips.
pytestmark = pytest.mark.skipif(shutil.which("bash") is None and not os.environ.get("CI"),
                                reason="no bash here (apt-get install bash)")


def complete(words: list[str], tmp_path: Path) -> list[str]:
    """What bash offers for the last of ``words`` (COMPREPLY after the completion
    function runs, as bash calls it on TAB)."""
    script = subprocess.run([*COMMAND, "completion", "bash"], capture_output=True, text=True,
                            check=True, cwd=tmp_path).stdout
    (tmp_path / "taskwheel-completion.bash").write_text(script)
    line = " ".join(words)
    driver = (
        "source ./taskwheel-completion.bash\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        "_taskwheel_completion taskwheel\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    bin_dir = str(Path(COMMAND[0]).parent if len(COMMAND) == 1 else Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, env=env,
                          cwd=tmp_path, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completes_a_partial_command_an_option_and_a_choice(tmp_path: Path) -> None:
    assert complete(["taskwheel", "jo"], tmp_path) == ["jobs"]
    assert sorted(complete(["taskwheel", "jobs", "''"], tmp_path)) == [
        "cancel", "delete", "explain", "list", "retry", "show", "tail"]
    assert complete(["taskwheel", "jobs", "list", "--sta"], tmp_path) == ["--status"]
    assert complete(["taskwheel", "jobs", "list", "--format", "c"], tmp_path) == ["csv"]
    assert complete(["taskwheel", "completion", "''"], tmp_path) == ["bash", "zsh", "fish"]


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _taskwheel_completion taskwheel"),
    ("zsh", "#compdef taskwheel"),
    ("fish", "complete --no-files --command taskwheel"),
])
def test_each_shell_gets_its_own_script(tmp_path: Path, shell: str, marker: str) -> None:
    done = subprocess.run([*COMMAND, "completion", shell], capture_output=True, text=True,
                          check=False, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    assert "_TASKWHEEL_COMPLETE" in done.stdout
