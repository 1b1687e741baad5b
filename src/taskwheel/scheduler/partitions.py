"""Sharing the firing among scheduler processes: schedules hashed into partitions, each
partition a lease, the leases spread over the living schedulers.

Every scheduler keeps a membership lease (``scheduler-member:<id>``) and reads who else
keeps one. From the same sorted list of members every scheduler computes the same
assignment (partition *k* goes to member *k mod n*), tries to take the partitions
assigned to it and gives back the ones that are not (so a newcomer gets its share within
one renewal). A scheduler that dies stops renewing: its membership and its partitions
lapse together after the lease TTL, the survivors see one member fewer and take them.
While views of the membership differ (for a renewal or two), a partition is still held
by at most one scheduler at a time, and the unique (schedule, fire time) key rules out
a duplicate even then. One scheduler alone holds every partition.

Maintenance has a lease of its own (``maintenance``, see `taskwheel.maintenance`),
competed for by schedulers and workers alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from taskwheel.stores.base import Store

log = logging.getLogger("taskwheel.scheduler")

PARTITION_PREFIX = "scheduler:"
MEMBER_PREFIX = "scheduler-member:"


def partition_of(schedule_id: int, partitions: int) -> int:
    """The partition a schedule belongs to.

    Example:
        >>> partition_of(37, 16)
        5
    """
    return schedule_id % partitions


def partition_lease(partition: int) -> str:
    return f"{PARTITION_PREFIX}{partition}"


def assigned(members: Sequence[str], me: str, partitions: int) -> frozenset[int]:
    """The partitions ``me`` should hold when ``members`` are alive: *k* goes to the
    *(k mod n)*-th member in sorted order, so every scheduler computes the same split.

    Example:
        >>> sorted(assigned(["b", "a"], "a", 5))
        [0, 2, 4]
    """
    ordered = sorted(set(members) | {me})
    mine = ordered.index(me)
    return frozenset(k for k in range(partitions) if k % len(ordered) == mine)


@dataclass(frozen=True)
class Change:
    """What one renewal changed: partitions newly held and lost."""

    acquired: frozenset[int]
    lost: frozenset[int]


class Tenure:
    """The leases one scheduler holds: its membership and its partitions. `renew` is
    one round trip pair to the store."""

    def __init__(self, store: Store, namespace: str, me: str, partitions: int) -> None:
        self.store = store
        self.namespace = namespace
        self.me = me
        self.partitions = partitions
        self.held: frozenset[int] = frozenset()
        self._wanted: frozenset[int] = frozenset(range(partitions))  # alone until told
        self._members: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        """Whether every partition assigned to this scheduler is held."""
        return self._wanted <= self.held

    def members_changed(self) -> bool:
        """Whether the living members differ from those the last `renew` saw (one
        read): a member that died or joined calls for a renewal now."""
        return self._read_members() != self._members

    def _read_members(self) -> frozenset[str]:
        return frozenset(self.store.lease_holders(self.namespace, MEMBER_PREFIX).values())

    def renew(self, ttl: float) -> Change:
        """Keep what is held and take what is assigned; give back what is not."""
        member = MEMBER_PREFIX + self.me
        names = {member} | {partition_lease(k) for k in self.held | self._wanted}
        got = self.store.elect_many(self.namespace, sorted(names), self.me, ttl)
        self._members = self._read_members()
        self._wanted = assigned(sorted(self._members), self.me, self.partitions)
        missing = {partition_lease(k) for k in self._wanted} - got
        if missing:  # the membership just changed: take the new share at once
            got |= self.store.elect_many(self.namespace, sorted(missing), self.me, ttl)
        now_held = frozenset(
            k for k in range(self.partitions) if partition_lease(k) in got
        )
        surplus = now_held - self._wanted
        for k in sorted(surplus):  # assigned to another living member: hand it over
            self.store.resign(self.namespace, partition_lease(k), self.me)
        now_held -= surplus
        change = Change(acquired=now_held - self.held, lost=self.held - now_held)
        self.held = now_held
        return change

    def lose(self, partition: int) -> None:
        """Forget a partition the store says is no longer held (`LeaseLost`)."""
        self.held -= {partition}

    def forget(self) -> None:
        """Hold nothing, without telling the store (which may be unreachable): what was
        held lapses by itself, or is kept by the next `renew`."""
        self.held = frozenset()

    def resign_all(self) -> None:
        """Give everything back so the others take over at once."""
        names = [MEMBER_PREFIX + self.me, *(partition_lease(k) for k in self.held)]
        self.forget()
        for name in names:
            self.store.resign(self.namespace, name, self.me)
