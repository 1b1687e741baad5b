"""Fair shares and aging as pure logic (`taskwheel.fairness`): passes 1/weight apart that
never start before the frontier, claims in pass order giving weighted shares, aging
ranks that keep the bound they promise (under a cap too), reserves owed their share
and no more, and rates, weights and shares refused with one line."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.errors import InvalidInput
from taskwheel.fairness import (
    AGING_ORIGIN,
    Flow,
    NamespaceStride,
    QueueAging,
    QueueReserve,
    Request,
    ReserveCredit,
    parse_aging_rate,
    parse_share,
    place_jobs,
    place_order,
    rank_offset,
    validate_fairness_key,
    validate_weight,
)
from taskwheel.tasks import Task, make_options


def test_an_idle_flow_starts_at_the_frontier_and_banks_no_credit() -> None:
    flows = {"busy": Flow(1.0, 50.0), "idle": Flow(1.0, 3.0)}
    placed = place_jobs([Request("idle", "q", 0, 0.0), Request("idle", "q", 0, 0.0)],
                        fair=True, aging={}, flows=flows, frontier={0: 40.0}, ceiling=0.0)
    assert [p.fair_pass for p in placed] == [40.0, 41.0]
    assert flows["idle"].last_pass == 41.0


@settings(deadline=None)  # hundreds of places a case: slow on a busy machine
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0, 4.0, 0.5]), min_size=2, max_size=5,
                unique=True),
       st.integers(min_value=20, max_value=200))
def test_claims_in_pass_order_give_each_backlogged_flow_its_weighted_share(
    weights: list[float], claims: int
) -> None:
    flows = {f"k{n}": Flow(w, 0.0) for n, w in enumerate(weights)}
    backlog = [Request(key, "q", 0, 0.0) for key in flows for _ in range(1_000)]
    placed = place_jobs(backlog, fair=True, aging={}, flows=flows, frontier={},
                        ceiling=0.0)
    taken = Counter(backlog[p.index].key
                    for p in sorted(placed, key=lambda p: (p.fair_pass, p.index))[:claims])
    total = sum(weights)
    for n, weight in enumerate(weights):
        assert abs(taken[f"k{n}"] - claims * weight / total) <= len(weights), taken


def test_a_batch_of_one_flow_takes_its_passes_in_today_s_order() -> None:
    requests = [Request("a", "q", 0, 0.0), Request("a", "q", 0, 0.0, deadline=10.0),
                Request("a", "q", 5, 0.0)]
    placed = place_jobs(requests, fair=True, aging={}, flows={"a": Flow(1.0, 0.0)},
                        frontier={}, ceiling=0.0)
    assert [p.fair_pass for p in placed] == [3.0, 2.0, 1.0]


@given(st.integers(0, 9), st.integers(0, 9), st.floats(0, 1e6),
       st.sampled_from([0.01, 0.1, 1 / 60, 1.0, 7.0]))
def test_aging_puts_a_job_before_a_higher_one_due_long_enough_after_it(
    low: int, high: int, due: float, rate: float
) -> None:
    p, q = sorted((low, high))
    first = AGING_ORIGIN + due
    later = first + (q - p + 1) / rate + 1e-3  # more than the bound (a float epoch)
    assert p + rank_offset(rate, first) > q + rank_offset(rate, later)


def test_without_aging_the_rank_is_the_priority() -> None:
    assert rank_offset(None, AGING_ORIGIN + 1e6) == 0


@pytest.mark.parametrize(("text", "per_minute"), [
    ("1/min", 1.0), ("2/30s", 4.0), ("0.5/h", 0.5 / 60), ("6/MIN", 6.0), (0.1, 6.0),
])
def test_aging_rates_read_as_levels_per_period(text: str | float, per_minute: float) -> None:
    assert math.isclose(parse_aging_rate(text) * 60, per_minute)


@pytest.mark.parametrize("text", ["fast", "1/fortnight", "0/min", "-1/s", "1/0s", "", "1/",
                                  0, -1.0, float("nan"), 5000, True])
def test_a_malformed_aging_rate_is_one_line_naming_the_rate(text: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_aging_rate(text)
    assert raised.value.field == "rate"
    assert "\n" not in str(raised.value)


@given(st.tuples(st.integers(-10, 10), st.integers(0, 20), st.integers(1, 20)),
       st.tuples(st.floats(-1e8, 1e8), st.floats(-1e8, 1e8)),
       st.sampled_from([0.01, 1 / 60, 1.0, 7.0]))
def test_under_a_cap_no_aged_job_ranks_with_a_job_above_it(
    priorities: tuple[int, int, int], dues: tuple[float, float], rate: float
) -> None:
    """Whatever the due times (before the origin too), a job at or below the cap ranks
    at most the cap, and a job above it ranks its priority."""
    cap, under, over = priorities
    low, high = cap - under, cap + over
    aging = QueueAging("ns", "q", rate, cap)
    assert low + aging.rank_offset(low, AGING_ORIGIN + dues[0]) <= cap
    assert high + aging.rank_offset(high, AGING_ORIGIN + dues[1]) == high


@given(st.integers(0, 5), st.integers(0, 5), st.floats(0, 1e6),
       st.sampled_from([0.01, 0.1, 1 / 60, 1.0]))
def test_under_a_cap_the_bands_at_or_below_it_keep_aging_s_bound(
    low: int, high: int, due: float, rate: float
) -> None:
    p, q = sorted((low, high))
    aging = QueueAging("ns", "q", rate, cap=5)
    first = AGING_ORIGIN + due
    later = first + (q - p + 1) / rate + 1e-3
    assert p + aging.rank_offset(p, first) > q + aging.rank_offset(q, later)


def test_reserved_bands_are_ranked_by_aged_priority_in_a_queue_that_ages() -> None:
    reserve = QueueReserve("ns", "q", 0.1, below=5)
    assert reserve.rank_below(None, AGING_ORIGIN + 600) == 5
    aging = QueueAging("ns", "q", 1 / 60)
    now = AGING_ORIGIN + 600  # 10 levels gained by a job due at the origin
    # A job of priority 0 due 4 minutes ago has aged to 4: below 5; 6 minutes ago, 6.
    assert 0 + aging.rank_offset(0, now - 240) < reserve.rank_below(aging, now)
    assert 0 + aging.rank_offset(0, now - 360) >= reserve.rank_below(aging, now)


@given(st.sampled_from([0.05, 0.1, 0.25, 0.5]), st.integers(1, 10), st.integers(20, 200))
def test_a_claimer_gives_a_busy_reserve_its_share_of_the_jobs_it_claims(
    share: float, limit: int, claims: int
) -> None:
    """Both kinds always ready: of every claim's jobs, the bands get what is owed."""
    credit, key = ReserveCredit(), ("ns", "q")
    reserved = 0
    for _ in range(claims):
        asked = credit.asked(key, share, limit)
        credit.settle(key, share, taken=limit, reserved=asked, asked=asked)
        reserved += asked
    assert abs(reserved - share * limit * claims) < 1 + 1e-6


