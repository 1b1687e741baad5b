"""The dashboard in a real headless Chromium (Debian's, driven by Playwright: nothing
downloads a browser), against a real ``taskwheel server`` and a real ``taskwheel
worker`` on one SQLite file.

One server, one worker and one browser serve the whole module (they take seconds to
start); each test makes the data it looks at, under task arguments of its own. Every
page a test visits is saved as a screenshot under ``tests/.artifacts/dashboard/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskwheel.stores import Store, open_store
from waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / ".artifacts" / "dashboard"
_SCRIPT = Path(sys.executable).with_name("taskwheel")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "taskwheel.cli.main"]

# CI installs chromium (.ci/run) and playwright (the dev extra) and must run these:
# there a missing one fails; elsewhere the tests skip, saying why.
if not os.environ.get("CI"):
    pytest.importorskip("playwright.sync_api",
                        reason="no playwright here (pip install -e '.[dev]')")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
import playwright.sync_api as playwright_api  # noqa: E402 - after the reasons to skip


@dataclass
class Dashboard:
    """The server under test: its URL, its store, its keys, an API client."""

    url: str
    root: Path
    store: Store
    keys: dict[str, str]
    api: httpx.Client

    def enqueue(self, task: str, *args: Any, **options: Any) -> int:
        answer = self.api.post("/jobs", json={"task": task, "args": list(args), **options})
        assert answer.status_code == 201, answer.text
        job_id: int = answer.json()["id"]
        return job_id

    def status(self, job_id: int) -> str:
        return str(self.store.get_job("default", job_id).status.value)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(args: list[str], root: Path, env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
    with (root / log).open("wb") as out:
        return subprocess.Popen([*COMMAND, *args], cwd=root, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    root = tmp_path_factory.mktemp("dashboard")
    shutil.copy(Path(__file__).with_name("browser_app.py"), root / "browser_app.py")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKWHEEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["TASKWHEEL_DATABASE_URL"] = f"sqlite:///{root / 'taskwheel.db'}"

    def run(*args: str) -> str:
        done = subprocess.run([*COMMAND, *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("migrate")
    keys = {role: json.loads(run("keys", "create", "--role", role, "--format", "json"))["key"]
            for role in ("admin", "read")}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(["server", "--app", "browser_app:app", "--port", str(port),
                     "--log-level", "warning"], root, env, "server.log")
    worker = _start(["worker", "--app", "browser_app:app", "--queue", "default",
                     "--queue", "gated", "--queue", "lane", "--concurrency", "4"],
                    root, env, "worker.log")
    store = open_store(env["TASKWHEEL_DATABASE_URL"])
    api = httpx.Client(base_url=f"{url}/api/v1/namespaces/default", timeout=10,
                       headers={"Authorization": f"Bearer {keys['admin']}"})
    try:
        wait_for(lambda: _answers(url), timeout=30, what="the server to listen")
        wait_for(lambda: any(w.alive for w in store.stats("default").workers), timeout=30,
                 what="the worker to register")
        yield Dashboard(url, root, store, keys, api)
    finally:
        api.close()
        for process in (worker, server):
            _stop(process)
        store.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


def signed_in(browser: Any, dashboard: Dashboard, role: str = "admin",
              width: int = 1280) -> Any:
    """A new page (its own cookies) signed in with the key of ``role``, through the
    login form as a person would."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{dashboard.url}/login")
    page.get_by_label("API key").fill(dashboard.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/namespaces/default")
    return page


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
