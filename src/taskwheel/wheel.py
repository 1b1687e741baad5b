"""A hierarchical timing wheel: the scheduler's near future, expired in batches.

Time is cut into ticks of ``tick`` seconds counted from ``start``: tick ``k`` covers
``[start + k*tick, start + (k+1)*tick)``. Level ``i`` has ``slots`` slots of
``slots**i`` ticks each. Levels below the top are aligned like the hands of a clock:
level 0 holds the timers due in the rest of the current ``slots``-tick block, level 1
those due later in the current ``slots**2``-tick block, and so on; the top level is a
ring of blocks that rotates with time. So every timer on a lower level is due before
every timer on a higher one, which makes :meth:`TimingWheel.next_expiry` exact whenever
level 0 holds anything. When time enters a block, that block's slot is emptied and its
timers placed again one level down or more (a cascade); timers expire only from level 0.

A timer is never returned before its ``when``: a slot's tick says only where to look,
and the timers of the tick being entered are compared with ``now`` one by one. Advancing
jumps from one occupied slot to the next with per-level occupancy bitmaps, so an idle
gap costs the same as a short step however many ticks it spans.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import Any, Generic, TypeVar

from taskwheel.errors import InvalidInput

__all__ = ["Timer", "TimingWheel"]

T = TypeVar("T")

_when_of = attrgetter("when")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Slot(dict["Timer[Any]", bool]):
    """The timers of one slot, in the order they arrived (a dict, for O(1) removal); it
    knows its place so that cancel can clear the occupancy bit."""

    __slots__ = ("index", "level", "wheel")

    def __init__(self, wheel: TimingWheel[Any], level: int, index: int) -> None:
        super().__init__()
        self.wheel = wheel
        self.level = level
        self.index = index


class Timer(Generic[T]):
    """The handle :meth:`TimingWheel.insert` returns: ``when``, ``item`` and whether it is
    still pending (``active``: neither expired nor cancelled)."""

    __slots__ = ("_slot", "item", "when")

    when: float
    item: T

    def __init__(self, when: float, item: T, slot: _Slot) -> None:
        self.when = when
        self.item = item
        self._slot = slot

    @property
    def active(self) -> bool:
        # A slot forgets a timer when it expires or is cancelled.
        return self in self._slot

    def __repr__(self) -> str:
        return f"Timer(when={self.when!r}, item={self.item!r}, active={self.active})"


class TimingWheel(Generic[T]):
    """Timers by due time: O(1) insert and cancel, expiry in batches per tick.

    Times are plain floats in the caller's clock, in seconds. ``now`` starts at ``start``
    and only moves forward. ``slots`` must be a power of two. Not thread-safe: one owner
    (the scheduler's loop) calls it.

    Example:
        >>> wheel = TimingWheel[str](tick=0.01, start=100.0)
        >>> job = wheel.insert(100.5, "job")
        >>> wheel.advance(100.499)
        []
        >>> [timer.item for timer in wheel.advance(100.5)]
        ['job']
    """

    def __init__(
        self, *, tick: float = 0.001, slots: int = 256, levels: int = 4, start: float
    ) -> None:
        if not _is_number(tick) or not 0 < tick < math.inf:
            raise InvalidInput("tick", f"must be a positive number of seconds, got {tick!r}")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 2:
            raise InvalidInput("slots", f"must be an integer >= 2, got {slots!r}")
        if slots & (slots - 1):
            raise InvalidInput("slots", f"must be a power of two, got {slots}")
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise InvalidInput("levels", f"must be an integer >= 1, got {levels!r}")
        if not _is_number(start) or not math.isfinite(start):
            raise InvalidInput("start", f"must be a finite time in seconds, got {start!r}")
        self._tick = float(tick)
        self._start = float(start)
        self._now = self._start
        self._cur = 0  # the tick holding self._now
        self._slots = slots
        self._mask = slots - 1
        self._bits = slots.bit_length() - 1
        self._top = levels - 1
        self._shifts = [self._bits * level for level in range(levels)]
        self._top_shift = self._shifts[-1]
        self._all_slots = (1 << slots) - 1
        # The top level holds blocks 1 .. slots-1 ahead of the current one, never a
        # whole turn, so no slot ever mixes two blocks. One tick is kept back because a
        # `when` within the horizon may round into the next tick.
        reach: int = (slots - 1) * slots ** (levels - 1) - 1
        self._horizon = self._tick * reach
        self._wheel: list[list[_Slot]] = [
            [_Slot(self, level, index) for index in range(slots)] for level in range(levels)
        ]
        self._occupied = [0] * levels  # bit i set <=> slot i of that level holds timers
        self._count = 0
        # next_expiry()'s last answer, kept while it remains a correct answer.
        self._expiry_known = False
        self._expiry: float | None = None

    @property
    def horizon(self) -> float:
        """How far beyond :attr:`now` a timer may be due: ``tick * ((slots - 1) *
        slots**(levels - 1) - 1)``, about 49.5 days for the defaults."""
        return self._horizon

    @property
    def now(self) -> float:
        """The wheel's current time: the latest ``now`` passed to :meth:`advance`, or
        ``start``."""
        return self._now

    def __len__(self) -> int:
        return self._count

    def insert(self, when: float, item: T) -> Timer[T]:
        """Hold ``item`` until ``when``; a time already past expires at the next advance.

        Raises:
            InvalidInput: ``when`` is beyond ``now + horizon`` (or not a number); such
                events stay in the database until they come within reach.
        """
        limit = self._now + self._horizon
        if not when <= limit:  # NaN fails this too
            raise InvalidInput("when", f"must be at most now + horizon ({limit!r}), got {when!r}")
        cur = self._cur
        tick = cur if when <= self._now else self._tick_of(when)
        if (tick >> self._top_shift) - (cur >> self._top_shift) > self._mask:
            # The margin of one tick in the horizon covers rounding, unless the times are
            # so far from `start` that floats no longer resolve a tick.
            raise InvalidInput("when", f"{when!r} cannot be resolved to a tick of the wheel")
        slot = self._slot_for(tick)
        timer = Timer(when, item, slot)
        if not slot:
            self._occupied[slot.level] |= 1 << slot.index
        slot[timer] = True
        self._count += 1
        if self._expiry_known and (self._expiry is None or when < self._expiry):
            self._expiry = when
        return timer

    def cancel(self, timer: Timer[T]) -> bool:
        """Forget ``timer``; False if it had already expired or been cancelled.

        Raises:
            InvalidInput: ``timer`` came from another wheel.
        """
        slot = timer._slot
        if slot.wheel is not self:
            raise InvalidInput("timer", "belongs to another wheel")
        if not slot.pop(timer, False):
            return False
        self._count -= 1
        if not slot:
            slot.clear()  # an emptied dict keeps its table until cleared
            self._occupied[slot.level] &= ~(1 << slot.index)
        self._expiry_known = False
        return True

    def advance(self, now: float) -> list[Timer[T]]:
        """Move the wheel to ``now`` and return every pending timer with ``when <= now``,
        ordered by ``when``, then by insertion.

        An earlier ``now`` than :attr:`now` (a wall clock stepped back) does not move the
        wheel back; it still returns the timers due by that earlier time.

        Raises:
            InvalidInput: ``now`` is not a finite number.
        """
        if not math.isfinite(now):
            raise InvalidInput("now", f"must be a finite time in seconds, got {now!r}")
        expired: list[Timer[T]] = []
        # The current tick may hold timers not yet due, and late inserts.
        self._expire(self._cur & self._mask, now, expired, every=False)
        if now > self._now:
            self._now = now
            target = self._tick_of(now)
            while (found := self._next_occupied()) is not None and found[0] <= target:
                tick, level = found
                self._cur = tick
                if level:
                    self._cascade(level, (tick >> self._shifts[level]) & self._mask)
                self._expire(tick & self._mask, now, expired, every=tick < target)
            self._cur = target
        if expired:
            self._count -= len(expired)
            # Timers with the same `when` share one slot from insert to expiry, in the
            # order they were inserted, so a stable sort by `when` keeps ties in order.
            expired.sort(key=_when_of)
        self._expiry_known = False
        return expired

    def next_expiry(self) -> float | None:
        """A time at or before the earliest pending ``when``, None when empty: exactly
        that ``when`` if the timer is due within the current ``slots``-tick block (level
        0), else the moment the wheel enters the block that holds it, when advancing
        cascades it. Sleep until then and advance."""
        if not self._expiry_known:
            self._expiry = self._compute_next_expiry()
            self._expiry_known = True
        return self._expiry

    # -- internals --------------------------------------------------------------------

    def _compute_next_expiry(self) -> float | None:
        if not self._count:
            return None
        if self._occupied[0]:
            offset = self._first_occupied(0, after_current=False)
            assert offset is not None
            slot = self._wheel[0][(self._cur + offset) & self._mask]
            return min(timer.when for timer in slot)
        found = self._next_occupied()
        assert found is not None
        return self._time_of(found[0])

    def _tick_of(self, when: float) -> int:
        return math.floor((when - self._start) / self._tick)

    def _time_of(self, tick: int) -> float:
        """The earliest time whose tick is ``tick`` (so never after any time in it)."""
        time = self._start + tick * self._tick
        while self._tick_of(time) < tick:
            time = math.nextafter(time, math.inf)
        while self._tick_of(earlier := math.nextafter(time, -math.inf)) >= tick:
            time = earlier
        return time

    def _slot_for(self, tick: int) -> _Slot:
        """The slot for a timer due in ``tick`` (>= the current tick): the level of the
        highest block it does not share with the current tick."""
        level = (((tick ^ self._cur) | 1).bit_length() - 1) // self._bits
        level = min(level, self._top)
        return self._wheel[level][(tick >> self._shifts[level]) & self._mask]

    def _first_occupied(self, level: int, *, after_current: bool) -> int | None:
        """How many slots after the current one the first occupied slot of ``level`` is."""
        bits = self._occupied[level]
        position = (self._cur >> self._shifts[level]) & self._mask
        if after_current:
            bits &= ~(1 << position)
        if not bits:
            return None
        rotated = (bits >> position) | ((bits << (self._slots - position)) & self._all_slots)
        return (rotated & -rotated).bit_length() - 1

    def _next_occupied(self) -> tuple[int, int] | None:
        """The first tick after the current one at which a slot must be expired or
        cascaded, and its level. Lower levels hold earlier timers, so the lowest occupied
        level decides."""
        for level, shift in enumerate(self._shifts):
            offset = self._first_occupied(level, after_current=True)
            if offset is not None:
                return ((self._cur >> shift) + offset) << shift, level
        return None

    def _cascade(self, level: int, index: int) -> None:
        slot = self._wheel[level][index]
        timers = list(slot)
        slot.clear()
        self._occupied[level] &= ~(1 << index)
        occupied = self._occupied
        for timer in timers:
            target = self._slot_for(self._tick_of(timer.when))
            if not target:
                occupied[target.level] |= 1 << target.index
            target[timer] = True
            timer._slot = target

    def _expire(self, index: int, now: float, expired: list[Timer[T]], *, every: bool) -> None:
        """Move the level-0 slot's timers due by ``now`` to ``expired``; ``every`` when the
        slot's tick is wholly past, so all of them are."""
        slot = self._wheel[0][index]
        if not slot:
            return
        if every:
            expired.extend(slot)
            slot.clear()
        else:
            due = [timer for timer in slot if timer.when <= now]
            if len(due) == len(slot):
                slot.clear()
            else:
                for timer in due:
                    del slot[timer]
            expired.extend(due)
        if not slot:
            self._occupied[0] &= ~(1 << index)
