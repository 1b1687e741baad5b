"""Weights between namespaces on every store (`taskwheel.stores.shares`): a claim over
several namespaces of which one has a weight divides its jobs between them by weight
under saturation, a namespace that was idle banks no credit, each namespace keeps its
own dispatch order, weights apply from the next claim, claims without weights are as
they were, and bad weights are refused with nothing written."""

from __future__ import annotations

from collections import Counter

import pytest

from taskwheel.client import Client
from taskwheel.errors import InvalidInput, NamespaceWeightNotFound
from taskwheel.fairness import NamespaceWeight
from taskwheel.jobs import Job
from taskwheel.stores.base import Store
from taskwheel.stores.claims import ClaimRequest

from .conftest import NS, OTHER_NS, QUEUE, TTL, new_job

THIRD_NS = "third"


def claim(store: Store, count: int, namespaces: tuple[str, ...] = (NS, OTHER_NS)) -> list[Job]:
    return store.claim(ClaimRequest("w1", namespaces, (QUEUE,), count, TTL)).jobs


def flood(store: Store, namespace: str, count: int, priority: int = 0) -> None:
    store.enqueue([new_job(namespace=namespace, priority=priority) for _ in range(count)])


def by_namespace(jobs: list[Job]) -> Counter[str]:
    return Counter(job.namespace for job in jobs)


@pytest.mark.parametrize("batch", [1, 4])
def test_namespaces_of_weights_1_and_3_get_their_shares_of_a_saturated_worker(
    store: Store, batch: int
) -> None:
    store.set_namespace_weight(NamespaceWeight(OTHER_NS, 3))
    flood(store, NS, 100)
    flood(store, OTHER_NS, 100)
    taken: list[Job] = []
    for _ in range(40 // batch):
        taken += claim(store, batch)
    counts = by_namespace(taken)
    assert sum(counts.values()) == 40
    assert abs(counts[NS] - 10) <= 1, counts
    assert abs(counts[OTHER_NS] - 30) <= 1, counts


def test_a_high_priority_flood_of_one_namespace_does_not_take_another_s_share(
    store: Store,
) -> None:
    store.set_namespace_weight(NamespaceWeight(NS, 1))
    flood(store, NS, 50, priority=0)
    flood(store, OTHER_NS, 50, priority=9)
    counts = by_namespace(claim(store, 10) + claim(store, 10))
    assert counts == {NS: 10, OTHER_NS: 10}


def test_without_weights_a_claim_of_several_namespaces_merges_them_by_priority(
    store: Store,
) -> None:
    flood(store, NS, 20, priority=0)
    flood(store, OTHER_NS, 20, priority=9)
    assert by_namespace(claim(store, 10)) == {OTHER_NS: 10}


def test_each_namespace_keeps_its_own_dispatch_order(store: Store) -> None:
    store.set_namespace_weight(NamespaceWeight(OTHER_NS, 1))
    low = store.enqueue([new_job(namespace=NS, priority=p) for p in (1, 5, 3)])
    flood(store, OTHER_NS, 10)
    taken = [job for job in claim(store, 6) if job.namespace == NS]
    assert [job.priority for job in taken] == [5, 3, 1]
    assert {job.id for job in taken} == {job.id for job in low}


def test_a_namespace_that_was_idle_banks_no_credit(store: Store) -> None:
    store.set_namespace_weight(NamespaceWeight(NS, 1))
    flood(store, NS, 100)
    assert by_namespace(claim(store, 30)) == {NS: 30}  # OTHER_NS had nothing waiting
    flood(store, OTHER_NS, 100)
    counts = by_namespace(claim(store, 10) + claim(store, 10))
    assert abs(counts[OTHER_NS] - 10) <= 1, counts  # an equal share, not the 30 missed


def test_a_namespace_short_of_its_share_leaves_the_rest_to_the_others(store: Store) -> None:
    store.set_namespace_weight(NamespaceWeight(NS, 10))
    flood(store, NS, 2)
    flood(store, OTHER_NS, 50)
    assert by_namespace(claim(store, 10)) == {NS: 2, OTHER_NS: 8}


def test_a_weight_set_at_run_time_applies_from_the_next_claim(store: Store) -> None:
    flood(store, NS, 200)
    flood(store, OTHER_NS, 200)
    store.set_namespace_weight(NamespaceWeight(NS, 1))
    even = by_namespace(claim(store, 20))
    assert abs(even[NS] - 10) <= 1, even
    store.set_namespace_weight(NamespaceWeight(OTHER_NS, 4))
    skewed = by_namespace(claim(store, 25) + claim(store, 25))
    assert abs(skewed[OTHER_NS] - 40) <= 2, skewed
    store.remove_namespace_weight(OTHER_NS)
    store.remove_namespace_weight(NS)  # no weights left: merged by priority again
    assert store.list_namespace_weights() == []
    flood(store, NS, 10, priority=5)
    assert by_namespace(claim(store, 10)) == {NS: 10}


def test_three_namespaces_share_by_weight_and_one_alone_claims_as_before(
    store: Store,
) -> None:
    store.set_namespace_weight(NamespaceWeight(NS, 1))
    store.set_namespace_weight(NamespaceWeight(OTHER_NS, 2))
    store.set_namespace_weight(NamespaceWeight(THIRD_NS, 4))
    for namespace in (NS, OTHER_NS, THIRD_NS):
        flood(store, namespace, 100)
    counts = by_namespace([job for _ in range(10) for job in claim(
        store, 7, (NS, OTHER_NS, THIRD_NS))])
    for namespace, share in ((NS, 10), (OTHER_NS, 20), (THIRD_NS, 40)):
        assert abs(counts[namespace] - share) <= 1, counts
    assert by_namespace(claim(store, 5, (NS,))) == {NS: 5}


def test_namespace_weights_are_set_listed_and_removed(store: Store) -> None:
    client = Client(store, NS)
    assert client.namespace_weight() is None
    assert client.set_namespace_weight(2.5).weight == 2.5
    assert client.namespace_weight() == 2.5
    assert store.list_namespace_weights() == [NamespaceWeight(NS, 2.5)]
    client.remove_namespace_weight()
    assert client.namespace_weight() is None
    with pytest.raises(NamespaceWeightNotFound, match="has no weight"):
        client.remove_namespace_weight()


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf"), "2", True, 2e6])
def test_a_bad_namespace_weight_is_refused_and_nothing_is_written(
    store: Store, weight: object
) -> None:
    with pytest.raises(InvalidInput, match=r"^weight: must be a number > 0"):
        Client(store, NS).set_namespace_weight(weight)  # type: ignore[arg-type]
    assert store.list_namespace_weights() == []
