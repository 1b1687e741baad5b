"""Triggers: when a schedule fires, as a sequence of instants with an explicit DST policy.

A trigger answers one question, ``next_fire(after)``: the first fire strictly after an
instant. Three kinds exist: `CronTrigger` (a cron expression in a timezone),
`IntervalTrigger` (every so many seconds of elapsed time) and `OnceTrigger`.

Cron and daylight saving time
-----------------------------
A cron expression is matched against local wall-clock time: cronsim walks *naive*
wall-clock datetimes (it does no DST handling for naive input), and this module maps
each matching wall time to instants with zoneinfo. A wall time can exist once, not at
all (the clock jumps forward over it) or twice (the clock falls back over it):

- exists once: one fire, ``DstEffect.NONE``;
- in a gap: under ``DstGap.RUN_AFTER_GAP`` one fire at the instant the gap ends (the
  transition), ``DstEffect.MOVED``; every matching time in one gap collapses into that
  single fire, and a matching time that exists right at the gap's end (03:00 after
  02:00 -> 03:00) is not fired a second time at the same instant. Under
  ``DstGap.SKIP`` nothing fires;
- twice: under ``DstFold.FIRST`` one fire at the earlier instant,
  ``DstEffect.FIRST_OF_TWO``; under ``DstFold.BOTH`` that one and then the later
  instant, ``DstEffect.SECOND_OF_TWO``. FIRST suits "once a day at 01:30"; for
  expressions that fire every few minutes choose BOTH (or an `IntervalTrigger`), or the
  repeated hour is silent.

Fires come in strictly increasing UTC order, folds included: the second 01:30 is after
the first 01:45, and ``next_fire`` resumes from the exact instant it is given.

``Fire.local`` is always the instant that fires, in the zone: ``at.astimezone(zone)``,
with ``fold`` telling the two occurrences of a repeated time apart. ``Fire.nominal`` is
the naive wall time the expression matched; it differs from ``local`` only for a MOVED
fire, where it is the time that did not exist (the first matching one of the gap). It
has no offset on purpose: written with one, it would name a different instant.

An example night, ``"30 2 * * *"`` in Europe/Berlin::

    2026-03-29  02:00 CET -> 03:00 CEST at 01:00Z; 02:30 does not exist
        RUN_AFTER_GAP  at 01:00Z  local 03:00 CEST  nominal 02:30  MOVED
        SKIP           (nothing that night)
    2026-10-25  03:00 CEST -> 02:00 CET at 01:00Z; 02:30 happens twice
        FIRST          at 00:30Z  local 02:30 CEST (fold=0)  FIRST_OF_TWO
        BOTH           at 00:30Z  FIRST_OF_TWO, then at 01:30Z local 02:30 CET (fold=1)
                       SECOND_OF_TWO

Interval and once triggers count elapsed time in UTC; DST never touches them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from taskwheel.durations import LONGEST_WAIT, DurationLike, aware_datetime, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.validators import validate_choice


class DstGap(StrEnum):
    """What a cron trigger does with a wall time the clock jumps over (spring forward)."""

    RUN_AFTER_GAP = "run_after_gap"  # fire once, at the instant the gap ends
    SKIP = "skip"  # do not fire


class DstFold(StrEnum):
    """What a cron trigger does with a wall time that happens twice (fall back)."""

    FIRST = "first"  # fire at the earlier occurrence only
    BOTH = "both"  # fire at both occurrences


class DstEffect(StrEnum):
    """How daylight saving time shaped one fire."""

    NONE = "none"  # an ordinary fire
    MOVED = "moved"  # its wall time did not exist; fired when the gap ended
    FIRST_OF_TWO = "first_of_two"  # its wall time happens twice; this is the first
    SECOND_OF_TWO = "second_of_two"  # ... and this the second (DstFold.BOTH only)


@dataclass(frozen=True, slots=True)
class Fire:
    """One fire of a trigger.

    Attributes:
        at: the instant, aware, in UTC.
        local: the same instant in the trigger's timezone (UTC for interval and once
            triggers): ``at.astimezone(zone)``, for every fire.
        dst: how daylight saving time shaped this fire.
        nominal: the wall time the trigger matched, naive. For a MOVED fire it is the
            time that did not exist (``local`` shows when the fire happens instead);
            for every other fire it is ``local`` without its zone.

    Example:
        >>> fire = CronTrigger.build("30 2 * * *", "Europe/Berlin").next_fire(
        ...     datetime(2026, 3, 28, 12, tzinfo=UTC))
        >>> fire.local.isoformat(), fire.nominal.isoformat(), fire.dst.value
        ('2026-03-29T03:00:00+02:00', '2026-03-29T02:30:00', 'moved')
    """

    at: datetime
    local: datetime
    dst: DstEffect = DstEffect.NONE
    nominal: datetime = field(kw_only=True)

    @classmethod
    def in_utc(cls, at: datetime) -> Fire:
        """A fire of an interval or once trigger: UTC throughout, no DST."""
        return cls(at, at, nominal=at.replace(tzinfo=None))


class Trigger(Protocol):
    """When a schedule fires."""

    @property
    def kind(self) -> str:
        """``"cron"``, ``"interval"`` or ``"once"``; the ``kind`` key of `to_dict`."""
        ...

    def next_fire(self, after: datetime) -> Fire | None:
        """The first fire strictly after ``after`` (aware); None when there is none."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready spec; ``trigger_from_dict(t.to_dict()) == t``."""
        ...


