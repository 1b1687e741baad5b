"""`HttpClient`: a namespace of a ``taskwheel server`` over HTTP, for services that
should not hold database credentials.

Why a class of its own rather than `taskwheel.Client` accepting a URL: `Client` works on
a store, inside the caller's process and transaction (`JobHandle` objects that read the
store again, transactional enqueue), and takes requests its app already validated
(`Task.prepare`); over HTTP there is no store to hand out and the server's app does the
validating. One class with two transports would answer differently depending on how it
was built. So the verbs have the same names and arguments as `App` and `Client`
(``enqueue``, ``job``, ``list_jobs``, ``cancel_job``, ``retry_job``, ``list_dead``,
``replay_dead``, ...), and jobs and attempts come back as the same `Job` and `Attempt`
records; schedules, workflow runs and statistics come back as the API's JSON.

It uses the standard library only (``http.client``): one kept-alive connection per
client, so a client is for one thread at a time.

Errors are the Python API's where they have one: `InvalidInput` naming the field for a
422, `QuotaExceeded` for a 429; every other refusal is an `ApiError` carrying the
problem details (status, title, detail, field).

Example:
    >>> client = HttpClient("http://127.0.0.1:8080", api_key, namespace="team-a")
    >>> job = client.enqueue("send", ["a@b.c"], idempotency_key="signup:7")
    >>> client.job(job.id).status
    <JobStatus.QUEUED: 'queued'>
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taskwheel.errors import InvalidInput, QuotaExceeded, TaskwheelError
from taskwheel.jobs import Attempt, AttemptOutcome, DeadlinePolicy, Enqueued, Guarantee, Job
from taskwheel.lifecycle import JobStatus

if TYPE_CHECKING:
    # Imported by the first request: `import taskwheel` brings this module into every
    # process, and http.client (with email, which it parses headers with) 1.9 MB.
    import http.client

_JOB_TIMES = ("run_at", "deadline", "lease_expires_at", "started_at", "created_at",
              "finished_at", "fire_at")


class ApiError(TaskwheelError):
    """The server refused a request (problem details, RFC 9457)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.title = str(problem.get("title", "HTTP error"))
        self.detail = str(problem.get("detail", ""))
        self.field: str | None = problem.get("field")
        super().__init__(f"{status} {self.title}: {self.detail}")


