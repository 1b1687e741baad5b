"""The documentation site builds without a warning, and every code block in it works as
written.

Each page of ``docs/`` is read as a reader follows it, top to bottom, in a project of its
own (a directory with its own SQLite file, like the README's test):

- a ``python`` block whose first line is ``# <name>.py`` is a module, written to that
  file; any other ``python`` block runs in a fresh Python process;
- a ``sh`` block's commands run one by one with the real ``taskwheel``; a command whose
  comment says ``keeps running`` (a worker, a scheduler, a server) is started in the
  background and killed when the page ends; ``export NAME=value`` sets the variable for
  the rest of the page;
- a block preceded by an HTML comment ``<!-- test: ... -->`` is handled as it says:
  ``config NAME`` (a file that is configuration, not a command: written as NAME and
  validated by its language: a systemd unit, a Dockerfile, YAML, TOML); ``drawing`` (a
  figure drawn in text: checked to fit the page); ``skip REASON``
  (a command that cannot run here, such as ``pip install`` or ``systemctl``: shell is
  checked with ``bash -n``, Python compiled); ``postgres`` (the block, and the rest of the
  page, run on a PostgreSQL schema of the test server: the block's ``postgresql://`` URL
  is replaced by that schema's);
- ``http://127.0.0.1:8080`` and ``--port 8080`` are moved to a free port.

A block in any other language, or with an unknown marker, fails the test: every block is
either run or validated.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from waiting import wait_for

from .conftest import COMMAND, Project, running_project
from .test_readme import free_port, listening

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
_BLOCK = re.compile(
    r"(?:^<!-- test: (?P<marker>[^>]*?) -->\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
_MODULE = re.compile(r"# (\w+\.py)\n")
_BACKGROUND_LOG = "background-"
_POSTGRES_URL = re.compile(r"postgresql://[^\s'\"]+")
_SYSTEMD_SECTIONS = {"Unit", "Service", "Install", "Timer", "Socket"}
_DOCKER_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    marker: str
    body: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.language or 'plain'})"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, text.count("\n", 0, found.start("lang")) + 1, found["lang"],
                  (found["marker"] or "").strip(), found["body"])
            for found in _BLOCK.finditer(text)]


def command_lines(body: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments and blanks dropped
    (a comment's text is kept after ``  #`` so ``keeps running`` can be read)."""
    joined = body.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


class Reader:
    """Follows one page in its project: runs its commands and scripts in order."""

    def __init__(self, project: Project, stack: contextlib.ExitStack) -> None:
        self.project = project
        self.stack = stack
        self.port = str(free_port())
        bin_dir = str(Path(sys.executable).parent)
        project.env["PATH"] = os.pathsep.join([bin_dir, project.env.get("PATH", "")])
        self.postgres_url: str | None = None

    def localise(self, text: str) -> str:
        text = text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")
        text = text.replace("--port 8080", f"--port {self.port}")
        if self.postgres_url is not None:
            text = _POSTGRES_URL.sub(self.postgres_url, text)
        return text

    def follow(self, block: Block) -> None:
        kind, _, argument = block.marker.partition(" ")
        if kind == "postgres":
            self.postgres_url = self.stack.enter_context(postgres_schema())
            kind = ""
        if kind == "config":
            validate_config(block, self.project.root / argument)
        elif kind == "drawing":  # a figure in text, not code: it must fit the page
            assert block.body.strip(), f"{block}: an empty drawing"
            assert "\t" not in block.body, f"{block}: tabs in a drawing"
            assert max(map(len, block.body.splitlines())) <= 100, f"{block}: too wide"
        elif kind == "skip":
            assert argument, f"{block}: say why it is skipped"
            check_syntax(block)
        elif kind:
            pytest.fail(f"{block}: unknown marker {block.marker!r}")
        elif block.language == "python":
            self.python(block)
        elif block.language == "sh":
            for line in command_lines(self.localise(block.body)):
                self.shell(block, line)
        else:
            pytest.fail(f"{block}: a {block.language or 'plain'} block is neither run nor "
                        "validated: mark it <!-- test: config NAME --> or skip it")

    def python(self, block: Block) -> None:
        body = self.localise(block.body)
        named = _MODULE.match(body)
        if named:
            (self.project.root / named.group(1)).write_text(body, encoding="utf-8")
            return
        done = subprocess.run([sys.executable, "-c", body], cwd=self.project.root,
                              env=self.project.env, capture_output=True, text=True,
                              timeout=45, check=False)
        assert done.returncode == 0, f"{block}\n{body}\n---\n{done.stdout}\n{done.stderr}"

    def shell(self, block: Block, line: str) -> None:
        command, _, comment = line.partition("  #")
        command = command.strip()
        exported = re.fullmatch(r"export (\w+)=(.*)", command)
        if exported:
            name, value = exported.groups()
            if value.startswith("$(") and value.endswith(")"):  # a command's output
                value = self.output(block, value[2:-1])
            else:
                [value] = shlex.split(value)
            self.project.env[name] = value
            return
        words = shlex.split(command)
        if "keeps running" in comment:
            self.stack.enter_context(background(self.project, words))
        else:
            self.output(block, command)

    def output(self, block: Block, command: str) -> str:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command],
                              cwd=self.project.root, env=self.project.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{block}: {command}\n{done.stdout}\n{done.stderr}"
        return done.stdout.strip()


