"""Triggers: validation, round trips, interval and once semantics, and cron against DST
in every zone, checked against an independent reference (its own field matcher and the
zone's transitions found by scanning utcoffset)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise, product
from zoneinfo import ZoneInfo, available_timezones

import pytest
from cronsim import CronSim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskwheel.errors import InvalidInput
from taskwheel.triggers import (
    CronTrigger,
    DstEffect,
    DstFold,
    DstGap,
    Fire,
    IntervalTrigger,
    OnceTrigger,
    Trigger,
    trigger_from_dict,
    upcoming,
)

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
# "localtime" is this machine's copy of some zone, not an IANA name; triggers refuse it.
ALL_ZONES = sorted(available_timezones() - {"localtime"})
POLICIES = list(product(DstGap, DstFold))


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "reason_part"),
    [
        ({"expression": "61 * * * *"}, "cron", "Bad minute"),
        ({"expression": "* * *"}, "cron", "Wrong number of fields"),
        ({"expression": "0 0 30 2 *"}, "cron", "Bad day-of-month"),
        ({"expression": "   "}, "cron", "cron expression"),
        ({"expression": "0 9 * * *", "timezone": "Mars/Olympus_Mons"}, "timezone", "unknown"),
        ({"expression": "0 9 * * *", "timezone": ""}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "../etc/passwd"}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "/etc/localtime"}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "localtime"}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "right/Europe/Berlin"}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "posix/Europe/Berlin"}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "timezone": "Europe/Berlin "}, "timezone", "IANA"),
        ({"expression": "0 9 * * *", "dst_gap": "later"}, "dst_gap", "run_after_gap, skip"),
        ({"expression": "0 9 * * *", "dst_fold": "second"}, "dst_fold", "first, both"),
    ],
)
def test_invalid_cron_trigger_names_the_field(
    kwargs: dict[str, str], field: str, reason_part: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        CronTrigger.build(**kwargs)
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_cron_trigger_refuses_a_non_string_expression() -> None:
    with pytest.raises(InvalidInput) as caught:
        CronTrigger.build(5)  # type: ignore[arg-type]
    assert caught.value.field == "cron"


@given(st.text(alphabet="0123456789*/,-LW#? abcMONFRIJAN", max_size=30))
def test_any_expression_either_works_or_is_refused_as_cron(text: str) -> None:
    outcome: CronTrigger | InvalidInput
    try:
        outcome = CronTrigger.build(text)
    except InvalidInput as error:
        outcome = error
    if isinstance(outcome, InvalidInput):
        assert outcome.field == "cron"
    else:
        assert outcome.expression == " ".join(text.split())
        fire = outcome.next_fire(datetime(2026, 1, 1, tzinfo=UTC))
        assert fire is None or fire.at > datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: IntervalTrigger.build(0, datetime(2026, 1, 1, tzinfo=UTC)), "every"),
        (lambda: IntervalTrigger.build("-5s", datetime(2026, 1, 1, tzinfo=UTC)), "every"),
        (lambda: IntervalTrigger.build("0s", datetime(2026, 1, 1, tzinfo=UTC)), "every"),
        (lambda: IntervalTrigger.build(1e-9, datetime(2026, 1, 1, tzinfo=UTC)), "every"),
        (lambda: IntervalTrigger.build("30s", datetime(2026, 1, 1)), "anchor"),
        (lambda: OnceTrigger(datetime(2026, 1, 1)), "at"),
        (lambda: trigger_from_dict({"kind": "weekly"}), "kind"),
        (lambda: trigger_from_dict({"kind": "cron"}), "cron"),
        (lambda: trigger_from_dict({"kind": "cron", "expression": "* * * * *", "tz": "UTC"}), "tz"),
        (
            lambda: trigger_from_dict({"kind": "cron", "expression": "0 9 * * *", "timezone": 1}),
            "timezone",
        ),
        (
            lambda: trigger_from_dict({"kind": "cron", "expression": "0 9 * * *", "dst_gap": 1}),
            "dst_gap",
        ),
        (lambda: trigger_from_dict({"kind": "once", "at": "tomorrow"}), "at"),
        (lambda: trigger_from_dict({"kind": "once", "at": "2026-01-01T00:00:00"}), "at"),
        (lambda: trigger_from_dict({"kind": "interval", "every": "1h", "anchor": 5}), "anchor"),
        (lambda: trigger_from_dict({"kind": "interval", "anchor": "2026-01-01T00:00Z"}), "every"),
        (
            lambda: upcoming(CronTrigger("0 9 * * *"), datetime(2026, 1, 1, tzinfo=UTC), -1),
            "count",
        ),
    ],
)
def test_invalid_input_names_the_field(build: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        build()
    assert caught.value.field == field


@pytest.mark.parametrize(
    "trigger",
    [
        CronTrigger("0 9 * * *", "Europe/Berlin"),
        IntervalTrigger.build("1h", datetime(2026, 1, 1, tzinfo=UTC)),
        OnceTrigger(datetime(2026, 1, 1, tzinfo=UTC)),
    ],
    ids=["cron", "interval", "once"],
)
def test_naive_after_is_refused(trigger: Trigger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        trigger.next_fire(datetime(2026, 1, 1))


def test_every_zone_of_the_system_builds_a_trigger() -> None:
    for zone in ALL_ZONES:
        assert CronTrigger.build("0 9 * * *", zone).timezone == zone


# --- round trips and identity --------------------------------------------------------------


aware_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def triggers() -> st.SearchStrategy[Trigger]:
    cron = st.builds(
        CronTrigger.build,
        st.sampled_from(
            ["0 9 * * MON-FRI", "*/15 * * * *", "30 2 * * *", "0 0 1 * *", "5 4 * * SUN"]
        ),
        st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
        st.sampled_from(list(DstGap)),
        st.sampled_from(list(DstFold)),
    )
    every = st.floats(min_value=0.001, max_value=1e7, allow_nan=False, allow_infinity=False)
    interval = st.builds(IntervalTrigger.build, every, aware_instants)
    once = st.builds(OnceTrigger, aware_instants)
    return st.one_of(cron, interval, once)


@given(triggers())
def test_to_dict_is_json_and_round_trips(trigger: Trigger) -> None:
    spec = json.loads(json.dumps(trigger.to_dict()))
    assert spec["kind"] == trigger.kind
    again = trigger_from_dict(spec)
    assert again == trigger
    assert hash(again) == hash(trigger)


def test_equal_triggers_are_one_in_a_set() -> None:
    assert (
        len({CronTrigger("0  9 * * *"), CronTrigger.build("0 9 * * *", "UTC", "run_after_gap")})
        == 1
    )
    assert CronTrigger("0 9 * * *", "Europe/Berlin") != CronTrigger("0 9 * * *", "Europe/Paris")


def test_policies_accept_their_string_values() -> None:
    trigger = CronTrigger.build("0 9 * * *", dst_gap="skip", dst_fold="both")
    assert trigger.dst_gap is DstGap.SKIP
    assert trigger.dst_fold is DstFold.BOTH


# --- interval and once ---------------------------------------------------------------------


@given(
    every=st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False),
    anchor=aware_instants,
    offset=st.floats(min_value=-1e8, max_value=1e8, allow_nan=False),
)
def test_interval_fires_at_the_first_anchor_step_after(
    every: float, anchor: datetime, offset: float
) -> None:
    trigger = IntervalTrigger.build(every, anchor)
    after = anchor + timedelta(seconds=offset)
    fire = trigger.next_fire(after)
    assert fire is not None
    assert fire.at > after
    assert fire.at.tzinfo is UTC
    assert fire.dst is DstEffect.NONE
    step = timedelta(seconds=every)
    steps, remainder = divmod(fire.at - anchor, step)
    assert remainder == timedelta(0)
    assert steps >= 0
    assert steps == 0 or fire.at - step <= after  # no step was jumped over


def test_interval_counts_elapsed_time_across_a_dst_night() -> None:
    berlin_night = datetime(2026, 3, 28, 23, tzinfo=ZoneInfo("Europe/Berlin"))
    trigger = IntervalTrigger.build("1h", berlin_night)
    fires = upcoming(trigger, berlin_night, 4)
    gaps = {later.at - earlier.at for earlier, later in pairwise(fires)}
    assert gaps == {timedelta(hours=1)}
    assert fires[0].at == berlin_night + timedelta(hours=1)


def test_interval_anchor_is_its_first_fire() -> None:
    anchor = datetime(2026, 6, 1, 12, tzinfo=UTC)
    trigger = IntervalTrigger.build(timedelta(minutes=10), anchor)
    fire = trigger.next_fire(anchor - timedelta(days=3))
    assert fire == Fire(anchor, anchor, DstEffect.NONE, nominal=anchor.replace(tzinfo=None))


def test_once_fires_once() -> None:
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    trigger = OnceTrigger(at.astimezone(ZoneInfo("Asia/Tokyo")))
    assert trigger.at.tzinfo is UTC
    assert upcoming(trigger, at - DAY, 5) == [
        Fire(at, at, DstEffect.NONE, nominal=at.replace(tzinfo=None))
    ]
    assert trigger.next_fire(at) is None


def test_upcoming_of_zero_is_empty() -> None:
    assert upcoming(CronTrigger("* * * * *"), datetime(2026, 1, 1, tzinfo=UTC), 0) == []


# --- cron basics ---------------------------------------------------------------------------


@given(
    expression=st.sampled_from(
        ["*/7 * * * *", "0 9 * * MON-FRI", "15 3 1 * *", "0 0 29 2 *", "5 4 L * *", "0 12 * * 5L"]
    ),
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_cron_in_utc_fires_exactly_at_the_walls_cronsim_yields(
    expression: str, start: datetime
) -> None:
    # Guards the parse-once cache: iterating copies of one parsed CronSim must give the
    # same walls as a fresh CronSim.
    fires = upcoming(CronTrigger(expression), start.replace(tzinfo=UTC), 5)
    fresh = list(islice(CronSim(expression, start), 5))
    assert [fire.nominal for fire in fires] == fresh
    assert [fire.local.replace(tzinfo=None) for fire in fires] == fresh
    assert [fire.at.replace(tzinfo=None) for fire in fires] == fresh


@given(
    after=aware_instants,
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]),
)
def test_next_fire_depends_on_the_instant_not_the_zone_it_is_written_in(
    after: datetime, zone: str
) -> None:
    trigger = CronTrigger("*/20 1-3 * * *", "Europe/Berlin", dst_fold=DstFold.BOTH)
    assert trigger.next_fire(after) == trigger.next_fire(after.astimezone(ZoneInfo(zone)))


def test_six_field_expressions_carry_seconds() -> None:
    fire = CronTrigger("30 0 9 * * *").next_fire(datetime(2026, 1, 1, tzinfo=UTC))
    assert fire is not None
    assert fire.at == datetime(2026, 1, 1, 9, 0, 30, tzinfo=UTC)


def test_sub_second_after_is_resumed_exactly() -> None:
    trigger = CronTrigger("* * * * *")
    after = datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    fire = trigger.next_fire(after)
    assert fire is not None
    assert fire.at == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_an_expression_that_never_matches_again_ends() -> None:
    # Cron cannot say "only in 2026", so run past the end of datetime instead.
    assert CronTrigger("0 0 * * *").next_fire(datetime(9999, 12, 31, 1, tzinfo=UTC)) is None


# --- cron against DST in every zone --------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A cron expression and, independently of cronsim, the values it matches."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: any
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # cron numbering, 0 = Sunday

    @property
    def fixed_time(self) -> bool:
        return len(self.minutes) == 1 and len(self.hours) < 24

    def matches_day(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        dom = self.days is None or day.day in self.days
        dow = self.weekdays is None or day.isoweekday() % 7 in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return dom or dow  # cron: both restricted means either
        return dom and dow

    def walls(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Matching naive wall times in [start, end), in order."""
        day = start.date()
        while day <= end.date():
            if self.matches_day(day):
                for hour, minute in product(sorted(self.hours), sorted(self.minutes)):
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if start <= wall < end:
                        yield wall
            day += DAY


