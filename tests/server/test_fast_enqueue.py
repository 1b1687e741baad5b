"""The single enqueue's short way (`taskwheel.server.fast_enqueue`), per-namespace
groups of the group commit, and grouped key reads (`batching.GroupRead`), on both
stores: the short way answers exactly as the route would, and hands every request it
would refuse to the route, which refuses it as before; a namespace's refused group or
failed write touches no other namespace's requests; a key read never answers a request
that arrived after it began."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from taskwheel.errors import QuotaExceeded, StoreError
from taskwheel.jobs import JobFilter, NewJob
from taskwheel.keys import ApiKey, Role, generate_key, prefix_of
from taskwheel.quotas import Quota
from taskwheel.server.batching import GroupCommit, GroupRead, KeyRefused
from taskwheel.server.fast_enqueue import FastEnqueue
from taskwheel.stores.base import Store
from taskwheel.validators import ALL_NAMESPACES

from .conftest import MINE, THEIRS, Running, snapshot
from .server_app import add, ping


def _fast(server: Running) -> FastEnqueue:
    """The server's FastEnqueue layer, found down its middleware stack."""
    layer: Any = server.api.middleware_stack
    while not isinstance(layer, FastEnqueue):
        layer = layer.app
    return layer


def test_a_single_enqueue_takes_the_short_way_and_answers_as_the_route(
    server: Running,
) -> None:
    body = {"task": "add", "args": [1, 2], "priority": 3, "idempotency_key": "clé",
            "queue": "math", "at": "2030-01-01T00:00:00.5+01:00", "max_attempts": 4}
    first = server.call("POST", "/jobs", json=body, role=Role.OPERATE)
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    fast = _fast(server)
    assert fast.answered == 1
    job = first.json()
    assert job["existing"] is False
    shown = server.call("GET", f"/jobs/{job['id']}").json()
    assert {**shown, "existing": False} == job  # every field of the job, as GET shows it
    again = server.call("POST", "/jobs", json=body)
    assert (again.status_code, again.json()) == (200, {**job, "existing": True})
    assert fast.answered == 2


