"""``taskwheel enqueue --from-file``: many jobs from a JSON-lines file.

Each line is one request as the HTTP API's enqueue body: ``{"task": ..., "args": [...],
"kwargs": {...}, "queue": ..., "priority": ..., "delay": ..., "at": ..., "deadline": ...,
"timeout": ..., "max_attempts": ..., "idempotency_key": ...}`` (only ``task`` is
required; blank lines are skipped). Every line is checked against the app's tasks before
anything is written; the first bad one is named with its number
(``jobs.jsonl:17: priority: ...``). The jobs are then written in transactions of 1,000.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from taskwheel.app import App
from taskwheel.cli.progress import progress
from taskwheel.cli.values import parse_datetime, parse_deadline
from taskwheel.errors import InvalidInput
from taskwheel.jobs import NewJob, unique_keys
from taskwheel.tasks import ENQUEUE_OPTIONS

BATCH = 1_000
_FIELDS = frozenset({"task", "args", "kwargs"}) | ENQUEUE_OPTIONS


class FileRequestError(InvalidInput):
    """A line of the file is not a request the app accepts."""


def read_requests(app: App, path: str, defaults: Mapping[str, Any]) -> list[NewJob]:
    """Every request of the file at ``path`` (``-``: stdin), validated; ``defaults``
    (the command line's options) fill what a line leaves out."""
    name = "<stdin>" if path == "-" else path
    requests = []
    with _opened(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                requests.append(_request(app, line, defaults))
            except InvalidInput as exc:
                raise FileRequestError("from_file", f"{name}:{number}: {exc}") from None
    if not requests:
        raise InvalidInput("from_file", f"{name}: no requests in it")
    return requests


def write_requests(app: App, requests: list[NewJob]) -> tuple[list[int], int]:
    """Write the requests in transactions of `BATCH`, with a progress bar on a terminal;
    the ids of the jobs (one per request) and how many of them already existed (their
    idempotency key was held)."""
    ids: list[int] = []
    existing = 0
    with progress(len(requests), "enqueueing") as advance:
        for start in range(0, len(requests), BATCH):
            handles = app.enqueue_many(requests[start:start + BATCH])
            ids.extend(handle.id for handle in handles)
            existing += sum(1 for handle in handles if handle.existing)
            advance(len(handles))
    return ids, existing


def _request(app: App, line: str, defaults: Mapping[str, Any]) -> NewJob:
    try:
        body = json.loads(line, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput("line", f"not valid JSON ({exc})") from None
    except ValueError as exc:  # a key given twice
        raise InvalidInput("line", str(exc)) from None
    if not isinstance(body, dict):
        raise InvalidInput("line", "must be a JSON object (an enqueue request)")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field; a request has {', '.join(sorted(_FIELDS))}")
    task = body.pop("task", None)
    if not isinstance(task, str):
        raise InvalidInput("task", "required: the name of a task, a string")
    args = body.pop("args", [])
    kwargs = body.pop("kwargs", {})
    if not isinstance(args, list):
        raise InvalidInput("args", f"must be a JSON list, got {json.dumps(args)}")
    if not isinstance(kwargs, dict):
        raise InvalidInput("kwargs", f"must be a JSON object, got {json.dumps(kwargs)}")
    options = {**defaults, **{key: value for key, value in body.items() if value is not None}}
    for field in ("at", "deadline"):
        if field in body and not isinstance(body[field], str | type(None)):
            raise InvalidInput(field, "must be an ISO 8601 time (or, for a deadline, a "
                               "duration) as a string")
    if isinstance(body.get("at"), str):
        options["at"] = parse_datetime(body["at"], "at")
    if isinstance(body.get("deadline"), str):
        options["deadline"] = parse_deadline(body["deadline"])
    return app.request(task, args, kwargs, **options)


class _opened:
    """The file's lines (stdin's for ``-``), as text; a file that cannot be read is bad
    input naming it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: TextIO | None = None

    def __enter__(self) -> Iterator[str]:
        if self.path == "-":
            return iter(sys.stdin)
        try:
            self.file = open(self.path, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput("from_file", f"cannot read {self.path}: {exc.strerror}") from None
        return _decoded(self.file, self.path)

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _decoded(file: TextIO, path: str) -> Iterator[str]:
    number = 0
    try:
        for number, line in enumerate(file, start=1):  # noqa: B007 (named on error)
            yield line
    except UnicodeDecodeError:
        raise InvalidInput("from_file", f"{path}:{number + 1}: not UTF-8 text") from None
