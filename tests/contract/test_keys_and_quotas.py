"""API keys and namespace quotas on every store: keys are kept as digests, found by
prefix and revoked for good; an enqueue over a namespace's quota raises QuotaExceeded
and writes nothing, and a namespace without a quota is not limited."""

from __future__ import annotations

import pytest

from taskwheel.clock import ManualClock
from taskwheel.errors import ApiKeyNotFound, InvalidInput, QuotaExceeded
from taskwheel.jobs import JobFilter
from taskwheel.keys import Role, generate_key, prefix_of
from taskwheel.quotas import Quota
from taskwheel.stores.base import Store
from taskwheel.validators import ALL_NAMESPACES

from .conftest import NS, OTHER_NS, T0, enqueue_one, new_job
from .test_schedules import definition


def test_a_stored_key_keeps_a_digest_and_is_found_by_its_prefix(store: Store) -> None:
    new = generate_key(NS, Role.OPERATE, "ci")
    stored = store.create_api_key(new)
    found = store.get_api_key(new.prefix)
    assert found == stored
    assert found is not None
    assert new.key not in repr(found.to_dict())
    assert found.digest != new.key
    assert prefix_of(new.key) == new.prefix
    assert found.matches(new.key)
    assert not found.matches(new.key + "x")
    assert (found.namespace, found.role, found.name, found.revoked) == (NS, Role.OPERATE,
                                                                        "ci", False)
    assert found.created_at.timestamp() == T0


def test_keys_are_listed_by_namespace_without_secrets(store: Store) -> None:
    mine = store.create_api_key(generate_key(NS, Role.READ))
    theirs = store.create_api_key(generate_key(OTHER_NS, Role.ADMIN))
    operator = store.create_api_key(generate_key(ALL_NAMESPACES, Role.ADMIN))
    assert store.list_api_keys(NS) == [mine]
    assert {key.prefix for key in store.list_api_keys()} == {
        mine.prefix, theirs.prefix, operator.prefix}
    assert all("digest" not in key.to_dict() for key in store.list_api_keys())


def test_a_revoked_key_stays_revoked_from_its_first_revocation(
    store: Store, clock: ManualClock
) -> None:
    key = store.create_api_key(generate_key(NS, Role.ADMIN))
    clock.advance(5)
    first = store.revoke_api_key(key.prefix)
    clock.advance(5)
    again = store.revoke_api_key(key.prefix)
    assert first.revoked_at is not None
    assert first.revoked_at.timestamp() == T0 + 5
    assert again.revoked_at == first.revoked_at
    found = store.get_api_key(key.prefix)
    assert found is not None
    assert found.revoked
    with pytest.raises(ApiKeyNotFound):
        store.revoke_api_key("nosuchkey")


def test_a_namespace_without_a_quota_is_not_limited(store: Store) -> None:
    store.set_quota(Quota(OTHER_NS, max_queued=0))
    assert store.get_quota(NS) == Quota(NS)
    assert len(store.enqueue([new_job() for _ in range(100)])) == 100


def test_an_enqueue_past_max_queued_raises_and_writes_nothing(store: Store) -> None:
    store.set_quota(Quota(NS, max_queued=3))
    enqueue_one(store)
    enqueue_one(store)
    with pytest.raises(QuotaExceeded) as raised:
        store.enqueue([new_job(), new_job()])
    assert raised.value.limit == "max_queued"
    assert raised.value.namespace == NS
    assert len(store.list_jobs(NS, JobFilter())) == 2
    enqueue_one(store)  # the third fits
    with pytest.raises(QuotaExceeded):
        enqueue_one(store)
    # Big batches (written by COPY on PostgreSQL) are judged too.
    store.set_quota(Quota(NS, max_queued=100))
    with pytest.raises(QuotaExceeded):
        store.enqueue([new_job() for _ in range(98)])
    assert len(store.list_jobs(NS, JobFilter())) == 3


def test_the_enqueue_rate_refills_with_time_and_says_when(
    store: Store, clock: ManualClock
) -> None:
    store.set_quota(Quota(NS, max_enqueue_rate=10.0))
    store.enqueue([new_job() for _ in range(10)])  # a full bucket: one second's worth
    with pytest.raises(QuotaExceeded) as raised:
        store.enqueue([new_job() for _ in range(5)])
    assert raised.value.limit == "max_enqueue_rate"
    assert raised.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert len(store.enqueue([new_job() for _ in range(5)])) == 5
    with pytest.raises(InvalidInput) as too_big:
        store.enqueue([new_job() for _ in range(11)])
    assert too_big.value.field == "jobs"
    assert len(store.list_jobs(NS, JobFilter(limit=1000))) == 15


def test_a_refused_batch_of_two_namespaces_writes_neither(store: Store) -> None:
    store.set_quota(Quota(OTHER_NS, max_queued=0))
    with pytest.raises(QuotaExceeded):
        store.enqueue([new_job(), new_job(namespace=OTHER_NS)])
    assert store.list_jobs(NS, JobFilter()) == []


def test_removing_every_limit_removes_the_quota(store: Store) -> None:
    store.set_quota(Quota(NS, max_queued=0))
    store.set_quota(Quota(NS))
    assert store.get_quota(NS) == Quota(NS)
    enqueue_one(store)


def test_active_schedules_past_the_limit_are_refused(store: Store) -> None:
    store.set_quota(Quota(NS, max_active_schedules=1))
    store.upsert_schedule(definition("first"))
    with pytest.raises(QuotaExceeded) as raised:
        store.upsert_schedule(definition("second"))
    assert raised.value.limit == "max_active_schedules"
    assert [s.name for s in store.list_schedules(NS)] == ["first"]
    store.upsert_schedule(definition("first", priority=3))  # updating one is no new one
    store.set_schedule_paused(NS, "first", True)
    store.upsert_schedule(definition("second"))
    # At the limit, a paused one is written again: it stays paused, so no new one.
    store.upsert_schedule(definition("first", priority=4))
    assert store.get_schedule(NS, "first").paused
    with pytest.raises(QuotaExceeded):
        store.set_schedule_paused(NS, "first", False)
    assert store.get_schedule(NS, "first").paused


def test_a_batch_of_schedules_past_the_limit_is_refused_whole(store: Store) -> None:
    store.set_quota(Quota(NS, max_active_schedules=2))
    store.upsert_schedule(definition("first"))
    store.set_schedule_paused(NS, "first", True)
    store.upsert_schedule(definition("second"))

    with pytest.raises(QuotaExceeded) as raised:
        store.upsert_schedules([definition("third"), definition("fourth")])

    assert raised.value.limit == "max_active_schedules"
    assert "past the limit of 2" in str(raised.value)
    assert [s.name for s in store.list_schedules(NS)] == ["first", "second"]
    # The paused one written again stays paused, the changed one was active: room for one.
    assert store.upsert_schedules([
        definition("first", priority=1), definition("second", priority=1),
        definition("third")]) == [True, True, True]
    assert store.get_schedule(NS, "first").paused


def test_quota_values_are_checked() -> None:
    with pytest.raises(InvalidInput) as raised:
        Quota(NS, max_enqueue_rate=0)
    assert raised.value.field == "max_enqueue_rate"
    with pytest.raises(InvalidInput):
        Quota(NS, max_queued=-1)
