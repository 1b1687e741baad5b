"""Workers: claim jobs, run them, report what happened."""

from taskwheel.worker.context import Context
from taskwheel.worker.worker import Worker, WorkerSettings

__all__ = ["Context", "Worker", "WorkerSettings"]