# A zone key is a relative path of plain names; this keeps "../etc" and "/etc/x" out
# before zoneinfo looks at the file system.
_ZONE_KEY = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")
# Files in the zoneinfo directory that are not IANA zones: the host's own zone, a
# template, and copies of every zone (right/ with leap seconds, which would skew UTC).
_NOT_ZONES = re.compile(r"localtime|posixrules|(?:posix|right)/.*")
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)
_NO_TIME = timedelta(0)
_SEED = datetime(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """A cron expression evaluated in a timezone's wall-clock time.

    The expression has five fields (minute hour day-of-month month day-of-week), or six
    with a leading seconds field, in the syntax of cronsim. Invalid input raises
    `InvalidInput` at construction, so a `CronTrigger` that exists is valid.

    Example:
        >>> trigger = CronTrigger.build("30 2 * * *", "Europe/Berlin")
        >>> fire = trigger.next_fire(datetime(2026, 3, 28, 12, tzinfo=UTC))
        >>> fire.at.isoformat(), fire.dst.value
        ('2026-03-29T01:00:00+00:00', 'moved')
    """

    kind: ClassVar[str] = "cron"

    expression: str
    timezone: str = "UTC"
    dst_gap: DstGap = DstGap.RUN_AFTER_GAP
    dst_fold: DstFold = DstFold.FIRST
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expression = _normalize_expression(self.expression)
        object.__setattr__(self, "expression", expression)
        gap = validate_choice(DstGap, self.dst_gap, "dst_gap", noun="policy")
        fold = validate_choice(DstFold, self.dst_fold, "dst_fold", noun="policy")
        object.__setattr__(self, "dst_gap", gap)
        object.__setattr__(self, "dst_fold", fold)
        object.__setattr__(self, "_zone", _load_zone(self.timezone))
        try:
            _parse(expression)
        except CronSimError as error:
            raise InvalidInput("cron", f"{error} in {expression!r}") from None

    @classmethod
    def build(
        cls,
        expression: str,
        timezone: str = "UTC",
        dst_gap: DstGap | str = DstGap.RUN_AFTER_GAP,
        dst_fold: DstFold | str = DstFold.FIRST,
    ) -> CronTrigger:
        """Validate and build; the policies may be given as their string values."""
        return cls(
            expression,
            timezone,
            validate_choice(DstGap, dst_gap, "dst_gap", noun="policy"),
            validate_choice(DstFold, dst_fold, "dst_fold", noun="policy"),
        )

    @property
    def fields(self) -> str:
        """How the expression's fields are read, in order: five fields start with the
        minute, six with the second (a common surprise, so previews say it).

        Example:
            >>> CronTrigger.build("*/10 * * * * *").fields
            'second minute hour day-of-month month day-of-week'
        """
        names = "minute hour day-of-month month day-of-week"
        return names if len(self.expression.split()) == 5 else "second " + names

    def next_fire(self, after: datetime) -> Fire | None:
        instant = _to_utc(after)
        zone = self._zone
        wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
        # When `after` is the first occurrence of a repeated wall time, the second
        # occurrences of the walls just before it are still ahead: start matching one
        # fold width earlier and let the `at > instant` filter sort them out.
        fold_width = _offset(wall.replace(tzinfo=zone)) - _offset(wall.replace(tzinfo=zone, fold=1))
        start = wall - fold_width if fold_width > _NO_TIME else wall
        # Walls come in order, and so do their instants, except second occurrences:
        # those of a whole fold come after the first occurrences of the same fold.
        # Hold the earliest one back until an in-order candidate shows up.
        pending: Fire | None = None
        matched: datetime | None = start.replace(microsecond=0)
        while (matched := _next_wall(self.expression, matched)) is not None:
            for fire in self._fires_at(matched):
                if fire.at <= instant:
                    continue
                if fire.dst is DstEffect.SECOND_OF_TWO:
                    if pending is None:
                        pending = fire
                    continue
                if pending is not None and pending.at < fire.at:
                    return pending
                return fire
        return pending

    def _fires_at(self, wall: datetime) -> tuple[Fire, ...]:
        """The fires of one matching naive wall time, in UTC order."""
        zone = self._zone
        earlier = _offset(wall.replace(tzinfo=zone))
        later = _offset(wall.replace(tzinfo=zone, fold=1))
        if earlier == later:
            return (self._fire(wall - earlier, wall),)
        if earlier > later:  # the clock fell back over this wall time
            first = self._fire(wall - earlier, wall, DstEffect.FIRST_OF_TWO)
            if self.dst_fold is DstFold.FIRST:
                return (first,)
            return (first, self._fire(wall - later, wall, DstEffect.SECOND_OF_TWO))
        if self.dst_gap is DstGap.SKIP:  # the clock jumped forward over this wall time
            return ()
        return (self._fire(_gap_end(wall, zone, earlier, later), wall, DstEffect.MOVED),)

    def _fire(self, at: datetime, wall: datetime, dst: DstEffect = DstEffect.NONE) -> Fire:
        """The fire at ``at`` (naive UTC) of the matched ``wall``."""
        instant = at.replace(tzinfo=UTC)
        return Fire(instant, instant.astimezone(self._zone), dst, nominal=wall)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "expression": self.expression,
            "timezone": self.timezone,
            "dst_gap": self.dst_gap.value,
            "dst_fold": self.dst_fold.value,
        }


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    """Every ``every`` seconds of elapsed time: at ``anchor``, ``anchor + every``, ...

    ``anchor`` is the first fire; earlier instants never fire. Arithmetic is in UTC to
    the microsecond, so DST does not apply.

    Example:
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> trigger = IntervalTrigger.build("90m", start)
        >>> trigger.next_fire(start).at.isoformat()
        '2026-01-01T01:30:00+00:00'
    """

    kind: ClassVar[str] = "interval"

    every: float
    anchor: datetime
    _step: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every = parse_duration(self.every, "every", allow_zero=False, longest=LONGEST_WAIT)
        step = timedelta(seconds=every)
        if step < _MICROSECOND:
            raise InvalidInput("every", f"must be at least one microsecond, got {self.every!r}")
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "anchor", _aware_utc(self.anchor, "anchor"))
        object.__setattr__(self, "_step", step)

    @classmethod
    def build(cls, every: DurationLike, anchor: datetime) -> IntervalTrigger:
        """Validate and build; ``every`` may be ``"30s"``, ``90``, a timedelta, ..."""
        return cls(parse_duration(every, "every", allow_zero=False), anchor)

    def next_fire(self, after: datetime) -> Fire | None:
        instant = _to_utc(after)
        if instant < self.anchor:
            return Fire.in_utc(self.anchor)
        steps = (instant - self.anchor) // self._step + 1  # exact: whole microseconds
        try:
            at = self.anchor + steps * self._step
        except OverflowError:  # past datetime.max
            return None
        return Fire.in_utc(at)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "every": self.every, "anchor": self.anchor.isoformat()}


