"""The statements that watch the store — what holds a job, what a scrape reads —
written once for both dialects.

They are reads with the same query names and parameters in both ``queries.sql``
files, so the two executors take them from here (as `stores.tenancy`). A dialect
supplies `_execute` (one statement by name) and `_decode` (how its JSON columns come
back: text to decode on SQLite, values already decoded on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskwheel.explanations import PriorityBand
from taskwheel.jobs import DepthBand, Job, WorkerInfo
from taskwheel.stores import rows
from taskwheel.stores.tenancy import Cursor
from taskwheel.validators import ALL_NAMESPACES


class ObservationStatements:
    """Reads for `explain_job` and the metrics, over a dialect's `_execute`."""

    def _execute(self, name: str, params: dict[str, Any]) -> Cursor:
        raise NotImplementedError

    def _decode(self, value: Any) -> Any:
        raise NotImplementedError

    def now(self) -> float:
        raise NotImplementedError

    def jobs_ahead(self, job: Job) -> list[PriorityBand]:
        """The ready jobs of ``job``'s namespace and queue that a claim takes before it
        (dispatch order, aging and fair shares included), counted by priority, highest
        first."""
        found = self._execute("jobs_ahead", {"id": job.id}).fetchall()
        return [PriorityBand(int(row["priority"]), int(row["count"])) for row in found]

    def workers_of(self, namespaces: Sequence[str]) -> list[WorkerInfo]:
        """The registrations of ``namespaces`` and of the workers that serve several
        (registered under ``"*"``), alive or not, by start time."""
        now = self.now()
        found: list[WorkerInfo] = []
        for namespace in dict.fromkeys([*namespaces, ALL_NAMESPACES]):
            found += [rows.worker(row, now, self._decode) for row in self._execute(
                "list_workers", {"namespace": namespace}).fetchall()]
        return sorted(found, key=lambda worker: (worker.started_at, worker.id))

    def slowest_heartbeat(self, namespace: str) -> float | None:
        """The longest heartbeat interval of the workers registered for ``namespace``
        or for every namespace (every worker, for `ALL_NAMESPACES`), alive or not; None
        when there is none."""
        row = self._execute("slowest_heartbeat", {
            "namespace": namespace, "every_namespace": ALL_NAMESPACES}).fetchone()
        slowest = None if row is None else row["slowest"]
        return None if slowest is None else float(slowest)

    def depth_by_band(self) -> list[DepthBand]:
        """Every namespace's unfinished and dead jobs by queue, state and priority, in
        one statement (each row read by position: a scrape may read tens of
        thousands)."""
        found = self._execute("depth_by_band", {}).fetchall()
        return [DepthBand._make(row.values() if isinstance(row, dict) else row)
                for row in found]

    def all_workers(self) -> list[WorkerInfo]:
        """Every registered worker, alive or not."""
        now = self.now()
        return [rows.worker(row, now, self._decode)
                for row in self._execute("all_workers", {}).fetchall()]
