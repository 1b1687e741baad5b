"""Signups that send a welcome email through taskwheel, as a plain WSGI application and
as a plain ASGI one (no framework): ``POST /signups?email=...``.

The welcome job is enqueued in the request's own transaction, with the signup row: a
signup that fails (the address is taken) leaves no job behind.

    taskwheel migrate
    gunicorn plain_signups:wsgi_app            # or: uvicorn plain_signups:asgi_app
    taskwheel worker --app plain_signups:jobs

The database is ``$TASKWHEEL_DATABASE_URL`` (a SQLite file: the signups table lives in
the same file as taskwheel's tables).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import taskwheel
from taskwheel.integrations.asgi import Receive, Scope, Send, TaskwheelLifespan
from taskwheel.stores import sqlite_path

jobs = taskwheel.App(name="plain-signups")


@jobs.task
def send_welcome(email: str) -> str:
    return f"welcome sent to {email}"


def sign_up(query: str) -> tuple[int, dict[str, Any]]:
    """The signup, whatever the server: its status and JSON body."""
    email = parse_qs(query).get("email", [""])[0]
    if "@" not in email:
        return 400, {"error": "email: give an address"}
    conn = sqlite3.connect(sqlite_path(jobs.database_url), isolation_level="IMMEDIATE")
    try:
        with conn:  # commits the signup and its job together, or neither
            conn.execute("CREATE TABLE IF NOT EXISTS signups (email TEXT PRIMARY KEY)")
            welcome = send_welcome.enqueue(email, using=conn)
            conn.execute("INSERT INTO signups (email) VALUES (?)", [email])
    except sqlite3.IntegrityError:
        return 409, {"error": f"{email} has signed up already"}
    finally:
        conn.close()
    return 201, {"email": email, "welcome_job": welcome.id}


def route(method: str, path: str, query: str) -> tuple[int, dict[str, Any]]:
    if (method, path) == ("POST", "/signups"):
        return sign_up(query)
    return 404, {"error": f"no {method} {path}"}


_REASONS = {201: "Created", 400: "Bad Request", 404: "Not Found", 409: "Conflict"}


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    status, body = route(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"),
                         environ.get("QUERY_STRING", ""))
    payload = json.dumps(body).encode()
    start_response(f"{status} {_REASONS[status]}", [("Content-Type", "application/json"),
                                                    ("Content-Length", str(len(payload)))])
    return [payload]


async def _asgi_signups(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    status, body = await asyncio.to_thread(  # the store and sqlite3 block: off the loop
        route, scope["method"], scope["path"], scope["query_string"].decode())
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


# The taskwheel store opened at the server's startup and closed at its shutdown.
asgi_app = TaskwheelLifespan(_asgi_signups, jobs)
