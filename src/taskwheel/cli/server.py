"""``taskwheel server``: the HTTP API (the ``server`` extra: FastAPI and uvicorn)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import click

from taskwheel.app import App
from taskwheel.cli.options import Target, app_option, common_options
from taskwheel.errors import InvalidInput

# How long a stopping server waits for open requests (a long-poll claim, a dashboard's
# live stream, which would otherwise hold it open) before it closes them.
SHUTDOWN_GRACE = 5


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default: put a proxy with TLS in "
              "front to serve others).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=1_048_576,
              show_default=True, help="Largest request body accepted (413 beyond).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info",
                                                 "debug"]), default="info", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes sharing the port (each its own event loop and "
              "connections; they act as one).")
@app_option
@common_options
def server(
    target: Target, *, host: str, port: int, max_body_bytes: int, log_level: str,
    workers: int, app_spec: str,
) -> None:
    """Serve the web dashboard at / and the REST API under /api/v1 (OpenAPI at
    /openapi.json, docs at /docs) for every namespace, checking requests against the
    app's tasks. Keys come from ``taskwheel keys create``."""
    try:
        import uvicorn

        from taskwheel.server import ServerSettings, create_app, process
    except ImportError as exc:
        raise InvalidInput("app", f"the server needs its extra: pip install "
                           f"'taskwheel[server]' ({exc})") from None
    if target.namespace is not None:
        raise InvalidInput("namespace", "the server serves every namespace: each request "
                           "names its own")
    app = target.load(app_spec)
    try:
        settings = ServerSettings(max_body_bytes=max_body_bytes)
        app.store.check_schema()  # a database behind the code says so here, once
        if workers == 1:
            served = create_app(app.store, app, settings)
            process.settle_heap()
            uvicorn.run(served, host=host, port=port, log_level=log_level,
                        timeout_graceful_shutdown=SHUTDOWN_GRACE)
            return
        # Each process builds its own API (`taskwheel.server.process`) from these.
        os.environ.update({process.APP: app_spec, process.DATABASE_URL: app.database_url,
                           process.MAX_BODY_BYTES: str(settings.max_body_bytes)})
        uvicorn.run("taskwheel.server.process:api", factory=True, workers=workers,
                    host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=SHUTDOWN_GRACE)
    finally:
        app.close()


def serve_in_thread(app: App, host: str, port: int, log_level: str) -> Callable[[], None]:
    """The API on a thread of this process (``taskwheel dev``); returns how to stop it.
    Without the server extra, nothing is served and a line says why."""
    try:
        import uvicorn

        from taskwheel.server import create_app
    except ImportError as exc:
        click.echo(f"dev: no HTTP server (pip install 'taskwheel[server]': {exc})", err=True)
        return lambda: None
    # A namespace of the app's is not the server's: each request names its own.
    config = uvicorn.Config(create_app(app.store, app), host=host, port=port,
                            log_level=log_level.lower(), lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE)
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, name="taskwheel-server", daemon=True)
    thread.start()
    click.echo(f"dev: dashboard at http://{host}:{port}/, API at /api/v1 (docs at /docs)",
               err=True)

    def stop() -> None:
        served.should_exit = True
        thread.join(timeout=10)

    return stop