@dataclass(frozen=True, slots=True)
class OnceTrigger:
    """A single fire at ``at``.

    Example:
        >>> trigger = OnceTrigger(datetime(2026, 5, 1, 9, tzinfo=UTC))
        >>> trigger.next_fire(datetime(2026, 5, 1, 9, tzinfo=UTC)) is None
        True
    """

    kind: ClassVar[str] = "once"

    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", _aware_utc(self.at, "at"))

    def next_fire(self, after: datetime) -> Fire | None:
        return Fire.in_utc(self.at) if self.at > _to_utc(after) else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat()}


def trigger_from_dict(data: Mapping[str, Any]) -> Trigger:
    """Build a trigger from its `to_dict` form, validating every field.

    Unknown keys are refused rather than ignored, so a misspelt policy cannot pass
    silently.

    Example:
        >>> trigger = trigger_from_dict({"kind": "cron", "expression": "0 9 * * MON-FRI"})
        >>> trigger == CronTrigger("0 9 * * MON-FRI", "UTC", DstGap.RUN_AFTER_GAP, DstFold.FIRST)
        True
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("trigger", f"expected a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if kind == "cron":
        _check_keys(data, _CRON_KEYS)
        return CronTrigger.build(
            data["expression"],
            data.get("timezone", "UTC"),
            data.get("dst_gap", DstGap.RUN_AFTER_GAP),
            data.get("dst_fold", DstFold.FIRST),
        )
    if kind == "interval":
        _check_keys(data, _INTERVAL_KEYS)
        # The trigger validates both (a scheduler reads one at most fires: once each).
        return IntervalTrigger(data["every"], _from_iso(data["anchor"], "anchor"))
    if kind == "once":
        _check_keys(data, _ONCE_KEYS)
        return OnceTrigger(_parse_datetime(data["at"], "at"))
    raise InvalidInput("kind", f"unknown trigger kind {kind!r} (use cron, interval, once)")


def upcoming(trigger: Trigger, after: datetime, count: int) -> list[Fire]:
    """The next ``count`` fires after ``after``; fewer if the trigger runs out.

    Example:
        >>> fires = upcoming(CronTrigger("0 9 * * *"), datetime(2026, 1, 1, tzinfo=UTC), 2)
        >>> [fire.at.day for fire in fires]
        [1, 2]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInput("count", f"must be an integer >= 0, got {count!r}")
    fires: list[Fire] = []
    while len(fires) < count:
        fire = trigger.next_fire(after)
        if fire is None:
            break
        fires.append(fire)
        after = fire.at
    return fires