@pytest.mark.parametrize(("case", "status", "field"), [
    ("no key", 401, None),
    ("unknown key", 401, None),
    ("another namespace's key", 404, None),
    ("read role", 403, None),
    ("unknown task", 422, "task"),
    ("unknown field", 422, None),
    ("bad JSON", 400, None),
    ("not an object", 422, None),
    ("bad namespace", 404, None),
])
def test_every_refusal_is_the_routes_own_and_writes_nothing(
    server: Running, case: str, status: int, field: str | None
) -> None:
    kwargs: dict[str, Any] = {"json": {"task": "ping"}}
    namespace = MINE
    if case == "no key":
        kwargs["key"] = ""
    elif case == "unknown key":
        kwargs["key"] = "tw_" + "x" * 40
    elif case == "another namespace's key":
        kwargs["key"] = server.key(THEIRS)
    elif case == "read role":
        kwargs["role"] = Role.READ
    elif case == "unknown task":
        kwargs["json"] = {"task": "nope"}
    elif case == "unknown field":
        kwargs["json"] = {"task": "ping", "colour": "red"}
    elif case == "bad JSON":
        kwargs = {"content": b"{nope", "headers": {"Content-Type": "application/json"}}
    elif case == "not an object":
        kwargs["json"] = ["ping"]
    elif case == "bad namespace":
        namespace = "bad name!"
        kwargs["key"] = server.key(ALL_NAMESPACES)  # covers it: the name itself is refused
    before = snapshot(server.store)
    answer = server.call("POST", "/jobs", namespace=namespace, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert answer.json()["field"] == field
    assert _fast(server).answered == 0
    assert snapshot(server.store) == before


def test_an_enqueue_over_quota_is_answered_429_by_the_short_way(server: Running) -> None:
    server.store.set_quota(Quota(MINE, max_queued=1))
    assert server.call("POST", "/jobs", json={"task": "ping"}).status_code == 201
    before = snapshot(server.store)
    over = server.call("POST", "/jobs", json={"task": "ping"})
    assert over.status_code == 429, over.text
    assert over.headers["content-type"] == "application/problem+json"
    assert int(over.headers["retry-after"]) >= 1
    assert over.json()["field"] == "max_queued"
    assert _fast(server).answered == 2
    assert snapshot(server.store) == before


def test_a_revoked_key_is_refused_at_the_next_single_enqueue(server: Running) -> None:
    key = server.key(MINE, Role.OPERATE)
    assert server.call("POST", "/jobs", json={"task": "ping"}, key=key).status_code == 201
    prefix = next(k.prefix for k in server.store.list_api_keys()
                  if k.namespace == MINE and k.role is Role.OPERATE)
    server.store.revoke_api_key(prefix)
    refused = server.call("POST", "/jobs", json={"task": "ping"}, key=key)
    assert refused.status_code == 401, refused.text


def test_groups_are_per_namespace_so_a_quota_refusal_spares_the_other(store: Store) -> None:
    store.set_quota(Quota(MINE, max_queued=2))
    enqueues = GroupCommit(store)

    async def together() -> list[object]:
        requests = [ping.request(namespace=ns) for ns in (MINE, THEIRS) for _ in range(4)]
        return await asyncio.gather(*(enqueues.enqueue(r) for r in requests),
                                    return_exceptions=True)

    answers = asyncio.run(together())
    mine, theirs = answers[:4], answers[4:]
    # team-a's group of four is over its quota of two: written again one by one, so
    # two jobs and two refusals; team-b's group is written whole, in a group of its own.
    assert [type(a) for a in mine] == [tuple, tuple, QuotaExceeded, QuotaExceeded], mine
    assert all(isinstance(a, tuple) and not a[1] for a in theirs), theirs
    assert enqueues.groups == 2
    assert len(store.list_jobs(MINE, JobFilter(limit=100))) == 2
    assert len(store.list_jobs(THEIRS, JobFilter(limit=100))) == 4


class _FailingFor:
    """A store whose enqueue fails, as a lost connection would, for one namespace."""

    def __init__(self, store: Store, namespace: str) -> None:
        self._store = store
        self._namespace = namespace
        self.calls = 0

    def enqueue(self, requests: list[NewJob]) -> Any:
        self.calls += 1
        if any(request.namespace == self._namespace for request in requests):
            raise StoreError("enqueue", "connection lost")
        return self._store.enqueue(requests)


def test_a_database_error_fails_exactly_the_requests_of_its_group(store: Store) -> None:
    failing = _FailingFor(store, MINE)
    enqueues = GroupCommit(failing)  # type: ignore[arg-type]

    async def together() -> list[object]:
        requests = [add.request([i, i], namespace=ns) for ns in (MINE, THEIRS)
                    for i in range(3)]
        return await asyncio.gather(*(enqueues.enqueue(r) for r in requests),
                                    return_exceptions=True)

    answers = asyncio.run(together())
    assert (enqueues.groups, failing.calls) == (2, 2)  # one write per namespace: the
    # failed group is not written again one by one
    assert all(isinstance(a, StoreError) for a in answers[:3]), answers
    assert [a[0].args for a in answers[3:] if isinstance(a, tuple)] == [[0, 0], [1, 1], [2, 2]]
    assert store.list_jobs(MINE, JobFilter(limit=100)) == []


def test_keys_asked_together_share_one_read_each_read_once() -> None:
    reads: list[str] = []

    def read(key: str) -> str:
        reads.append(key)
        return key.upper()

    grouped: GroupRead[str, str] = GroupRead(read)

    async def together() -> list[str]:
        return await asyncio.gather(*(grouped.get(k) for k in "abab"))

    assert asyncio.run(together()) == ["A", "B", "A", "B"]
    assert grouped.groups == 1
    assert reads == ["a", "b"]


def test_a_key_asked_during_a_read_is_read_again_after_it() -> None:
    """A request that arrives while a read is in flight is not answered by it: the
    read may have begun before a change (a revoke) that the request must see."""
    values = {"k": "live"}
    in_read = threading.Event()
    release = threading.Event()

    def read(key: str) -> str:
        value = values[key]
        in_read.set()
        release.wait(10)
        return value

    grouped: GroupRead[str, str] = GroupRead(read)

    async def scenario() -> tuple[str, str]:
        first = asyncio.ensure_future(grouped.get("k"))
        await asyncio.to_thread(in_read.wait, 10)
        values["k"] = "revoked"  # changed after the first read took its value
        second = asyncio.ensure_future(grouped.get("k"))
        await asyncio.sleep(0)
        release.set()
        return await first, await second

    assert asyncio.run(scenario()) == ("live", "revoked")
    assert grouped.groups == 2


def test_a_keyed_group_reads_each_key_once_and_a_refused_key_spares_the_rest(
    store: Store,
) -> None:
    store.set_quota(Quota(MINE, max_queued=1))
    new = generate_key(MINE, Role.OPERATE)
    store.create_api_key(new)
    prefix = prefix_of(new.key)
    assert prefix is not None
    seen: list[ApiKey | None] = []

    def allows(key: ApiKey | None) -> bool:
        seen.append(key)
        return key is not None and key.matches(new.key)

    enqueues = GroupCommit(store)

    async def together() -> list[object]:
        keyed = [enqueues.enqueue_keyed(ping.request(namespace=MINE), (prefix, allows))
                 for _ in range(2)]
        refused = enqueues.enqueue_keyed(ping.request(namespace=MINE),
                                         ("tw_unknown", allows))
        return await asyncio.gather(*keyed, refused, return_exceptions=True)

    first, second, third = asyncio.run(together())
    assert enqueues.groups == 1
    # Two requests of one key, one of an unknown key: each check is given what was
    # read for its prefix (nothing for the unknown one).
    assert sorted(key.prefix if key else "" for key in seen) == ["", prefix, prefix]
    assert isinstance(third, KeyRefused)
    # The two allowed ones are over the quota of one together: each gets its own answer.
    assert isinstance(first, tuple)
    assert isinstance(second, QuotaExceeded)
    assert len(store.list_jobs(MINE, JobFilter(limit=100))) == 1
