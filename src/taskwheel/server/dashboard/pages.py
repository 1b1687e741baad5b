"""The dashboard's pages: server-rendered HTML under ``/namespaces/{namespace}/...``, and
the login that puts the browser's key in a cookie.

A page reads through the same namespace-scoped `Client` as the API, with the same key
checks (`auth.access_to`): a key of another namespace sees "not found", and the action
buttons a page shows are those the key's role may use. The buttons call the API itself
(``static/dashboard.js``), so every action is checked by the route that does it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from taskwheel.errors import InvalidInput, TaskwheelError
from taskwheel.keys import Role
from taskwheel.lifecycle import JobStatus
from taskwheel.server.auth import KEY_COOKIE, Access, Principal, access_to, principal_of
from taskwheel.server.dashboard import views
from taskwheel.server.dashboard.rendering import templates
from taskwheel.server.problems import Problem, problem_of
from taskwheel.validators import ALL_NAMESPACES
from taskwheel.workflows import RunStatus, WorkflowRunFilter

router = APIRouter(include_in_schema=False)

DEFAULT_NAMESPACE = "default"
_PAGE_PATH = re.compile(r"/namespaces/[A-Za-z0-9._~%:@!$&'()*+,;=/-]*")
# How long the browser keeps the key (the cookie; the key itself may be revoked sooner).
COOKIE_SECONDS = 12 * 3600


class Login(BaseModel):
    key: str = Field(min_length=1, max_length=500)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html",
                                      {"next": safe_next(next), "title": "Sign in"})


@router.post("/login")
def login(request: Request, body: Login) -> JSONResponse:
    """Check the key, and keep it in an HttpOnly cookie for this site's pages and API
    calls. The answer names the page to go to: the key's namespace."""
    try:
        principal = principal_of(request, body.key.strip())
    except Problem as problem:
        return JSONResponse({"detail": problem.detail}, status_code=401)
    namespace = principal.key.namespace
    if namespace == ALL_NAMESPACES:
        namespace = DEFAULT_NAMESPACE
    answer = JSONResponse({"next": f"/namespaces/{quote(namespace)}",
                           "role": principal.key.role.value})
    answer.set_cookie(KEY_COOKIE, body.key.strip(), max_age=COOKIE_SECONDS, httponly=True,
                      samesite="strict", secure=request.url.scheme == "https", path="/")
    return answer


@router.post("/logout")
def logout() -> RedirectResponse:
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(KEY_COOKIE, path="/")
    return answer


@router.get("/")
def home(request: Request) -> Response:
    viewer = _principal(request)
    if viewer is None:
        return RedirectResponse("/login", status_code=303)
    namespace = viewer.key.namespace
    if namespace == ALL_NAMESPACES:
        namespace = DEFAULT_NAMESPACE
    return RedirectResponse(f"/namespaces/{quote(namespace)}", status_code=303)


# -- pages ---------------------------------------------------------------------------------


Page = Callable[[Access], dict[str, Any]]


def _page(request: Request, namespace: str, template: str, build: Page,
          *, section: str) -> Response:
    """``template`` with what ``build`` finds, for the cookie's key; the login page for
    a browser without one; an error page for what the API would refuse."""
    principal = _principal(request)
    if principal is None:
        return RedirectResponse(f"/login?{urlencode({'next': str(request.url.path)})}",
                                status_code=303)
    try:
        access = access_to(request, principal, namespace, Role.READ)
        context = build(access)
    except Problem as problem:
        return _error(request, problem.status, problem.detail)
    except TaskwheelError as exc:
        found = problem_of(exc)
        return _error(request, found.status, found.detail)
    role = principal.key.role
    namespaces = None
    if principal.key.namespace == ALL_NAMESPACES:
        namespaces = sorted({*access.state.store.namespaces(), namespace})
    context.update(
        ns=namespace, section=section, namespaces=namespaces,
        can_operate=role.allows(Role.OPERATE), can_admin=role.allows(Role.ADMIN),
        role=role.value, key_prefix=principal.key.prefix,
    )
    return templates.TemplateResponse(request, template, context)


def _error(request: Request, status: int, detail: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html",
                                      {"status": status, "detail": detail, "title": "Error"},
                                      status_code=status)


def _principal(request: Request) -> Principal | None:
    presented = request.cookies.get(KEY_COOKIE)
    if not presented:
        return None
    try:
        return principal_of(request, presented)
    except Problem:
        return None


def safe_next(target: str) -> str:
    """Only a page of this dashboard (no open redirect through the login: browsers read
    ``//host`` and ``/\\host`` as another site)."""
    return target if _PAGE_PATH.fullmatch(target) else "/"


@router.get("/namespaces/{namespace}", response_class=HTMLResponse)
def overview_page(request: Request, namespace: str) -> Response:
    return _page(request, namespace, "overview.html", lambda access: {
        "title": "Overview", "o": views.overview(access.client)}, section="overview")