@lru_cache(maxsize=1024)
def _parse(expression: str) -> CronSim:
    """The expression parsed once; `_next_wall` iterates shallow copies of it."""
    return CronSim(expression, _SEED)


@lru_cache(maxsize=16384)
def _next_wall(expression: str, after: datetime) -> datetime | None:
    """The first naive wall time after ``after`` (whole seconds) that matches.

    Cached because schedules share expressions and fire together (every "0 * * * *"
    asks for the same next wall each hour, whatever its zone), and cronsim walks the
    fields one unit at a time: tens of microseconds for a daily expression.
    """
    walls = copy.copy(_parse(expression))
    # With a naive datetime cronsim does no DST handling of its own.
    walls.dt = after
    try:
        return next(walls)
    except (StopIteration, OverflowError):  # nothing for 50 years, or past datetime.max
        return None


def _offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _gap_end(wall: datetime, zone: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The instant (naive UTC) the forward jump over ``wall`` happened.

    ``wall - after`` is an instant still on the old offset, ``wall - before`` one already
    on the new; transitions fall on whole seconds, so bisect between them to the second.
    """
    start = wall - after
    low, high = 0, (after - before) // _SECOND  # in whole seconds after `start`
    while high - low > 1:
        middle = (low + high) // 2
        if zone.fromutc((start + middle * _SECOND).replace(tzinfo=zone)).utcoffset() == before:
            low = middle
        else:
            high = middle
    return start + high * _SECOND


def _normalize_expression(expression: object) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput(
            "cron", f"expected a cron expression such as '0 9 * * *', got {expression!r}"
        )
    return " ".join(expression.split())


def _load_zone(key: object) -> ZoneInfo:
    if not isinstance(key, str) or not _ZONE_KEY.fullmatch(key) or _NOT_ZONES.fullmatch(key):
        raise InvalidInput("timezone", f"not an IANA zone name such as 'Europe/Berlin': {key!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("timezone", f"unknown IANA zone {key!r}") from None


def _to_utc(after: datetime) -> datetime:
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"after must be a timezone-aware datetime, got naive {after!r}")
    return after.astimezone(UTC)


def _aware_utc(value: object, field_name: str) -> datetime:
    return aware_datetime(value, field_name).astimezone(UTC)


def _parse_datetime(value: object, field_name: str) -> datetime:
    return _aware_utc(_from_iso(value, field_name), field_name)


def _from_iso(value: Any, field_name: str) -> Any:
    """``value`` read as an ISO 8601 datetime when it is text, else as it is (its
    timezone and type are checked where it is used)."""
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field_name, f"expected an ISO 8601 datetime, got {value!r}") from None


# Each kind's fields: those it requires, and all it allows.
_CRON_KEYS = (frozenset({"expression"}),
              frozenset({"kind", "expression", "timezone", "dst_gap", "dst_fold"}))
_INTERVAL_KEYS = (frozenset({"every", "anchor"}), frozenset({"kind", "every", "anchor"}))
_ONCE_KEYS = (frozenset({"at"}), frozenset({"kind", "at"}))


def _check_keys(data: Mapping[str, Any], keys: tuple[frozenset[str], frozenset[str]]) -> None:
    required, allowed = keys
    if required <= data.keys() <= allowed:
        return
    kind = data["kind"]
    for key in sorted(required):
        if key not in data:
            raise InvalidInput(
                "cron" if key == "expression" else key, f"required by a {kind} trigger"
            )
    for key in data:
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise InvalidInput(str(key), f"unknown field of a {kind} trigger (allowed: {names})")
