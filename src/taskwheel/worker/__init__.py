"""Workers: claim jobs, run them, report what happened."""

from taskwheel.worker.context import Context
from taskwheel.worker.settings import WorkerSettings
from taskwheel.worker.worker import Worker

__all__ = ["Context", "Worker", "WorkerSettings"]
