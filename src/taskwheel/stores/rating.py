"""Rate limits per key in the stores (`taskwheel.rates`): the statements, written once
for both dialects as `dispatch.DispatchStatements` are, and the store's operations,
written once over them.

The enqueue gives a rate-limited job its key and sends it to wait; the holder of the
maintenance lease admits the waiting jobs of each key in one transaction per pass
(`RateControl.admit_rated_jobs`): it locks the buckets that have waiting jobs, reads
what the admitted and not started jobs of each key cost (one grouped read), asks
`rates.plan_admission`, queues the jobs it admits and writes the buckets back. A claim
reads none of this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from taskwheel.clock import to_datetime
from taskwheel.errors import RateNotFound
from taskwheel.events import Event, EventKind
from taskwheel.jobs import Enqueued, Job, JobTemplate, NewJob
from taskwheel.lifecycle import JobStatus
from taskwheel.limits import validate_key
from taskwheel.rates import (
    AdmissionPass,
    Bucket,
    KeyRate,
    Waiting,
    affordable,
    parse_rate,
    plan_admission,
    validate_burst,
)
from taskwheel.stores.tenancy import Cursor
from taskwheel.validators import ALL_NAMESPACES, validate_name

if TYPE_CHECKING:
    from taskwheel.events import Events
    from taskwheel.stores.executor import Access, Executor

# Waiting jobs read for one key in one pass, at most: a pass admits no more than a
# bucket holds, and a burst this large is a limit in name only.
_MOST_PER_PASS = 10_000
# Waiting jobs read beyond the burst, for the ones a pass passes over (their concurrency
# key has no free slot): a key with more such jobs ahead admits only those behind them
# that fit in this many, until slots free.
_PASSED_OVER = 100


class RateStatements:
    """The rate limits' statements over a dialect's `_execute`."""

    def _execute(self, name: str, params: dict[str, Any]) -> Cursor:
        raise NotImplementedError

    def _stamped(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _announce_ready(self, namespace: str) -> None:
        raise NotImplementedError

    def arm_rates(self) -> None:
        """Make sure rate-limited jobs wait for admission (SQLite creates its trigger
        with the first bucket; PostgreSQL's always exists)."""
        raise NotImplementedError

    def declare_rates(self, jobs: Sequence[NewJob | tuple[str, JobTemplate]]) -> None:
        """The rate keys of new jobs (requests, or a namespace's templates: a fire's
        job, a workflow's steps) with the rates their tasks declare."""
        rated = [(new.namespace, new.rate_key, new.rate_declared)
                 if isinstance(new, NewJob) else
                 (new[0], new[1].rate_key, new[1].rate_declared) for new in jobs]
        declared = sorted({row for row in rated if row[1] is not None and row[2] is not None},
                          key=lambda row: (row[0], row[1]))
        if declared:
            rates = [{"namespace": namespace, "key": key, "rate": rule[0], "burst": rule[1]}
                     for namespace, key, rule in declared if rule is not None]
            self._execute("declare_rates", self._stamped({"rates": json.dumps(rates)}))

    def set_rate_keys(self, keyed: Sequence[tuple[Job, str, int]]) -> None:
        if keyed:
            keys = [{"id": job.id, "key": key, "cost": cost} for job, key, cost in keyed]
            self._execute("set_rate_keys", {"keys": json.dumps(keys)})

    def set_rate(self, namespace: str, key: str, rate: float, burst: int) -> None:
        self._execute("set_rate", self._stamped({"namespace": namespace, "key": key,
                                                 "rate": rate, "burst": burst}))

    def lock_rate_buckets(self, namespace: str, key: str | None = None
                          ) -> dict[str, Bucket]:
        found = self._execute("lock_rate_buckets", {"namespace": namespace, "key": key})
        return {str(row["key"]): Bucket(float(row["rate"]), int(row["burst"]),
                                        float(row["tokens"]), int(row["held"]),
                                        float(row["refilled_at"]))
                for row in found.fetchall()}

    def rate_outstanding(self, namespace: str) -> dict[str, int]:
        found = self._execute("rate_outstanding", {"namespace": namespace})
        return {str(row["key"]): int(row["cost"]) for row in found.fetchall()}

    def rate_waiting_jobs(
        self, namespace: str, limits: Mapping[str, int]
    ) -> dict[str, list[Waiting]]:
        found: dict[str, list[Waiting]] = {key: [] for key in limits}
        for key, row in self._rate_waiting_rows(namespace, limits):
            found[key].append(Waiting(int(row["id"]), int(row["rate_cost"]), row["gate_key"],
                                      None if row["room"] is None else int(row["room"])))
        return found

    def _admit_rated(self, ids: str) -> int:
        """admit_rated for the jobs ``ids`` (JSON); how many it queued (its one row's
        count on PostgreSQL, its rows on SQLite)."""
        raise NotImplementedError

    def _rate_waiting_rows(
        self, namespace: str, limits: Mapping[str, int]
    ) -> list[tuple[str, Any]]:
        """The rows of rate_waiting_jobs, each with its key, in each key's dispatch
        order: one statement for every key on PostgreSQL, one per key on SQLite."""
        raise NotImplementedError

    def admit_rated(self, namespace: str, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        admitted = self._admit_rated(json.dumps(list(ids)))
        if admitted:
            self._announce_ready(namespace)
        return admitted

    def save_buckets(self, namespace: str, buckets: dict[str, Bucket]) -> None:
        if buckets:
            rows = [{"key": key, "tokens": bucket.tokens, "held": bucket.held}
                    for key, bucket in buckets.items()]
            self._execute("save_buckets", self._stamped({"namespace": namespace,
                                                         "buckets": json.dumps(rows)}))

    def job_rate_key(self, job_id: int) -> str | None:
        row = self._execute("job_rate_key", {"id": job_id}).fetchone()
        return None if row is None or row["rate_key"] is None else str(row["rate_key"])

    def list_rates(self, namespace: str, key: str | None = None) -> list[KeyRate]:
        found = self._execute("list_rates", {"namespace": namespace, "key": key})
        return [KeyRate(namespace=row["namespace"], key=row["key"], rate=float(row["rate"]),
                        burst=int(row["burst"]), set_by_hand=bool(row["set_by_hand"]),
                        tokens=float(row["tokens"]),
                        refilled_at=to_datetime(row["refilled_at"]),
                        waiting=int(row["waiting"]), admitted=int(row["admitted"]))
                for row in found.fetchall()]


class RateControl:
    """The store's operations on rate limits (mixed into `SQLStore`)."""

    events: Events

    def executor(self, operation: str, access: Access = "transaction", *,
                 pipeline: bool = False) -> AbstractContextManager[Executor]:
        raise NotImplementedError

    def set_rate(self, namespace: str, key: str, rate: str | float,
                 burst: int | None = None) -> KeyRate:
        """Set a key's rate (``"100/min"``, tokens per second) and burst at run time,
        whether or not a job of it was enqueued yet (burst: the key's, or 1 for a new
        key); a task's declaration no longer changes them. The next admission pass
        uses them. Every error names its field; nothing is written."""
        validate_name(namespace, "namespace")
        validate_key(key)
        per_second = parse_rate(rate)
        if burst is not None:
            validate_burst(burst)
        with self.executor("set_rate") as tx:
            if burst is None:
                known = tx.list_rates(namespace, key)
                burst = known[0].burst if known else 1
            tx.arm_rates()
            tx.set_rate(namespace, key, per_second, burst)
            found = tx.list_rates(namespace, key)
        return found[0]

    def get_rate(self, namespace: str, key: str) -> KeyRate:
        """A key's rate limit; `RateNotFound` when it has none."""
        validate_name(namespace, "namespace")
        validate_key(key)
        with self.executor("get_rate", "read") as ex:
            found = ex.list_rates(namespace, key)
        if not found:
            raise RateNotFound(key)
        return found[0]

    def list_rates(self, namespace: str) -> list[KeyRate]:
        """The namespace's rate-limited keys by name, each with its jobs waiting for
        tokens and admitted."""
        validate_name(namespace, "namespace")
        with self.executor("list_rates", "read") as ex:
            return list(ex.list_rates(namespace))

    def admit_rated_jobs(self, namespace: str, key: str | None = None) -> int:
        """Admit the waiting jobs of ``namespace``'s keys (``key`` alone, when given)
        as their buckets allow, in one transaction; how many (`admission_pass` says
        more)."""
        return self.admission_pass(namespace, key).admitted

    def admission_pass(self, namespace: str, key: str | None = None) -> AdmissionPass:
        """`admit_rated_jobs`, and what is left waiting. Run by the holder of the
        maintenance lease (`maintenance.admitter`); safe beside another holder during
        a handover (the buckets are locked)."""
        if key is not None:
            validate_key(key)
        admitted: dict[tuple[str, str], int] = {}
        waiting, tokens_at = False, None
        with self.executor("admit_rated_jobs") as tx:
            now = tx.now()
            scope = tx.namespaces() if namespace == ALL_NAMESPACES else [namespace]
            for each in scope:
                by_key, left = _admit_namespace(tx, each, key, now)
                admitted.update({(each, rated): count for rated, count in by_key.items()})
                waiting = waiting or left.waiting
                tokens_at = _sooner(tokens_at, left.tokens_at)
        if self.events.wants(EventKind.RATE_ADMITTED):
            for (each, rated), count in admitted.items():
                self.events.emit(Event(EventKind.RATE_ADMITTED, each, now,
                                       measurements={"admitted": count},
                                       metadata={"key": rated}))
        return AdmissionPass(sum(admitted.values()), waiting, tokens_at)


def _sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two times, either of which may be unknown (None)."""
    return b if a is None else a if b is None else min(a, b)


def _admit_namespace(tx: Executor, namespace: str, key: str | None, now: float
                     ) -> tuple[dict[str, int], AdmissionPass]:
    """One admission pass over a namespace's buckets with waiting jobs: the jobs
    admitted per key, and the pass."""
    buckets = tx.lock_rate_buckets(namespace, key)
    if not buckets:
        return {}, AdmissionPass()
    outstanding = tx.rate_outstanding(namespace)
    # As many waiting jobs of each key as its tokens could pay for, and the one after
    # (where the tokens stop): a pass reads what it admits, not the whole burst, for all
    # of its keys at once. Only for keys whose jobs were passed over for a slot (and
    # whose tokens did not run out) are more read.
    limits = {each: min(affordable(bucket, now) + 1, _MOST_PER_PASS)
              for each, bucket in buckets.items()}
    waiting = tx.rate_waiting_jobs(namespace, limits)
    plans = {each: plan_admission(bucket, now, outstanding.get(each, 0), waiting[each])
             for each, bucket in buckets.items()}
    more = {each: min(bucket.burst + _PASSED_OVER, _MOST_PER_PASS)
            for each, bucket in buckets.items()
            if plans[each].stopped_at is None and len(waiting[each]) == limits[each]}
    if more:
        again = tx.rate_waiting_jobs(namespace, more)
        plans.update({each: plan_admission(buckets[each], now, outstanding.get(each, 0),
                                           again[each]) for each in more})
    saved: dict[str, Bucket] = {}
    chosen: list[int] = []
    admitted: dict[str, int] = {}
    waiting_left, tokens_at = False, None
    for each, bucket in buckets.items():
        plan = plans[each]
        saved[each] = plan.bucket
        chosen.extend(plan.admitted)
        if plan.admitted:
            admitted[each] = len(plan.admitted)
        # Jobs passed over for a slot wait for the slot; one that costs more than the
        # burst (lowered by hand below it) waits for a larger burst: no pass soon.
        if plan.stopped_at is not None and plan.stopped_at <= bucket.burst:
            waiting_left = True
            tokens_at = _sooner(tokens_at, plan.tokens_at())
    tx.admit_rated(namespace, chosen)
    tx.save_buckets(namespace, saved)
    return admitted, AdmissionPass(sum(admitted.values()), waiting_left, tokens_at)


def waiting_for_tokens(tx: Executor, created: Enqueued, jobs: Sequence[NewJob]) -> Enqueued:
    """Give an enqueue's new rate-limited jobs their keys and costs (a ready one waits
    for its admission instead); the answer, with those jobs shown waiting."""
    keyed = [(job, new.rate_key, new.rate_cost) for job, new, existing
             in zip(created, jobs, created.existing, strict=True)
             if new.rate_key is not None and not existing]
    if not keyed:
        return created
    tx.set_rate_keys(keyed)
    sent = {job.id for job, _, _ in keyed}
    return Enqueued([replace(job, status=JobStatus.WAITING)
                     if job.id in sent and job.status is JobStatus.QUEUED else job
                     for job in created], created.existing)


def rate_of_waiting(ex: Executor, job: Job) -> KeyRate | None:
    """The bucket a waiting job waits for the tokens of, if it does (`jobs explain`):
    none for a workflow step waiting for its dependencies or a fire for its turn."""
    if job.status is not JobStatus.WAITING:
        return None
    key = ex.job_rate_key(job.id)
    if key is None:
        return None
    found = ex.list_rates(job.namespace, key)
    return found[0] if found else None