@router.get("/namespaces/{namespace}/jobs", response_class=HTMLResponse)
def jobs_page(  # noqa: PLR0917 - the filters are query parameters
    request: Request, namespace: str,
    status: str = "", queue: str = "", task: str = "", text: str = "",
    since: str = "", until: str = "", cursor: str = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    def build(access: Access) -> dict[str, Any]:
        search = views.JobSearch(
            status=_choice(JobStatus, status, "status"), queue=queue or None,
            task=task or None, text=text or None, since=_instant(since, "since"),
            until=_instant(until, "until"), limit=limit,
            before_id=_cursor(cursor))
        jobs, next_cursor = views.search_jobs(access.client, search)
        query = {k: v for k, v in (("status", status), ("queue", queue), ("task", task),
                                   ("text", text), ("since", since), ("until", until))
                 if v}
        return {"title": "Jobs", "jobs": jobs, "search": search, "query": query,
                "next_url": None if next_cursor is None else
                f"?{urlencode({**query, 'cursor': next_cursor})}",
                "statuses": list(JobStatus), "filter_json": _filter_json(search)}
    return _page(request, namespace, "jobs.html", build, section="jobs")


@router.get("/namespaces/{namespace}/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, namespace: str, job_id: int) -> Response:
    def build(access: Access) -> dict[str, Any]:
        context = job_context(access, job_id)
        context["title"] = f"Job {job_id}"
        return context
    return _page(request, namespace, "job.html", build, section="jobs")


def job_context(access: Access, job_id: int) -> dict[str, Any]:
    job = access.client.job(job_id).record
    schedule = None
    if job.schedule_id is not None:
        found = access.state.store.get_schedules(access.namespace, [job.schedule_id])
        schedule = found[0] if found else None
    return {"job": job, "attempts": access.client.attempts(job_id), "schedule": schedule}


@router.get("/namespaces/{namespace}/dead-jobs", response_class=HTMLResponse)
def dead_page(request: Request, namespace: str) -> Response:
    def build(access: Access) -> dict[str, Any]:
        dead = access.client.list_dead(limit=1000)
        return {"title": "Dead-letter queue", "groups": views.group_dead(dead),
                "shown": len(dead)}
    return _page(request, namespace, "dead.html", build, section="dead")


@router.get("/namespaces/{namespace}/queues", response_class=HTMLResponse)
def queues_page(request: Request, namespace: str) -> Response:
    return _page(request, namespace, "queues.html", lambda access: {
        "title": "Queues", "rows": views.queues(access.client),
        "wait_minutes": views.WAIT_MINUTES}, section="queues")


@router.get("/namespaces/{namespace}/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, namespace: str) -> Response:
    def build(access: Access) -> dict[str, Any]:
        now = access.state.store.now()
        schedules = access.client.list_schedules()
        return {"title": "Schedules", "now": now, "rows": [
            (s, views.trigger_text(s), views.next_fires(s, now),
             access.client.schedule_jobs(s, 5), views.schedule_runs(access.client, s))
            for s in schedules]}
    return _page(request, namespace, "schedules.html", build, section="schedules")


@router.get("/namespaces/{namespace}/workflow-runs", response_class=HTMLResponse)
def runs_page(request: Request, namespace: str, status: str = "") -> Response:
    def build(access: Access) -> dict[str, Any]:
        runs = access.client.list_workflow_runs(WorkflowRunFilter(
            status=_choice(RunStatus, status, "status"), limit=200))
        return {"title": "Workflows", "runs": runs, "status": status,
                "statuses": list(RunStatus)}
    return _page(request, namespace, "runs.html", build, section="workflows")


@router.get("/namespaces/{namespace}/workflow-runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, namespace: str, run_id: int) -> Response:
    def build(access: Access) -> dict[str, Any]:
        run = access.client.workflow_run(run_id).record
        return {"title": f"Run {run_id}", "run": run, "graph": views.run_graph(run),
                "schedule": views.schedule_of(access.client, run)}
    return _page(request, namespace, "run.html", build, section="workflows")


@router.get("/namespaces/{namespace}/workers", response_class=HTMLResponse)
def workers_page(request: Request, namespace: str) -> Response:
    def build(access: Access) -> dict[str, Any]:
        return {"title": "Workers and schedulers", **workers_context(access)}
    return _page(request, namespace, "workers.html", build, section="workers")


def workers_context(access: Access) -> dict[str, Any]:
    store = access.state.store
    leases = store.lease_holders(access.namespace, "")
    if access.principal.key.namespace == ALL_NAMESPACES:
        leases |= {f"{ALL_NAMESPACES} {name}": holder
                   for name, holder in store.lease_holders(ALL_NAMESPACES, "").items()}
    return {"stats": access.client.stats(), "leases": sorted(leases.items()),
            "now": store.now(), "running": views.running_by_worker(access.client)}


# -- query parameters ------------------------------------------------------------------------


_Choice = TypeVar("_Choice", JobStatus, RunStatus)


def _choice(kind: type[_Choice], value: str, field: str) -> _Choice | None:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(field, f"unknown {field} {value!r}") from None


def _instant(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _cursor(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput("cursor", "not a cursor this page gave")
    return int(value)


def _filter_json(search: views.JobSearch) -> str:
    """The API's bulk filter for the page's store-side filters (status, queue, task)."""
    chosen = {"status": None if search.status is None else search.status.value,
              "queue": search.queue, "task": search.task}
    return json.dumps({k: v for k, v in chosen.items() if v is not None})
