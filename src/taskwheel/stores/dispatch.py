"""The statements of dispatch control — pauses, queues' maximum depths, key gates, fair
shares and aging — written
once for both dialects, as `tenancy.TenancyStatements` is: the same query names and
parameters in both ``queries.sql`` files, a dialect supplying `_execute`, `_stamped`,
`_announce_ready` (how it wakes workers for jobs that became claimable without
changing state: SQLite after its commit, PostgreSQL with a NOTIFY in the transaction),
and `arm_gates` / `disarm_gates` (SQLite creates its gate triggers while a gate is
closed; PostgreSQL's are permanent) and `arm_limits` (SQLite creates its slot triggers
with the first key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from taskwheel.breakers import BreakerState, BreakerStatus, KeyBreaker
from taskwheel.clock import to_datetime
from taskwheel.fairness import FairWeight, Flow, NamespaceWeight, QueueAging, QueueReserve
from taskwheel.gates import GateKind, Pause, QueueLimit
from taskwheel.jobs import Job, JobTemplate, NewJob, epoch_datetime
from taskwheel.limits import BreakerRule, KeyLimit
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
        """After `delete_pause`: the jobs the gate held go back to the ready index, the
        keyed ones as their keys' free slots admit them (in dispatch order); how many."""
        params = {"namespace": namespace, "kind": kind.value, "name": name}
        released = len(self._execute("unblock_jobs", params).fetchall())
        held = [str(row["key"]) for row in self._execute("held_keys", params).fetchall()]
        if held:
            self.lock_slots(namespace)
            released += self._admit(namespace, held)
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

    # -- key gates ------------------------------------------------------------------------

    def arm_limits(self) -> None:
        raise NotImplementedError

    def lock_slots(self, namespace: str) -> None:
        self._execute("lock_slots", {"namespace": namespace}).fetchall()

    def declare_limits(self, jobs: Sequence[NewJob | tuple[str, JobTemplate]]) -> None:
        """The keys of new jobs (requests, or a namespace's templates: a fire's job, a
        workflow's steps) with the limits and breaker rules their tasks declare."""
        gates = [(new.namespace, new.gate_key, new.gate_capacity, new.gate_breaker)
                 if isinstance(new, NewJob) else
                 (new[0], new[1].gate_key, new[1].gate_capacity, new[1].gate_breaker)
                 for new in jobs]
        declared = sorted({gate for gate in gates if gate[1] is not None},
                          key=lambda row: (row[0], row[1]))
        if declared:
            limits = [{"namespace": namespace, "key": key, "capacity": capacity,
                       "failures": None if rule is None else rule[0],
                       "window": None if rule is None else rule[1],
                       "cooldown": None if rule is None else rule[2],
                       "rate": None if rule is None else rule[3]}
                      for namespace, key, capacity, rule in declared]
            self._execute("declare_limits", self._stamped({"limits": json.dumps(limits)}))

    def set_gate_keys(self, keyed: Sequence[tuple[Job, str]]) -> None:
        if keyed:
            keys = [{"id": job.id, "key": key} for job, key in keyed]
            self._execute("set_gate_keys", {"keys": json.dumps(keys)})

    def admit_waiting(self, namespace: str, keys: Sequence[str]) -> int:
        admitted = self._admit(namespace, keys) if keys else 0
        if admitted:
            self._announce_ready(namespace)
        return admitted

    def _admit(self, namespace: str, keys: Sequence[str]) -> int:
        """How many the admit_waiting statement admitted (its answer is the
        dialect's)."""
        raise NotImplementedError

    def set_limit(self, namespace: str, key: str, capacity: int | None) -> None:
        self._execute("set_limit", self._stamped({"namespace": namespace, "key": key,
                                                  "capacity": capacity}))

    def pause_key(self, namespace: str, key: str, until: float | None) -> bool:
        params = self._stamped({"namespace": namespace, "key": key, "until": until})
        return self._execute("pause_key", params).fetchone() is not None

    def block_key(self, namespace: str, key: str) -> int:
        return len(self._execute("block_key", {"namespace": namespace, "key": key}).fetchall())

    def resume_key(self, namespace: str, key: str) -> bool:
        params = {"namespace": namespace, "key": key}
        return self._execute("resume_key", params).fetchone() is not None

    def due_key_pauses(self, namespace: str) -> list[str]:
        found = self._execute("due_key_pauses", self._stamped({"namespace": namespace}))
        return [str(row["key"]) for row in found.fetchall()]

    def waiting_keys(self, namespace: str) -> list[str]:
        found = self._execute("waiting_keys", {"namespace": namespace})
        return [str(row["key"]) for row in found.fetchall()]

    def list_limits(self, namespace: str, key: str | None = None) -> list[KeyLimit]:
        found = self._execute("list_limits", {"namespace": namespace, "key": key})
        return [KeyLimit(namespace=row["namespace"], key=row["key"],
                         capacity=None if row["capacity"] is None else int(row["capacity"]),
                         in_use=int(row["in_use"]), waiting=int(row["waiting"]),
                         set_by_hand=bool(row["set_by_hand"]),
                         paused_at=to_datetime(row["paused_at"]),
                         paused_until=to_datetime(row["paused_until"]),
                         breaker=str(row["breaker_state"]),
                         breaker_until=to_datetime(row["breaker_until"]),
                         failures=int(row["failures"]), attempts=int(row["attempts"]),
                         breaker_rule=_rule(row))
                for row in found.fetchall()]

    def job_gate(self, namespace: str, job_id: int) -> tuple[str | None, bool]:
        """A job's key (None: no key gate holds it) and whether it waits blocked."""
        row = self._execute("job_gate", {"namespace": namespace, "id": job_id}).fetchone()
        if row is None:
            return None, False
        return row["gate_key"], bool(row["blocked"])

    def touch_limit(self, namespace: str, key: str) -> None:
        self._execute("touch_limit", self._stamped({"namespace": namespace, "key": key}))

    def breaker_states(self, job_ids: Sequence[int], tripped: Sequence[int]
                       ) -> list[KeyBreaker]:
        found = self._execute("breaker_states", {"ids": json.dumps(list(job_ids)),
                                                 "tripped": json.dumps(list(tripped))})
        return [_breaker(row) for row in found.fetchall()]

    def key_breaker(self, namespace: str, key: str) -> KeyBreaker | None:
        row = self._execute("key_breaker", {"namespace": namespace, "key": key}).fetchone()
        return None if row is None else _breaker(row)

    def set_breaker(self, namespace: str, key: str, state: BreakerState) -> None:
        self._execute("set_breaker", {"namespace": namespace, "key": key,
                                      "state": state.state.value, "failures": state.failures,
                                      "attempts": state.attempts,
                                      "window_started": state.window_started,
                                      "until": state.until})

    def due_breakers(self, namespace: str) -> list[str]:
        found = self._execute("due_breakers", self._stamped({"namespace": namespace}))
        return [str(row["key"]) for row in found.fetchall()]

    # -- fair shares and aging --------------------------------------------------------------

    def uses_placing(self, namespace: str) -> bool:
        row = self._execute("uses_placing", {"namespace": namespace}).fetchone()
        assert row is not None
        return bool(row["found"])

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
                                          "rate": aging.rate, "cap": aging.cap})

    def delete_queue_aging(self, namespace: str, queue: str) -> bool:
        params = {"namespace": namespace, "queue": queue}
        return self._execute("delete_queue_aging", params).fetchone() is not None

    def list_queue_aging(self, namespace: str) -> list[QueueAging]:
        return [QueueAging(row["namespace"], row["queue"], float(row["rate"]),
                           None if row["cap"] is None else int(row["cap"]))
                for row in self._execute("list_queue_aging",
                                         {"namespace": namespace}).fetchall()]

    def set_queue_reserve(self, reserve: QueueReserve) -> None:
        self._execute("set_queue_reserve", {
            "namespace": reserve.namespace, "queue": reserve.queue, "share": reserve.share,
            "below": reserve.below})

    def delete_queue_reserve(self, namespace: str, queue: str) -> bool:
        params = {"namespace": namespace, "queue": queue}
        return self._execute("delete_queue_reserve", params).fetchone() is not None

    def list_queue_reserves(self, namespace: str) -> list[QueueReserve]:
        return [_reserve(row) for row in self._execute("list_queue_reserves",
                                                        {"namespace": namespace}).fetchall()]

    def claimed_reserves(
        self, namespaces: Sequence[str], queues: Sequence[str]
    ) -> list[tuple[QueueReserve, QueueAging | None]]:
        found = self._execute("claimed_reserves", {
            "namespaces": self._name_list(namespaces),
            "queues": self._name_list(queues)}).fetchall()
        return [(_reserve(row), None if row["rate"] is None else QueueAging(
                    row["namespace"], row["queue"], float(row["rate"]),
                    None if row["cap"] is None else int(row["cap"])))
                for row in found]

    # -- weights between namespaces ---------------------------------------------------------

    def namespace_weights(self, namespaces: Sequence[str]) -> dict[str, float]:
        found = self._execute("namespace_weights", {"namespaces": self._name_list(
            namespaces)})
        return {str(row["namespace"]): float(row["weight"]) for row in found.fetchall()}

    def _name_list(self, names: Sequence[str]) -> Any:
        """A list of names (namespaces, queues) as the dialect's statements take one."""
        raise NotImplementedError

    def set_namespace_weight(self, weight: NamespaceWeight) -> None:
        self._execute("set_namespace_weight", {"namespace": weight.namespace,
                                               "weight": weight.weight})

    def delete_namespace_weight(self, namespace: str) -> bool:
        found = self._execute("delete_namespace_weight", {"namespace": namespace})
        return found.fetchone() is not None

    def list_namespace_weights(self) -> list[NamespaceWeight]:
        return [NamespaceWeight(row["namespace"], float(row["weight"]))
                for row in self._execute("list_namespace_weights", {}).fetchall()]


def _rule(row: Any) -> BreakerRule | None:
    if row["breaker_failures"] is None:
        return None
    rate = row["breaker_failure_rate"]
    return (int(row["breaker_failures"]), float(row["breaker_window"]),
            float(row["breaker_cooldown"]), None if rate is None else float(rate))


def _breaker(row: Any) -> KeyBreaker:
    state = BreakerState(BreakerStatus(row["breaker_state"]), int(row["failures"]),
                         row["window_started"], row["breaker_until"], int(row["attempts"]))
    return KeyBreaker(int(row["id"]) if "id" in row.keys() else None,  # noqa: SIM118
                      str(row["namespace"]), str(row["key"]), state, _rule(row))


def _reserve(row: Any) -> QueueReserve:
    return QueueReserve(row["namespace"], row["queue"], float(row["share"]), int(row["below"]))