def test_a_reserve_whose_bands_ran_dry_is_owed_nothing_more() -> None:
    credit, key = ReserveCredit(), ("ns", "q")
    for _ in range(3):
        credit.settle(key, 0.25, taken=1, reserved=0, asked=0)
    assert credit.asked(key, 0.25, limit=1) == 1
    credit.settle(key, 0.25, taken=1, reserved=0, asked=1)  # nothing below: dry
    assert [credit.asked(key, 0.25, limit=1)] == [0]
    for _ in range(100):  # claims with the bands idle: no debt piles up
        credit.settle(key, 0.25, taken=1, reserved=0, asked=credit.asked(key, 0.25, 1))
    assert credit.asked(key, 0.25, limit=10) <= 3


@pytest.mark.parametrize(("text", "share"), [("10%", 0.1), ("25%", 0.25),
                                             ("0.5", 0.5), (0.75, 0.75)])
def test_shares_read_as_percentages_or_fractions(text: str | float, share: float) -> None:
    assert math.isclose(parse_share(text), share)


@pytest.mark.parametrize("text", ["", "ten", "0%", "100%", "150%", 1, 0, -0.1, float("nan"),
                                  True, "%"])
def test_a_bad_share_is_one_line_naming_the_share(text: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_share(text)
    assert raised.value.field == "share"
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("key", ["\ud800", "a\udfffb", "tab\there", ""])
def test_a_fairness_key_that_is_not_text_is_refused_in_one_line(key: str) -> None:
    with pytest.raises(InvalidInput, match=r"^fairness_key: ") as raised:
        validate_fairness_key(key)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("weight", [0, -1, float("inf"), float("nan"), "1", True, 2e6])
def test_a_bad_weight_is_refused(weight: object) -> None:
    with pytest.raises(InvalidInput, match=r"^weight: "):
        validate_weight(weight)


def _render(customer_id: int, page: int) -> None:
    """A task whose jobs share claims by customer."""


def test_a_task_s_fairness_key_is_filled_with_its_job_s_arguments() -> None:
    task = Task("render", make_options(fairness_key="customer:{customer_id}"),
                namespace="default", enqueue=lambda requests: [], fn=_render)
    assert task.prepare(42, 1).fairness_key == "customer:42"
    assert task.prepare(page=1, customer_id=7).fairness_key == "customer:7"
    assert task.prepare(42, 1, fairness_key="vip").fairness_key == "vip"
    missing = Task("render", make_options(fairness_key="tenant:{tenant}"),
                   namespace="default", enqueue=lambda requests: [], fn=_render)
    with pytest.raises(InvalidInput, match=r"^fairness_key: task 'render'"):
        missing.prepare(42, 1)
    with pytest.raises(InvalidInput, match=r"^fairness_key: must be a string"):
        task.prepare(42, 1, fairness_key="")


# -- weights between namespaces (NamespaceStride) ------------------------------------------


def _claims(stride: NamespaceStride, weights: dict[str, float], ready: dict[str, int],
            batch: int, count: int) -> Counter[str]:
    """``count`` claims of ``batch`` over namespaces with ``ready`` jobs, as the stores'
    claim_shares takes them (`place_order`)."""
    names = list(weights)
    taken: Counter[str] = Counter()
    for _ in range(count):
        got = place_order(stride.starts(names), [weights[n] for n in names],
                          [ready[n] for n in names], batch)
        counts = dict(zip(names, got, strict=True))
        for name, n in counts.items():
            ready[name] -= n
        stride.taken(weights, counts)
        taken.update(counts)
    return taken


@settings(deadline=None)  # hundreds of places a case: slow on a busy machine
@given(st.lists(st.integers(1, 8), min_size=2, max_size=4), st.integers(1, 16),
       st.integers(20, 60))
def test_saturated_namespaces_get_their_weights_share(
    weights: list[int], batch: int, claims: int
) -> None:
    named = {f"ns{i}": float(w) for i, w in enumerate(weights)}
    taken = _claims(NamespaceStride(), named, dict.fromkeys(named, 10**6), batch, claims)
    total = sum(taken.values())
    assert total == batch * claims
    for name, weight in named.items():
        # Never a job behind; ahead by less than (n - 1) * w / W (the others' places
        # up to the last one taken may all be a fraction of a stride short).
        ahead = taken[name] - total * weight / sum(named.values())
        assert -1 - 1e-9 <= ahead <= (len(named) - 1) * weight / sum(named.values()) + 1e-9


@settings(deadline=None)  # hundreds of places a case: slow on a busy machine
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 16), st.integers(5, 40))
def test_a_namespace_idle_for_a_while_gets_no_more_than_its_share_after(
    busy_weight: int, idle_weight: int, batch: int, idle_claims: int
) -> None:
    weights = {"busy": float(busy_weight), "idle": float(idle_weight)}
    stride = NamespaceStride()
    ready = {"busy": 10**6, "idle": 0}
    assert _claims(stride, weights, ready, batch, idle_claims) == {"busy": batch * idle_claims,
                                                                   "idle": 0}
    ready["idle"] = 10**6
    after = _claims(stride, weights, ready, batch, 20)
    share = 20 * batch * idle_weight / (busy_weight + idle_weight)
    assert after["idle"] <= share + 1 + 1e-9, after
    assert after["idle"] >= share - 1 - 1e-9, after


def test_a_namespace_without_jobs_leaves_its_share_to_the_others() -> None:
    assert place_order([0.0, 0.0], [10.0, 1.0], [2, 50], 10) == [2, 8]