def _field(text: str, values: frozenset[int] | set[int] | range) -> tuple[str, frozenset[int]]:
    return text, frozenset(values)


def _listed(values: set[int]) -> tuple[str, frozenset[int]]:
    return _field(",".join(str(value) for value in sorted(values)), values)


def _hour_range(first_and_length: tuple[int, int]) -> tuple[str, frozenset[int]]:
    first, length = first_and_length
    last = min(first + length, 23)
    return _field(f"{first}-{last}", range(first, last + 1))


def _maybe(values: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    # Mostly "*": three of four branches.
    return st.one_of(st.none(), st.none(), st.none(), values)


@st.composite
def specs(draw: st.DrawFn, hot_hours: list[int]) -> Spec:
    """Expressions whose hours lean towards the hours a zone changes its clocks."""
    hour = st.sampled_from(hot_hours) if hot_hours else st.integers(0, 23)
    hour = st.one_of(hour, st.integers(0, 23))
    minute_text, minutes = draw(
        st.one_of(
            st.integers(0, 59).map(lambda m: _field(str(m), {m})),
            st.sampled_from([0, 15, 30, 45]).map(lambda m: _field(str(m), {m})),
            st.sets(st.integers(0, 59), min_size=2, max_size=4).map(_listed),
            st.sampled_from([5, 10, 15, 20, 30]).map(lambda k: _field(f"*/{k}", range(0, 60, k))),
            st.just(_field("*", range(60))),
        )
    )
    hour_choices = [
        hour.map(lambda h: _field(str(h), {h})),
        st.sets(hour, min_size=2, max_size=3).map(_listed),
        st.tuples(hour, st.integers(0, 4)).map(_hour_range),
    ]
    if len(minutes) < 60:  # every minute of every hour would only cost time
        hour_choices.append(st.just(_field("*", range(24))))
    hour_text, hours = draw(st.one_of(hour_choices))
    day = draw(_maybe(st.integers(1, 28)))
    month = draw(_maybe(st.integers(1, 12)))
    weekday = draw(_maybe(st.integers(0, 6)))
    text = " ".join(
        [
            minute_text,
            hour_text,
            "*" if day is None else str(day),
            "*" if month is None else str(month),
            "*" if weekday is None else str(weekday),
        ]
    )
    return Spec(
        text,
        minutes,
        hours,
        None if day is None else frozenset({day}),
        None if month is None else frozenset({month}),
        None if weekday is None else frozenset({weekday}),
    )


@dataclass(frozen=True)
class Transition:
    at: datetime  # aware UTC
    before: timedelta
    after: timedelta


def _offset_at(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def find_transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[Transition]:
    """Offset changes in [start, end): sample utcoffset daily, then bisect to the second."""
    found: list[Transition] = []
    moment = start.replace(microsecond=0)
    offset = _offset_at(zone, moment)
    while moment < end:
        following = moment + DAY
        next_offset = _offset_at(zone, following)
        if next_offset != offset:
            low, high = 0, 86400  # seconds after `moment`; transitions fall on whole seconds
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_at(zone, moment + middle * SECOND) == offset:
                    low = middle
                else:
                    high = middle
            found.append(Transition(moment + high * SECOND, offset, next_offset))
        moment, offset = following, next_offset
    return found


@dataclass(frozen=True)
class Expected:
    at: datetime
    dst: DstEffect
    wall: datetime  # naive
    fold: int


def reference_fires(
    spec: Spec,
    zone: ZoneInfo,
    *,
    low: datetime,
    high: datetime,
    transitions: list[Transition],
    gap: DstGap,
    fold: DstFold,
) -> tuple[list[Expected], list[tuple[datetime, datetime]], list[Transition]]:
    """What must fire in (low, high], from first principles.

    Returns the fires, every existing matching instant as (instant, wall), and the
    transitions whose gap holds a matching wall time.
    """
    inside = [t for t in transitions if low < t.at <= high]
    bounds = [low, *(t.at for t in inside), high + SECOND]
    offsets = [_offset_at(zone, low), *(t.after for t in inside)]
    occurrences: dict[datetime, list[datetime]] = {}
    for begin, end, offset in zip(bounds, bounds[1:], offsets, strict=False):
        # Between transitions the offset is constant: wall = instant + offset.
        for wall in spec.walls(
            (begin + offset).replace(tzinfo=None), (end + offset).replace(tzinfo=None)
        ):
            instant = (wall - offset).replace(tzinfo=UTC)
            if low < instant <= high:
                occurrences.setdefault(wall, []).append(instant)
    existing = sorted(
        (instant, wall) for wall, instants in occurrences.items() for instant in instants
    )
    fires: list[Expected] = []
    for wall, instants in occurrences.items():
        if len(instants) == 1:
            fires.append(Expected(instants[0], DstEffect.NONE, wall, 0))
            continue
        first, second = sorted(instants)
        fires.append(Expected(first, DstEffect.FIRST_OF_TWO, wall, 0))
        if fold is DstFold.BOTH:
            fires.append(Expected(second, DstEffect.SECOND_OF_TWO, wall, 1))
    gaps: list[Transition] = []
    for transition in inside:
        if transition.after <= transition.before:
            continue
        nominal = list(
            spec.walls(
                (transition.at + transition.before).replace(tzinfo=None),
                (transition.at + transition.after).replace(tzinfo=None),
            )
        )
        if not nominal:
            continue
        gaps.append(transition)
        if gap is DstGap.RUN_AFTER_GAP:
            # The wall at the gap's end fires at the same instant: one fire, not two.
            fires = [fire for fire in fires if fire.at != transition.at]
            fires.append(Expected(transition.at, DstEffect.MOVED, nominal[0], 0))
    fires.sort(key=lambda fire: fire.at)
    return fires, existing, gaps


def fires_between(trigger: CronTrigger, low: datetime, high: datetime) -> list[Fire]:
    fires: list[Fire] = []
    fire = trigger.next_fire(low)
    while fire is not None and fire.at <= high:
        fires.append(fire)
        fire = trigger.next_fire(fire.at)
    return fires


def windows(
    transitions: list[Transition], ordinary_day: datetime
) -> list[tuple[datetime, datetime]]:
    """A day either side of each transition (merged), and one day far from any."""
    spans: list[tuple[datetime, datetime]] = []
    for transition in transitions:
        low, high = transition.at - DAY, transition.at + DAY
        if spans and low <= spans[-1][1]:
            spans[-1] = (spans[-1][0], high)
        else:
            spans.append((low, high))
    if all(abs(t.at - ordinary_day) > 3 * DAY for t in transitions):
        spans.append((ordinary_day, ordinary_day + DAY))
    return spans


@pytest.mark.parametrize("key", ALL_ZONES)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cron_follows_the_dst_policy_in_every_zone(key: str, data: st.DataObject) -> None:
    zone = ZoneInfo(key)
    start = data.draw(
        st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        ),
        label="start",
    )
    end = start + 730 * DAY
    transitions = find_transitions(zone, start - 2 * DAY, end + 2 * DAY)
    hot_hours = sorted(
        {(t.at + offset).hour for t in transitions for offset in (t.before, t.after)}
    )
    spec = data.draw(specs(hot_hours), label="spec")
    ordinary_day = start + data.draw(st.integers(0, 729), label="ordinary day") * DAY
    spans = [
        span for span in windows(transitions, ordinary_day) if start <= span[0] and span[1] <= end
    ]
    probes = data.draw(st.lists(st.integers(0, 2 * 86400), min_size=3, max_size=3), label="probes")

    for gap, fold in POLICIES:
        trigger = CronTrigger.build(spec.text, key, gap, fold)
        for low, high in spans:
            actual = fires_between(trigger, low, high)
            expected, existing, gaps = reference_fires(
                spec, zone, low=low, high=high, transitions=transitions, gap=gap, fold=fold
            )
            instants = [fire.at for fire in actual]
            context = f"{spec.text!r} in {key}, {gap.value}/{fold.value}, ({low}, {high}]"

            # (1) fire times strictly increase
            assert all(a < b for a, b in pairwise(instants)), context
            # (2) one wall time fires once, unless both occurrences of a repeat are wanted
            per_wall = Counter(fire.nominal for fire in actual)
            most = max(per_wall.values(), default=0)
            assert most <= (2 if fold is DstFold.BOTH else 1), context
            if spec.fixed_time and fold is DstFold.FIRST:
                assert most <= 1, context
            # (3) no existing matching instant is missed, bar second occurrences under FIRST
            repeated = Counter(wall for _, wall in existing)
            seconds = {
                instant
                for instant, wall in existing
                if repeated[wall] == 2 and instant == max(i for i, w in existing if w == wall)
            }
            wanted = {instant for instant, _ in existing}
            if fold is DstFold.FIRST:
                wanted -= seconds
            assert wanted <= set(instants), context
            # (4) under RUN_AFTER_GAP every gap holding a matching wall fires once at its end
            moved = [fire for fire in actual if fire.dst is DstEffect.MOVED]
            if gap is DstGap.RUN_AFTER_GAP:
                assert [fire.at for fire in moved] == [t.at for t in gaps], context
            else:
                assert moved == [], context
            # and exactly the reference, wall times and folds included
            assert [
                Expected(fire.at, fire.dst, fire.nominal, fire.local.fold)
                for fire in actual
            ] == expected, context
            for fire in actual:
                assert fire.at.tzinfo is UTC
                assert fire.local.tzinfo is zone
                shown = fire.at.astimezone(zone)
                assert (shown.replace(tzinfo=None), shown.fold) == (
                    fire.local.replace(tzinfo=None),
                    fire.local.fold,
                ), context
                if fire.dst is not DstEffect.MOVED:
                    assert fire.nominal == shown.replace(tzinfo=None), context
            # resuming from any instant, not only from a fire, gives the next fire
            for probe in (
                *(low + seconds * SECOND for seconds in probes),
                *(t.at for t in transitions),
            ):
                following = next((e for e in expected if e.at > probe), None)
                if not low <= probe < high or following is None:
                    continue  # the reference only knows the window
                resumed = trigger.next_fire(probe)
                assert resumed is not None, context
                assert (resumed.at, resumed.dst) == (following.at, following.dst), (
                    f"{context} from {probe}"
                )
