"""The statements of dispatch control — pauses, queues' maximum depths, fair shares and
aging — written
once for both dialects, as `tenancy.TenancyStatements` is: the same query names and
parameters in both ``queries.sql`` files, a dialect supplying `_execute`, `_stamped`,
`_announce_ready` (how it wakes workers for jobs that became claimable without
changing state: SQLite after its commit, PostgreSQL with a NOTIFY in the transaction),
and `arm_gates` / `disarm_gates` (SQLite creates its gate triggers while a gate is
closed; PostgreSQL's are permanent).
"""

from __future__ import annotations

from typing import Any

from taskwheel.clock import to_datetime
from taskwheel.fairness import FairWeight, Flow, QueueAging
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.jobs import epoch_datetime
from taskwheel.stores.tenancy import Cursor


class DispatchStatements:
    """Gates and queue limits over a dialect's `_execute`."""

    def _execute(self, name: str, params: dict[str, Any]) -> Cursor:
        raise NotImplementedError

    def _stamped(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _announce_ready(self, namespace: str) -> None:
        raise NotImplementedError

    # -- pauses -----------------------------------------------------------------------------

    def lock_gates(self) -> None:
        self._execute("lock_gates", {}).fetchall()

    def arm_gates(self) -> None:
        raise NotImplementedError

    def disarm_gates(self) -> None:
        raise NotImplementedError

    def any_pauses(self) -> bool:
        row = self._execute("any_pauses", {}).fetchone()
        assert row is not None
        return bool(row["found"])

    def insert_pause(self, namespace: str, kind: GateKind, name: str,
                     until: float | None) -> bool:
        params = self._stamped({"namespace": namespace, "kind": kind.value, "name": name,
                                "until": until})
        return self._execute("insert_pause", params).fetchone() is not None

    def set_pause_until(self, namespace: str, kind: GateKind, name: str,
                        until: float | None) -> None:
        self._execute("set_pause_until", {"namespace": namespace, "kind": kind.value,
                                          "name": name, "until": until})

    def due_pauses(self, namespace: str) -> list[tuple[GateKind, str]]:
        found = self._execute("due_pauses", self._stamped({"namespace": namespace}))
        return [(GateKind(row["kind"]), str(row["name"])) for row in found.fetchall()]

    def block_jobs(self, namespace: str, kind: GateKind, name: str) -> int:
        params = {"namespace": namespace, "kind": kind.value, "name": name}
        return len(self._execute("block_jobs", params).fetchall())

    def delete_pause(self, namespace: str, kind: GateKind, name: str) -> bool:
        params = {"namespace": namespace, "kind": kind.value, "name": name}
        return self._execute("delete_pause", params).fetchone() is not None

    def unblock_jobs(self, namespace: str, kind: GateKind, name: str) -> int:
        params = {"namespace": namespace, "kind": kind.value, "name": name}
        released = len(self._execute("unblock_jobs", params).fetchall())
        if released:
            self._announce_ready(namespace)
        return released

    def list_pauses(self, namespace: str) -> list[Pause]:
        return [Pause(namespace=row["namespace"], kind=GateKind(row["kind"]), name=row["name"],
                      paused_at=epoch_datetime(row["paused_at"]), held=int(row["held"]),
                      until=to_datetime(row["until"]))
                for row in self._execute("list_pauses", {"namespace": namespace}).fetchall()]

    # -- queues' maximum depths -------------------------------------------------------------

    def set_queue_limit(self, limit: QueueLimit) -> None:
        self._execute("set_queue_limit", {"namespace": limit.namespace, "queue": limit.queue,
                                          "max_depth": limit.max_depth})

    def delete_queue_limit(self, namespace: str, queue: str) -> bool:
        params = {"namespace": namespace, "queue": queue}
        return self._execute("delete_queue_limit", params).fetchone() is not None

    def list_queue_limits(self, namespace: str) -> list[QueueLimit]:
        return [QueueLimit(row["namespace"], row["queue"], int(row["max_depth"]),
                           int(row["depth"]))
                for row in self._execute("list_queue_limits",
                                         {"namespace": namespace}).fetchall()]

    def lock_queue_limit(self, namespace: str, queue: str) -> int | None:
        row = self._execute("lock_queue_limit",
                            {"namespace": namespace, "queue": queue}).fetchone()
        return None if row is None else int(row["max_depth"])

    def queue_depth(self, namespace: str, queue: str, up_to: int) -> int:
        row = self._execute("queue_depth", {"namespace": namespace, "queue": queue,
                                            "up_to": up_to}).fetchone()
        assert row is not None
        return int(row["depth"])

    # -- fair shares and aging --------------------------------------------------------------

    def is_fair(self, namespace: str) -> bool:
        row = self._execute("is_fair", {"namespace": namespace}).fetchone()
        assert row is not None
        return bool(row["found"])

    def lock_fair_flow(self, namespace: str, key: str) -> Flow | None:
        row = self._execute("lock_fair_flow", {"namespace": namespace, "key": key}).fetchone()
        if row is None:
            return None
        weight = row["weight"]
        return Flow(1.0 if weight is None else float(weight), float(row["last_pass"]))

    def save_fair_flow(self, namespace: str, key: str, last_pass: float) -> None:
        self._execute("save_fair_flow", {"namespace": namespace, "key": key,
                                         "last_pass": last_pass})

    def pass_frontier(self, namespace: str, rank: int) -> float | None:
        row = self._execute("pass_frontier", {"namespace": namespace, "rank": rank}).fetchone()
        return None if row is None or row["frontier"] is None else float(row["frontier"])

    def fair_ceiling(self, namespace: str) -> float:
        row = self._execute("fair_ceiling", {"namespace": namespace}).fetchone()
        assert row is not None
        return float(row["ceiling"])

    def aging_rates(self, namespace: str) -> dict[str, float]:
        return {str(row["queue"]): float(row["rate"]) for row in
                self._execute("list_queue_aging", {"namespace": namespace}).fetchall()}

    def set_fair_weight(self, namespace: str, key: str, weight: float | None) -> None:
        self._execute("set_fair_weight", {"namespace": namespace, "key": key,
                                          "weight": weight})

    def list_fair_flows(self, namespace: str) -> list[FairWeight]:
        return [FairWeight(row["namespace"], row["key"],
                           1.0 if row["weight"] is None else float(row["weight"]),
                           float(row["last_pass"]))
                for row in self._execute("list_fair_flows",
                                         {"namespace": namespace}).fetchall()]

    def set_queue_aging(self, aging: QueueAging) -> None:
        self._execute("set_queue_aging", {"namespace": aging.namespace, "queue": aging.queue,
                                          "rate": aging.rate})

    def delete_queue_aging(self, namespace: str, queue: str) -> bool:
        params = {"namespace": namespace, "queue": queue}
        return self._execute("delete_queue_aging", params).fetchone() is not None

    def list_queue_aging(self, namespace: str) -> list[QueueAging]:
        return [QueueAging(row["namespace"], row["queue"], float(row["rate"]))
                for row in self._execute("list_queue_aging",
                                         {"namespace": namespace}).fetchall()]