@contextlib.contextmanager
def background(project: Project, words: list[str]) -> Iterator[None]:
    """A long-running ``taskwheel`` command of the page, killed when the page ends."""
    assert words[0] == "taskwheel", words
    log = project.root / f"{_BACKGROUND_LOG}{free_port()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*COMMAND, *words[1:]], cwd=project.root, env=project.env,
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if words[1] == "server":  # what follows talks to it
            port = int(words[words.index("--port") + 1])
            wait_for(lambda: listening(port) or process.poll() is not None, timeout=30,
                     what="the server to listen")
            assert process.poll() is None, log.read_text(errors="replace")
        yield
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        print(f"---- {shlex.join(words)} ----\n{log.read_text(errors='replace')[-12000:]}")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    from pg_server import drop_schema, new_schema_name, postgres_url, with_schema

    schema = new_schema_name()
    try:
        yield with_schema(postgres_url(), schema)
    finally:
        drop_schema(schema)


def check_syntax(block: Block) -> None:
    if block.language == "sh":
        done = subprocess.run(["bash", "-n"], input=block.body, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, f"{block}: {done.stderr}"
    elif block.language == "python":
        compile(block.body, str(block), "exec")
    else:
        pytest.fail(f"{block}: only shell and Python blocks can be skipped")


def validate_config(block: Block, path: Path) -> None:
    """Write the configuration file and check it as its program would read it."""
    assert path.name, f"{block}: a config block names its file"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.body, encoding="utf-8")
    if block.language == "ini":  # a systemd unit
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string(block.body)
        assert set(unit.sections()) <= _SYSTEMD_SECTIONS, f"{block}: {unit.sections()}"
        if unit.has_section("Service"):
            start = unit["Service"]["ExecStart"]
            check_taskwheel_command(block, shlex.split(start))
    elif block.language == "dockerfile":
        lines = block.body.replace("\\\n", " ").splitlines()
        for line in filter(None, (line.strip() for line in lines)):
            if not line.startswith("#"):
                assert line.split()[0] in _DOCKER_INSTRUCTIONS, f"{block}: {line}"
    elif block.language == "yaml":
        document = yaml.safe_load(block.body)
        for service in (document.get("services") or {}).values():
            if "command" in service:
                check_taskwheel_command(block, ["taskwheel", *service["command"]])
    elif block.language == "toml":
        tomllib.loads(block.body)
    else:
        pytest.fail(f"{block}: no validator for {block.language or 'plain'} configuration")


def check_taskwheel_command(block: Block, words: list[str]) -> None:
    """A command a unit or a container runs: the real ``taskwheel`` must know it (its
    ``--help`` parses the same options, so an unknown one is refused)."""
    if Path(words[0]).name != "taskwheel":
        return
    done = subprocess.run([*COMMAND, *words[1:], "--help"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, f"{block}: {shlex.join(words)}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_every_code_block_of_the_page_works_as_written(page: Path, tmp_path: Path) -> None:
    with running_project(tmp_path, migrated=False) as project, \
            contextlib.ExitStack() as stack:
        reader = Reader(project, stack)
        for block in blocks(page):
            reader.follow(block)


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert (tmp_path / "site" / "reference" / "app" / "index.html").exists()