class HttpClient:
    """One namespace of a taskwheel server.

    Args:
        url: the server's base URL (``http://127.0.0.1:8080``).
        api_key: a key of the namespace (`taskwheel keys create`).
        namespace: the tenant every call acts in.
        timeout: seconds to wait for an answer.
    """

    def __init__(self, url: str, api_key: str, namespace: str = "default", *,
                 timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("url", f"an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.namespace = namespace
        self._base = (f"{parts.path.rstrip('/')}/api/v1/namespaces/"
                      f"{urllib.parse.quote(namespace, safe='')}")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._connection: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"<HttpClient {self.url} namespace={self.namespace}>"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(self, task: str, args: Sequence[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, **options: Any) -> Job:
        """Enqueue a job of ``task`` (options as in `Task.enqueue`: queue, priority,
        delay, at, deadline, timeout, max_attempts, idempotency_key). Committed when it
        returns."""
        return _job(self._call("POST", "/jobs", _request(task, args, kwargs, options)))

    def enqueue_many(self, requests: Iterable[Mapping[str, Any]]) -> Enqueued:
        """Enqueue jobs in one transaction (all or none), each given as the API's
        request: ``{"task": ..., "args": [...], "priority": 5, ...}``; with, for each,
        whether its idempotency key was held already (``existing``: nothing created)."""
        answer = self._call("POST", "/jobs/batch", {"jobs": [dict(r) for r in requests]})
        return Enqueued([_job(job) for job in answer["jobs"]],
                        [bool(job.get("existing")) for job in answer["jobs"]])

    def job(self, job_id: int) -> Job:
        return _job(self._call("GET", f"/jobs/{int(job_id)}"))

    def list_jobs(self, *, status: JobStatus | str | None = None, queue: str | None = None,
                  task: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs, newest first: the first ``limit`` (following the server's pages)."""
        found: list[Job] = []
        cursor: str | None = None
        while len(found) < limit:
            query = {"status": None if status is None else str(status), "queue": queue,
                     "task": task, "limit": min(1000, limit - len(found)), "cursor": cursor}
            page = self._call("GET", "/jobs", query=query)
            found += [_job(job) for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return found

    def attempts(self, job_id: int) -> list[Attempt]:
        answer = self._call("GET", f"/jobs/{int(job_id)}/attempts")
        return [_attempt(attempt) for attempt in answer["attempts"]]

    def cancel_job(self, job_id: int) -> Job:
        return _job(self._call("POST", f"/jobs/{int(job_id)}/cancel"))

    def retry_job(self, job_id: int) -> Job:
        return _job(self._call("POST", f"/jobs/{int(job_id)}/retry"))

    def delete_jobs(self, job_ids: Sequence[int]) -> tuple[list[Job], dict[int, str]]:
        """Delete jobs and their history for good: (the jobs deleted, as they were;
        {id: why} for each one refused: running, a step of a run still going, unknown)."""
        answer = self._call("POST", "/jobs/delete", {"ids": [int(i) for i in job_ids]})
        return ([_job(job) for job in answer["done"]],
                {int(failed["id"]): failed["detail"] for failed in answer["failed"]})

    # -- the dead-letter queue ----------------------------------------------------------------

    def list_dead(self, *, queue: str | None = None, task: str | None = None,
                  limit: int = 100) -> list[Job]:
        answer = self._call("GET", "/dead-jobs",
                            query={"queue": queue, "task": task, "limit": limit})
        return [_job(job) for job in answer["jobs"]]

    def replay_dead(self, job_ids: Sequence[int] | None) -> list[int]:
        """Queue dead jobs again: those of ``job_ids``, or every one when None."""
        body: dict[str, Any] = {"filter": {}} if job_ids is None else {"ids": list(job_ids)}
        replayed: list[int] = self._call("POST", "/dead-jobs/replay", body)["replayed"]
        return replayed

    def purge_dead(self) -> int:
        purged: int = self._call("POST", "/dead-jobs/purge")["purged"]
        return purged

    # -- schedules, workflow runs, statistics: the API's JSON -----------------------------------

    def define_schedule(self, name: str, task: str, **spec: Any) -> dict[str, Any]:
        """Create or update the schedule ``name`` (``cron=``, ``every=`` or ``at=``,
        and the schedule options of the API)."""
        answer = self._call("PUT", f"/schedules/{_segment(name)}", {"task": task, **spec})
        return _object(answer["schedule"])

    def list_schedules(self) -> list[dict[str, Any]]:
        schedules: list[dict[str, Any]] = self._call("GET", "/schedules")["schedules"]
        return schedules

    def get_schedule(self, name: str) -> dict[str, Any]:
        return _object(self._call("GET", f"/schedules/{_segment(name)}"))

    def pause_schedule(self, name: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/schedules/{_segment(name)}/pause"))

    def resume_schedule(self, name: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/schedules/{_segment(name)}/resume"))

    def trigger_schedule(self, name: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/schedules/{_segment(name)}/trigger"))

    def remove_schedule(self, name: str) -> None:
        self._call("DELETE", f"/schedules/{_segment(name)}")

    def submit(self, workflow: Mapping[str, Any]) -> dict[str, Any]:
        """Start a run of a workflow given in the workflow file's form
        (``{"name": ..., "steps": [{"task": ..., "after": [...]}, ...]}``)."""
        return _object(self._call("POST", "/workflow-runs", {"workflow": dict(workflow)}))

    def workflow_run(self, run_id: int) -> dict[str, Any]:
        return _object(self._call("GET", f"/workflow-runs/{int(run_id)}"))

    def list_workflow_runs(self, *, limit: int = 100) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._call("GET", "/workflow-runs",
                                                query={"limit": limit})["runs"]
        return runs

    def retry_workflow_run(self, run_id: int, step: str | None = None) -> dict[str, Any]:
        body = {} if step is None else {"step": step}
        return _object(self._call("POST", f"/workflow-runs/{int(run_id)}/retry", body))

    def cancel_workflow_run(self, run_id: int) -> dict[str, Any]:
        return _object(self._call("POST", f"/workflow-runs/{int(run_id)}/cancel"))

    def stats(self) -> dict[str, Any]:
        return _object(self._call("GET", "/stats"))

    # -- pauses and queues' maximum depths: the API's JSON ---------------------------------------

    def pause_queue(self, queue: str, *, until: datetime | None = None) -> dict[str, Any]:
        """No worker claims the queue's jobs until `resume_queue` (or ``until``)."""
        body = {} if until is None else {"until": until.isoformat()}
        return _object(self._call("POST", f"/queues/{_segment(queue)}/pause", body))

    def resume_queue(self, queue: str) -> int:
        """How many jobs became claimable again (an `ApiError` 404 if it was not paused)."""
        released: int = self._call("POST", f"/queues/{_segment(queue)}/resume")["released"]
        return released

    def pause_task(self, task: str, *, until: datetime | None = None) -> dict[str, Any]:
        body = {} if until is None else {"until": until.isoformat()}
        return _object(self._call("POST", f"/tasks/{_segment(task)}/pause", body))

    def resume_task(self, task: str) -> int:
        released: int = self._call("POST", f"/tasks/{_segment(task)}/resume")["released"]
        return released

    def pauses(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/pauses")["pauses"]
        return found

    def set_queue_limit(self, queue: str, max_depth: int) -> dict[str, Any]:
        """Enqueues past ``max_depth`` jobs waiting to run in ``queue`` are refused (an
        `ApiError` 429 whose type ends in ``queue-full``)."""
        return _object(self._call("PUT", f"/queues/{_segment(queue)}/limit",
                                  {"max_depth": max_depth}))

    def remove_queue_limit(self, queue: str) -> None:
        self._call("DELETE", f"/queues/{_segment(queue)}/limit")

    def queue_limits(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/queue-limits")["limits"]
        return found

    # -- key gates: the API's JSON ----------------------------------------------------------------

    def set_limit(self, key: str, limit: int | None) -> dict[str, Any]:
        """At most ``limit`` jobs of ``key`` run at once (None: no limit)."""
        return _object(self._call("PUT", f"/limits/{_segment(key)}", {"limit": limit}))

    def limit(self, key: str) -> dict[str, Any]:
        return _object(self._call("GET", f"/limits/{_segment(key)}"))

    def limits(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/limits")["limits"]
        return found

    def set_rate(self, key: str, rate: str | float | None = None, *,
                 burst: int | None = None) -> dict[str, Any]:
        """Start ``key``'s jobs at ``rate`` at most, with ``burst`` (`taskwheel.rates`);
        None leaves either as it is."""
        body: dict[str, Any] = {"rate": rate, "burst": burst}
        return _object(self._call("PUT", f"/limits/{_segment(key)}/rate", body))

    def rate(self, key: str) -> dict[str, Any]:
        return _object(self._call("GET", f"/limits/{_segment(key)}/rate"))

    def rates(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/rates")["rates"]
        return found

    def pause_key(self, key: str, *, until: datetime | None = None) -> dict[str, Any]:
        """No job of ``key`` is admitted until `resume_key` (or ``until``)."""
        body = {} if until is None else {"until": until.isoformat()}
        return _object(self._call("POST", f"/limits/{_segment(key)}/pause", body))

    def resume_key(self, key: str) -> int:
        released: int = self._call("POST", f"/limits/{_segment(key)}/resume")["released"]
        return released

    def breakers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/breakers")["breakers"]
        return found

    def open_breaker(self, key: str, *, until: datetime | None = None) -> dict[str, Any]:
        """No job of ``key`` is admitted until ``until`` (None: `close_breaker`)."""
        body = {} if until is None else {"until": until.isoformat()}
        return _object(self._call("POST", f"/breakers/{_segment(key)}/open", body))

    def close_breaker(self, key: str) -> dict[str, Any]:
        return _object(self._call("POST", f"/breakers/{_segment(key)}/close"))

    # -- the wire -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, *,
              query: Mapping[str, Any] | None = None) -> Any:
        target = self._base + path
        if query:
            given = {key: value for key, value in query.items() if value is not None}
            if given:
                target += "?" + urllib.parse.urlencode(given)
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, data = self._send(method, target, payload, headers)
        answer = json.loads(data) if data else None
        if status >= 400:
            raise _error(status, answer if isinstance(answer, dict) else {}, self.namespace)
        return answer

    def _send(self, method: str, target: str, payload: bytes | None,
              headers: dict[str, str]) -> tuple[int, bytes]:
        # Once more on a fresh connection when a kept-alive one was closed by the server
        # meanwhile (only then: the request never reached it).
        import http.client

        for fresh in (self._connection is None, True):
            connection = self._connect()
            try:
                connection.request(method, target, body=payload, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        import http.client

        if self._connection is None:
            kind = (http.client.HTTPSConnection if self._scheme == "https"
                    else http.client.HTTPConnection)
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        return self._connection


def _request(task: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
             options: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task, "args": list(args or []),
                            "kwargs": dict(kwargs or {})}
    for name, value in options.items():
        body[name] = value.isoformat() if isinstance(value, datetime) else value
    return body


def _object(answer: Any) -> dict[str, Any]:
    assert isinstance(answer, dict)
    return answer


def _segment(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _error(status: int, problem: Mapping[str, Any], namespace: str) -> TaskwheelError:
    field = problem.get("field")
    detail = str(problem.get("detail", ""))
    if status == 422 and field:
        return InvalidInput(str(field), detail.removeprefix(f"{field}: "))
    if status == 429 and not str(problem.get("type", "")).endswith("/queue-full"):
        return QuotaExceeded(namespace, str(field or "quota"), detail)
    return ApiError(status, problem)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _job(data: Mapping[str, Any]) -> Job:
    fields = dict(data)
    fields.pop("existing", None)  # an enqueue's answer says it; the job does not hold it
    for name in _JOB_TIMES:
        fields[name] = _time(fields.get(name))
    fields["status"] = JobStatus(fields["status"])
    fields["guarantee"] = Guarantee(fields["guarantee"])
    fields["deadline_policy"] = DeadlinePolicy(fields["deadline_policy"])
    return Job(**fields)


def _attempt(data: Mapping[str, Any]) -> Attempt:
    fields = dict(data)
    fields["started_at"] = _time(fields["started_at"])
    fields["ended_at"] = _time(fields["ended_at"])
    fields["outcome"] = AttemptOutcome(fields["outcome"])
    return Attempt(**fields)
