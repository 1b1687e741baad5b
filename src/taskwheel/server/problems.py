"""Errors as RFC 9457 problem details (``application/problem+json``): one error type,
`Problem`, and the handlers that turn every error the server meets into one.

Every problem has ``type``, ``title``, ``status`` and ``detail``; one about a field of
the request names it in ``field`` (``args``, ``steps.load.after``, ``body.priority``).
Bad input is a 4xx and writes nothing: the handlers here run after the operation's
transaction was rolled back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskwheel.errors import (
    AgingNotFound,
    AlertNotFound,
    ApiKeyNotFound,
    BreakerNotOpen,
    IllegalTransition,
    InvalidInput,
    JobNotFound,
    LimitNotFound,
    NamespaceWeightNotFound,
    NotPaused,
    QueueFull,
    QueueLimitNotFound,
    QuotaExceeded,
    ReserveNotFound,
    ScheduleNotFound,
    StoreError,
    StoreUnavailable,
    TaskwheelError,
    WorkflowRunNotFound,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://taskwheel.dev/problems/"


class ProblemDetails(BaseModel):
    """The body of every error answer (RFC 9457)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


class Problem(Exception):
    """An error answer: raise it from a route or a dependency."""

    def __init__(
        self, status: int, kind: str, title: str, detail: str, *, field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = ProblemDetails(type=TYPE_BASE + self.kind, title=self.title, status=self.status,
                              detail=self.detail, field=self.field)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=self.status,
                            media_type=PROBLEM_MEDIA_TYPE, headers=self.headers)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not Found", detail)


def invalid_input(field: str, reason: str) -> Problem:
    return Problem(422, "invalid-input", "Invalid Input", f"{field}: {reason}", field=field)


def problem_of(exc: Exception) -> Problem:
    """The answer to an error a route let through."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, InvalidInput):
        return invalid_input(exc.field, exc.reason)
    if isinstance(exc, JobNotFound | ScheduleNotFound | WorkflowRunNotFound | ApiKeyNotFound
                  | AlertNotFound):
        return not_found(str(exc))
    if isinstance(exc, IllegalTransition):
        return Problem(409, "conflict", "Conflict", str(exc))
    if isinstance(exc, QuotaExceeded):
        # Without a time the quota can give (jobs waiting to run must finish first),
        # a second: soon enough to see room made, late enough not to hammer.
        wait = 1 if exc.retry_after is None else max(1, math.ceil(exc.retry_after))
        return Problem(429, "quota-exceeded", "Quota Exceeded", str(exc), field=exc.limit,
                       headers={"Retry-After": str(wait)})
    if isinstance(exc, QueueFull):
        # Room is made as jobs start: try again in a second.
        return Problem(429, "queue-full", "Queue Full", str(exc), field="queue",
                       headers={"Retry-After": "1"})
    if isinstance(exc, NotPaused | QueueLimitNotFound | LimitNotFound | BreakerNotOpen
                  | AgingNotFound | ReserveNotFound | NamespaceWeightNotFound):
        return not_found(str(exc))
    if isinstance(exc, StoreUnavailable):
        return Problem(503, "store-unavailable", "Service Unavailable", str(exc),
                       headers={"Retry-After": "1"})
    if isinstance(exc, StoreError):
        return Problem(500, "store-error", "Store Error", str(exc))
    return Problem(500, "internal-error", "Internal Server Error",
                   f"unexpected {type(exc).__name__}")


def validation_problem(errors: Sequence[Any]) -> Problem:
    """The answer to a request FastAPI could not read into its model: malformed JSON
    (400), or the first field that is wrong (422)."""
    first = dict(errors[0]) if errors else {}
    if first.get("type") == "json_invalid":
        return Problem(400, "malformed-json", "Malformed JSON",
                       f"the body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
                       .rstrip(": "), field="body")
    location = list(first.get("loc", ()))
    if location and location[0] in ("body", "query", "path", "header"):
        location = location[1:]
    field = ""
    for part in location:  # as the Python API names them: jobs[0].args
        field += f"[{part}]" if isinstance(part, int) else f".{part}" if field else str(part)
    field = field or "body"
    message = str(first.get("msg", "invalid"))
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "missing":
        message = "missing"
    return invalid_input(field, message)


def install_handlers(app: FastAPI) -> None:
    """Make every error answer a problem."""

    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        return problem_of(exc).response()

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc.errors()).response()

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: ("not-found", "Not Found"), 405: ("method-not-allowed",
                                                         "Method Not Allowed")}
        kind, title = titles.get(exc.status_code, ("http-error", "HTTP Error"))
        detail = "no such resource" if exc.status_code == 404 else str(exc.detail)
        return Problem(exc.status_code, kind, title, detail,
                       headers=dict(exc.headers or {})).response()

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(TaskwheelError, on_problem)
    # Anything else is a defect: answered as a problem too (Starlette logs it).
    app.add_exception_handler(Exception, on_problem)
