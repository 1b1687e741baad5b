"""taskwheel: a distributed task scheduler for Python.

Example:
    >>> import taskwheel
    >>> app = taskwheel.App()
    >>> @app.task(queue="emails", retry=taskwheel.Retry(max_attempts=5))
    ... def send(to: str) -> str:
    ...     return f"sent to {to}"
    >>> job = send.enqueue("a@b.c", priority=9, delay="10s")
    >>> wf = taskwheel.Workflow("welcome")
    >>> first = wf.step(send, ["a@b.c"])
    >>> run = app.submit(wf)
    >>> client = taskwheel.Client(app.store, "default")   # one namespace, no registry
    >>> client.list_dead()
    []
    >>> remote = taskwheel.HttpClient("http://127.0.0.1:8080", api_key)  # over HTTP
"""

from taskwheel.app import App, load_app
from taskwheel.breakers import CircuitBreaker, TripBreaker
from taskwheel.client import Client
from taskwheel.clock import Clock, ManualClock, SystemClock
from taskwheel.errors import (
    BreakerNotOpen,
    Cancelled,
    IllegalTransition,
    InvalidInput,
    JobFailed,
    JobNotFound,
    LimitNotFound,
    NotPaused,
    QueueFull,
    SchemaOutdated,
    TaskwheelError,
    UnknownTask,
    WorkflowFailed,
    WorkflowRunNotFound,
)
from taskwheel.handles import JobHandle, WorkflowRunHandle
from taskwheel.http_client import ApiError, HttpClient
from taskwheel.jobs import Attempt, AttemptOutcome, DeadlinePolicy, Guarantee, Job, JobFilter
from taskwheel.lifecycle import JobStatus
from taskwheel.limits import ConcurrencyLimit
from taskwheel.rates import RateLimit
from taskwheel.retry import Backoff, Retry
from taskwheel.tasks import Pool, Task
from taskwheel.worker import Context, Worker, WorkerSettings
from taskwheel.workflows import (
    FailurePolicy,
    RunStatus,
    StepOutcome,
    Workflow,
    WorkflowRun,
    WorkflowRunFilter,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "App",
    "Attempt",
    "AttemptOutcome",
    "Backoff",
    "BreakerNotOpen",
    "Cancelled",
    "CircuitBreaker",
    "Client",
    "Clock",
    "ConcurrencyLimit",
    "Context",
    "DeadlinePolicy",
    "FailurePolicy",
    "Guarantee",
    "HttpClient",
    "IllegalTransition",
    "InvalidInput",
    "Job",
    "JobFailed",
    "JobFilter",
    "JobHandle",
    "JobNotFound",
    "JobStatus",
    "LimitNotFound",
    "ManualClock",
    "NotPaused",
    "Pool",
    "QueueFull",
    "RateLimit",
    "Retry",
    "RunStatus",
    "SchemaOutdated",
    "StepOutcome",
    "SystemClock",
    "Task",
    "TaskwheelError",
    "TripBreaker",
    "UnknownTask",
    "Worker",
    "WorkerSettings",
    "Workflow",
    "WorkflowFailed",
    "WorkflowRun",
    "WorkflowRunFilter",
    "WorkflowRunHandle",
    "WorkflowRunNotFound",
    "load_app",
]
