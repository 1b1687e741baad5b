"""The split of schedule partitions among living schedulers: every scheduler computes
it alone from the same membership, so it must agree, cover and balance."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from taskwheel.scheduler.partitions import assigned, partition_lease, partition_of

members = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12, unique=True)
counts = st.integers(min_value=1, max_value=256)


@given(members, counts)
def test_every_partition_goes_to_exactly_one_member(names: list[str], count: int) -> None:
    shares = [assigned(names, me, count) for me in names]
    assert frozenset().union(*shares) == frozenset(range(count))
    assert sum(len(share) for share in shares) == count


@given(members, counts)
def test_the_split_is_balanced(names: list[str], count: int) -> None:
    sizes = [len(assigned(names, me, count)) for me in names]
    assert max(sizes) - min(sizes) <= 1


@given(members, counts)
def test_the_split_does_not_depend_on_the_order_members_are_read(
    names: list[str], count: int
) -> None:
    for me in names:
        assert assigned(names, me, count) == assigned(list(reversed(names)), me, count)


@given(members, counts)
def test_a_scheduler_missing_from_the_list_counts_itself_in(names: list[str], count: int) -> None:
    me = "\x00newcomer"  # sorts first
    assert assigned(names, me, count) == assigned([*names, me], me, count)


def test_a_lone_scheduler_holds_every_partition() -> None:
    assert assigned([], "only", 16) == frozenset(range(16))


@given(st.integers(min_value=1, max_value=2**62), counts)
def test_a_schedule_belongs_to_one_partition_in_range(schedule_id: int, count: int) -> None:
    assert 0 <= partition_of(schedule_id, count) < count
    assert partition_lease(partition_of(schedule_id, count)).startswith("scheduler:")
