"""DST nights written out: the exact fires of cron triggers around real transitions.

Europe/Berlin     2026-03-29  02:00 CET  -> 03:00 CEST at 01:00Z (02:00-02:59 missing)
                  2026-10-25  03:00 CEST -> 02:00 CET  at 01:00Z (02:00-02:59 twice)
America/New_York  2026-03-08  02:00 EST  -> 03:00 EDT  at 07:00Z (02:00-02:59 missing)
                  2026-11-01  02:00 EDT  -> 01:00 EST  at 06:00Z (01:00-01:59 twice)
Lord_Howe         2026-04-05  02:00 +11  -> 01:30 +1030 at 15:00Z on the 4th (01:30-01:59 twice)
                  2026-10-04  02:00 +1030 -> 02:30 +11 at 15:30Z on the 3rd (02:00-02:29 missing)
America/Santiago  2026-04-05  00:00 -03  -> 23:00 -04 (the 4th) at 03:00Z (23:00-23:59 twice)
                  2026-09-06  00:00 -04  -> 01:00 -03  at 04:00Z (00:00-00:59 missing)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from taskwheel.triggers import CronTrigger, DstEffect, DstFold, DstGap, Fire

NONE, MOVED = DstEffect.NONE, DstEffect.MOVED
FIRST, SECOND = DstEffect.FIRST_OF_TWO, DstEffect.SECOND_OF_TWO
RUN, SKIP = DstGap.RUN_AFTER_GAP, DstGap.SKIP
ONCE, BOTH = DstFold.FIRST, DstFold.BOTH


@dataclass(frozen=True)
class Night:
    zone: str
    expression: str
    gaps: tuple[DstGap, ...]  # the policies this night is checked under
    folds: tuple[DstFold, ...]
    after: str  # UTC, exclusive
    until: str  # UTC, inclusive
    # (instant in UTC, nominal wall time "YYYY-MM-DD HH:MM", effect)
    fires: tuple[tuple[str, str, DstEffect], ...]


ANY_GAP = (RUN, SKIP)
ANY_FOLD = (ONCE, BOTH)

BERLIN_SPRING = ("Europe/Berlin", "2026-03-28T22:00Z", "2026-03-29T03:00Z")
BERLIN_FALL = ("Europe/Berlin", "2026-10-24T22:00Z", "2026-10-25T04:00Z")
NEW_YORK_SPRING = ("America/New_York", "2026-03-08T05:00Z", "2026-03-08T09:00Z")
NEW_YORK_FALL = ("America/New_York", "2026-11-01T04:00Z", "2026-11-01T08:00Z")
LORD_HOWE_FALL = ("Australia/Lord_Howe", "2026-04-04T13:00Z", "2026-04-04T17:00Z")
LORD_HOWE_SPRING = ("Australia/Lord_Howe", "2026-10-03T14:00Z", "2026-10-03T17:00Z")
SANTIAGO_FALL = ("America/Santiago", "2026-04-05T00:00Z", "2026-04-05T06:00Z")
SANTIAGO_SPRING = ("America/Santiago", "2026-09-06T00:00Z", "2026-09-06T06:00Z")


def night(
    where: tuple[str, str, str],
    expression: str,
    gaps: tuple[DstGap, ...],
    folds: tuple[DstFold, ...],
    *fires: tuple[str, str, DstEffect],
    window: tuple[str, str] | None = None,
) -> Night:
    zone, after, until = where
    if window is not None:
        after, until = window
    return Night(zone, expression, gaps, folds, after, until, fires)


NIGHTS: dict[str, Night] = {
    # Berlin, spring forward: 02:00-02:59 does not exist.
    "berlin-spring-0230-run": night(
        BERLIN_SPRING, "30 2 * * *", (RUN,), ANY_FOLD,
        ("2026-03-29T01:00Z", "2026-03-29 02:30", MOVED),
    ),
    "berlin-spring-0230-skip": night(BERLIN_SPRING, "30 2 * * *", (SKIP,), ANY_FOLD),
    "berlin-spring-0200-run": night(
        BERLIN_SPRING, "0 2 * * *", (RUN,), ANY_FOLD,
        ("2026-03-29T01:00Z", "2026-03-29 02:00", MOVED),
    ),
    "berlin-spring-0200-skip": night(BERLIN_SPRING, "0 2 * * *", (SKIP,), ANY_FOLD),
    "berlin-spring-0300": night(
        BERLIN_SPRING, "0 3 * * *", ANY_GAP, ANY_FOLD,
        ("2026-03-29T01:00Z", "2026-03-29 03:00", NONE),
    ),
    "berlin-spring-0200-and-0300-run-fire-once": night(
        BERLIN_SPRING, "0 2,3 * * *", (RUN,), ANY_FOLD,
        ("2026-03-29T01:00Z", "2026-03-29 02:00", MOVED),
    ),
    "berlin-spring-0200-and-0300-skip": night(
        BERLIN_SPRING, "0 2,3 * * *", (SKIP,), ANY_FOLD,
        ("2026-03-29T01:00Z", "2026-03-29 03:00", NONE),
    ),
    "berlin-spring-0130": night(
        BERLIN_SPRING, "30 1 * * *", ANY_GAP, ANY_FOLD,
        ("2026-03-29T00:30Z", "2026-03-29 01:30", NONE),
    ),
    "berlin-spring-quarters-run": night(
        BERLIN_SPRING, "*/15 * * * *", (RUN,), ANY_FOLD,
        ("2026-03-29T00:45Z", "2026-03-29 01:45", NONE),
        ("2026-03-29T01:00Z", "2026-03-29 02:00", MOVED),  # 02:00-02:45 and 03:00 as one
        ("2026-03-29T01:15Z", "2026-03-29 03:15", NONE),
        ("2026-03-29T01:30Z", "2026-03-29 03:30", NONE),
        window=("2026-03-29T00:30Z", "2026-03-29T01:30Z"),
    ),
    "berlin-spring-quarters-skip": night(
        BERLIN_SPRING, "*/15 * * * *", (SKIP,), ANY_FOLD,
        ("2026-03-29T00:45Z", "2026-03-29 01:45", NONE),
        ("2026-03-29T01:00Z", "2026-03-29 03:00", NONE),
        ("2026-03-29T01:15Z", "2026-03-29 03:15", NONE),
        ("2026-03-29T01:30Z", "2026-03-29 03:30", NONE),
        window=("2026-03-29T00:30Z", "2026-03-29T01:30Z"),
    ),
    # Berlin, fall back: 02:00-02:59 happens twice, first at +02:00, then at +01:00.
    "berlin-fall-0230-first": night(
        BERLIN_FALL, "30 2 * * *", ANY_GAP, (ONCE,),
        ("2026-10-25T00:30Z", "2026-10-25 02:30", FIRST),
    ),
    "berlin-fall-0230-both": night(
        BERLIN_FALL, "30 2 * * *", ANY_GAP, (BOTH,),
        ("2026-10-25T00:30Z", "2026-10-25 02:30", FIRST),
        ("2026-10-25T01:30Z", "2026-10-25 02:30", SECOND),
    ),
    "berlin-fall-0200-first": night(
        BERLIN_FALL, "0 2 * * *", ANY_GAP, (ONCE,),
        ("2026-10-25T00:00Z", "2026-10-25 02:00", FIRST),
    ),
    "berlin-fall-0200-both": night(
        BERLIN_FALL, "0 2 * * *", ANY_GAP, (BOTH,),
        ("2026-10-25T00:00Z", "2026-10-25 02:00", FIRST),
        ("2026-10-25T01:00Z", "2026-10-25 02:00", SECOND),
    ),
    "berlin-fall-0300": night(
        BERLIN_FALL, "0 3 * * *", ANY_GAP, ANY_FOLD,
        ("2026-10-25T02:00Z", "2026-10-25 03:00", NONE),
    ),
    "berlin-fall-0130": night(
        BERLIN_FALL, "30 1 * * *", ANY_GAP, ANY_FOLD,
        ("2026-10-24T23:30Z", "2026-10-25 01:30", NONE),
    ),
    "berlin-fall-quarters-first": night(
        BERLIN_FALL, "*/15 * * * *", ANY_GAP, (ONCE,),
        ("2026-10-25T00:00Z", "2026-10-25 02:00", FIRST),
        ("2026-10-25T00:15Z", "2026-10-25 02:15", FIRST),
        ("2026-10-25T00:30Z", "2026-10-25 02:30", FIRST),
        ("2026-10-25T00:45Z", "2026-10-25 02:45", FIRST),
        ("2026-10-25T02:00Z", "2026-10-25 03:00", NONE),  # the repeated hour is silent
        window=("2026-10-24T23:50Z", "2026-10-25T02:00Z"),
    ),
    "berlin-fall-quarters-both": night(
        BERLIN_FALL, "*/15 * * * *", ANY_GAP, (BOTH,),
        ("2026-10-25T00:00Z", "2026-10-25 02:00", FIRST),
        ("2026-10-25T00:15Z", "2026-10-25 02:15", FIRST),
        ("2026-10-25T00:30Z", "2026-10-25 02:30", FIRST),
        ("2026-10-25T00:45Z", "2026-10-25 02:45", FIRST),
        ("2026-10-25T01:00Z", "2026-10-25 02:00", SECOND),
        ("2026-10-25T01:15Z", "2026-10-25 02:15", SECOND),
        ("2026-10-25T01:30Z", "2026-10-25 02:30", SECOND),
        ("2026-10-25T01:45Z", "2026-10-25 02:45", SECOND),
        ("2026-10-25T02:00Z", "2026-10-25 03:00", NONE),
        window=("2026-10-24T23:50Z", "2026-10-25T02:00Z"),
    ),
    # New York, spring forward: 02:00-02:59 does not exist.
    "new-york-spring-0230-run": night(
        NEW_YORK_SPRING, "30 2 * * *", (RUN,), ANY_FOLD,
        ("2026-03-08T07:00Z", "2026-03-08 02:30", MOVED),
    ),
    "new-york-spring-0230-skip": night(NEW_YORK_SPRING, "30 2 * * *", (SKIP,), ANY_FOLD),
    "new-york-spring-0200-run": night(
        NEW_YORK_SPRING, "0 2 * * *", (RUN,), ANY_FOLD,
        ("2026-03-08T07:00Z", "2026-03-08 02:00", MOVED),
    ),
    "new-york-spring-0130": night(
        NEW_YORK_SPRING, "30 1 * * *", ANY_GAP, ANY_FOLD,
        ("2026-03-08T06:30Z", "2026-03-08 01:30", NONE),
    ),
    "new-york-spring-0300": night(
        NEW_YORK_SPRING, "0 3 * * *", ANY_GAP, ANY_FOLD,
        ("2026-03-08T07:00Z", "2026-03-08 03:00", NONE),
    ),
    "new-york-spring-quarters-run": night(
        NEW_YORK_SPRING, "*/15 * * * *", (RUN,), ANY_FOLD,
        ("2026-03-08T06:45Z", "2026-03-08 01:45", NONE),
        ("2026-03-08T07:00Z", "2026-03-08 02:00", MOVED),
        ("2026-03-08T07:15Z", "2026-03-08 03:15", NONE),
        window=("2026-03-08T06:40Z", "2026-03-08T07:20Z"),
    ),
    "new-york-spring-quarters-skip": night(
        NEW_YORK_SPRING, "*/15 * * * *", (SKIP,), ANY_FOLD,
        ("2026-03-08T06:45Z", "2026-03-08 01:45", NONE),
        ("2026-03-08T07:00Z", "2026-03-08 03:00", NONE),
        ("2026-03-08T07:15Z", "2026-03-08 03:15", NONE),
        window=("2026-03-08T06:40Z", "2026-03-08T07:20Z"),
    ),
    # New York, fall back: 01:00-01:59 happens twice, first at -04:00, then at -05:00.
    "new-york-fall-0130-first": night(
        NEW_YORK_FALL, "30 1 * * *", ANY_GAP, (ONCE,),
        ("2026-11-01T05:30Z", "2026-11-01 01:30", FIRST),
    ),
    "new-york-fall-0130-both": night(
        NEW_YORK_FALL, "30 1 * * *", ANY_GAP, (BOTH,),
        ("2026-11-01T05:30Z", "2026-11-01 01:30", FIRST),
        ("2026-11-01T06:30Z", "2026-11-01 01:30", SECOND),
    ),
    "new-york-fall-0100-both": night(
        NEW_YORK_FALL, "0 1 * * *", ANY_GAP, (BOTH,),
        ("2026-11-01T05:00Z", "2026-11-01 01:00", FIRST),
        ("2026-11-01T06:00Z", "2026-11-01 01:00", SECOND),
    ),
    "new-york-fall-0230": night(
        NEW_YORK_FALL, "30 2 * * *", ANY_GAP, ANY_FOLD,
        ("2026-11-01T07:30Z", "2026-11-01 02:30", NONE),
    ),
    "new-york-fall-0030": night(
        NEW_YORK_FALL, "30 0 * * *", ANY_GAP, ANY_FOLD,
        ("2026-11-01T04:30Z", "2026-11-01 00:30", NONE),
    ),
    "new-york-fall-thirds-first": night(
        NEW_YORK_FALL, "*/20 * * * *", ANY_GAP, (ONCE,),
        ("2026-11-01T05:00Z", "2026-11-01 01:00", FIRST),
        ("2026-11-01T05:20Z", "2026-11-01 01:20", FIRST),
        ("2026-11-01T05:40Z", "2026-11-01 01:40", FIRST),
        ("2026-11-01T07:00Z", "2026-11-01 02:00", NONE),
        window=("2026-11-01T04:50Z", "2026-11-01T07:00Z"),
    ),
    "new-york-fall-thirds-both": night(
        NEW_YORK_FALL, "*/20 * * * *", ANY_GAP, (BOTH,),
        ("2026-11-01T05:00Z", "2026-11-01 01:00", FIRST),
        ("2026-11-01T05:20Z", "2026-11-01 01:20", FIRST),
        ("2026-11-01T05:40Z", "2026-11-01 01:40", FIRST),
        ("2026-11-01T06:00Z", "2026-11-01 01:00", SECOND),
        ("2026-11-01T06:20Z", "2026-11-01 01:20", SECOND),
        ("2026-11-01T06:40Z", "2026-11-01 01:40", SECOND),
        ("2026-11-01T07:00Z", "2026-11-01 02:00", NONE),
        window=("2026-11-01T04:50Z", "2026-11-01T07:00Z"),
    ),
    # Lord Howe, fall back by half an hour: 01:30-01:59 happens twice.
    "lord-howe-fall-0145-first": night(
        LORD_HOWE_FALL, "45 1 * * *", ANY_GAP, (ONCE,),
        ("2026-04-04T14:45Z", "2026-04-05 01:45", FIRST),
    ),
    "lord-howe-fall-0145-both": night(
        LORD_HOWE_FALL, "45 1 * * *", ANY_GAP, (BOTH,),
        ("2026-04-04T14:45Z", "2026-04-05 01:45", FIRST),
        ("2026-04-04T15:15Z", "2026-04-05 01:45", SECOND),
    ),
    "lord-howe-fall-0130-both": night(
        LORD_HOWE_FALL, "30 1 * * *", ANY_GAP, (BOTH,),
        ("2026-04-04T14:30Z", "2026-04-05 01:30", FIRST),
        ("2026-04-04T15:00Z", "2026-04-05 01:30", SECOND),
    ),
    "lord-howe-fall-0115": night(
        LORD_HOWE_FALL, "15 1 * * *", ANY_GAP, ANY_FOLD,
        ("2026-04-04T14:15Z", "2026-04-05 01:15", NONE),
    ),
    "lord-howe-fall-0200": night(
        LORD_HOWE_FALL, "0 2 * * *", ANY_GAP, ANY_FOLD,
        ("2026-04-04T15:30Z", "2026-04-05 02:00", NONE),
    ),
    "lord-howe-fall-quarters-first": night(
        LORD_HOWE_FALL, "*/15 * * * *", ANY_GAP, (ONCE,),
        ("2026-04-04T14:15Z", "2026-04-05 01:15", NONE),
        ("2026-04-04T14:30Z", "2026-04-05 01:30", FIRST),
        ("2026-04-04T14:45Z", "2026-04-05 01:45", FIRST),
        ("2026-04-04T15:30Z", "2026-04-05 02:00", NONE),
        window=("2026-04-04T14:10Z", "2026-04-04T15:30Z"),
    ),
    "lord-howe-fall-quarters-both": night(
        LORD_HOWE_FALL, "*/15 * * * *", ANY_GAP, (BOTH,),
        ("2026-04-04T14:15Z", "2026-04-05 01:15", NONE),
        ("2026-04-04T14:30Z", "2026-04-05 01:30", FIRST),
        ("2026-04-04T14:45Z", "2026-04-05 01:45", FIRST),
        ("2026-04-04T15:00Z", "2026-04-05 01:30", SECOND),
        ("2026-04-04T15:15Z", "2026-04-05 01:45", SECOND),
        ("2026-04-04T15:30Z", "2026-04-05 02:00", NONE),
        window=("2026-04-04T14:10Z", "2026-04-04T15:30Z"),
    ),
    # Lord Howe, spring forward by half an hour: 02:00-02:29 does not exist.
    "lord-howe-spring-0215-run": night(
        LORD_HOWE_SPRING, "15 2 * * *", (RUN,), ANY_FOLD,
        ("2026-10-03T15:30Z", "2026-10-04 02:15", MOVED),
    ),
    "lord-howe-spring-0215-skip": night(LORD_HOWE_SPRING, "15 2 * * *", (SKIP,), ANY_FOLD),
    "lord-howe-spring-0230": night(
        LORD_HOWE_SPRING, "30 2 * * *", ANY_GAP, ANY_FOLD,
        ("2026-10-03T15:30Z", "2026-10-04 02:30", NONE),
    ),
    "lord-howe-spring-0200-to-0230-run": night(
        LORD_HOWE_SPRING, "0,15,30 2 * * *", (RUN,), ANY_FOLD,
        ("2026-10-03T15:30Z", "2026-10-04 02:00", MOVED),
    ),
    "lord-howe-spring-0200-to-0230-skip": night(
        LORD_HOWE_SPRING, "0,15,30 2 * * *", (SKIP,), ANY_FOLD,
        ("2026-10-03T15:30Z", "2026-10-04 02:30", NONE),
    ),
    "lord-howe-spring-tens-run": night(
        LORD_HOWE_SPRING, "*/10 * * * *", (RUN,), ANY_FOLD,
        ("2026-10-03T15:20Z", "2026-10-04 01:50", NONE),
        ("2026-10-03T15:30Z", "2026-10-04 02:00", MOVED),
        ("2026-10-03T15:40Z", "2026-10-04 02:40", NONE),
        window=("2026-10-03T15:15Z", "2026-10-03T15:45Z"),
    ),
    "lord-howe-spring-tens-skip": night(
        LORD_HOWE_SPRING, "*/10 * * * *", (SKIP,), ANY_FOLD,
        ("2026-10-03T15:20Z", "2026-10-04 01:50", NONE),
        ("2026-10-03T15:30Z", "2026-10-04 02:30", NONE),
        ("2026-10-03T15:40Z", "2026-10-04 02:40", NONE),
        window=("2026-10-03T15:15Z", "2026-10-03T15:45Z"),
    ),
    # Santiago changes its clocks at midnight, so the affected hour belongs to a day
    # either side of the transition.
    "santiago-fall-2330-both": night(
        SANTIAGO_FALL, "30 23 * * *", ANY_GAP, (BOTH,),
        ("2026-04-05T02:30Z", "2026-04-04 23:30", FIRST),
        ("2026-04-05T03:30Z", "2026-04-04 23:30", SECOND),
    ),
    "santiago-fall-midnight": night(
        SANTIAGO_FALL, "0 0 * * *", ANY_GAP, ANY_FOLD,
        ("2026-04-05T04:00Z", "2026-04-05 00:00", NONE),
    ),
    "santiago-spring-midnight-run": night(
        SANTIAGO_SPRING, "0 0 * * *", (RUN,), ANY_FOLD,
        ("2026-09-06T04:00Z", "2026-09-06 00:00", MOVED),
    ),
    "santiago-spring-midnight-skip": night(SANTIAGO_SPRING, "0 0 * * *", (SKIP,), ANY_FOLD),
}  # fmt: skip


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def fires_between(trigger: CronTrigger, after: datetime, until: datetime) -> list[Fire]:
    fires: list[Fire] = []
    fire = trigger.next_fire(after)
    while fire is not None and fire.at <= until:
        fires.append(fire)
        fire = trigger.next_fire(fire.at)
    return fires


CASES = [
    pytest.param(night, gap, fold, id=f"{name}-{gap.value}-{fold.value}")
    for name, night in NIGHTS.items()
    for gap in night.gaps
    for fold in night.folds
]


@pytest.mark.parametrize(("night", "gap", "fold"), CASES)
def test_dst_night_fires_exactly(night: Night, gap: DstGap, fold: DstFold) -> None:
    zone = ZoneInfo(night.zone)
    trigger = CronTrigger.build(night.expression, night.zone, gap, fold)
    fires = fires_between(trigger, _utc(night.after), _utc(night.until))
    got = [
        (fire.at.isoformat(), fire.nominal.strftime("%Y-%m-%d %H:%M"), fire.dst) for fire in fires
    ]
    want = [(_utc(at).isoformat(), local, effect) for at, local, effect in night.fires]
    assert got == want
    for fire in fires:
        assert fire.at.tzinfo is UTC
        assert fire.local.tzinfo is zone
        # the same instant, whatever DST did (== between zones is False in a fold)
        assert fire.local.astimezone(UTC) == fire.at
        assert fire.local.fold == (1 if fire.dst is SECOND else 0)
    assert all(earlier.at < later.at for earlier, later in pairwise(fires))


def test_moved_fire_keeps_the_nominal_wall_time_that_did_not_exist() -> None:
    zone = ZoneInfo("Europe/Berlin")
    trigger = CronTrigger.build("30 2 * * *", "Europe/Berlin")
    fire = trigger.next_fire(_utc("2026-03-28T12:00Z"))
    assert fire is not None
    assert fire.nominal == datetime(2026, 3, 29, 2, 30)
    assert fire.at.astimezone(zone).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)


@pytest.mark.parametrize(
    ("zone", "expression", "after", "local", "nominal"),
    [
        # a one-hour jump: 02:00 CET -> 03:00 CEST
        ("Europe/Berlin", "30 2 * * *", "2026-03-28T12:00Z", "2026-03-29T03:00:00+02:00",
         "2026-03-29T02:30:00"),
        # a 30-minute jump: 02:00 +10:30 -> 02:30 +11:00
        ("Australia/Lord_Howe", "15 2 * * *", "2026-10-03T00:00Z", "2026-10-04T02:30:00+11:00",
         "2026-10-04T02:15:00"),
        # a zone 45 minutes off the hour: 02:45 +12:45 -> 03:45 +13:45
        ("Pacific/Chatham", "0 3 * * *", "2026-09-26T00:00Z", "2026-09-27T03:45:00+13:45",
         "2026-09-27T03:00:00"),
    ],
)
def test_a_moved_fire_shows_as_local_the_instant_that_fires(
    zone: str, expression: str, after: str, local: str, nominal: str
) -> None:
    # ``local`` names the same instant as ``at``; the wall time that did not exist is
    # kept apart, without an offset (it never had one).
    fire = CronTrigger.build(expression, zone).next_fire(_utc(after))
    assert fire is not None
    assert fire.dst is MOVED
    assert fire.local.astimezone(UTC) == fire.at
    assert fire.local.isoformat() == local
    assert fire.local.tzinfo is ZoneInfo(zone)
    assert fire.nominal.isoformat() == nominal


@pytest.mark.parametrize(
    ("expression", "fold", "after", "expected"),
    [
        # Between the first 02:45 and the second 02:00 lies only the transition.
        ("*/15 * * * *", BOTH, "2026-10-25T00:50Z", ("2026-10-25T01:00Z", SECOND)),
        ("*/15 * * * *", BOTH, "2026-10-25T00:45Z", ("2026-10-25T01:00Z", SECOND)),
        ("*/15 * * * *", BOTH, "2026-10-25T01:20Z", ("2026-10-25T01:30Z", SECOND)),
        ("*/15 * * * *", BOTH, "2026-10-25T00:59:59.999999Z", ("2026-10-25T01:00Z", SECOND)),
        ("*/15 * * * *", ONCE, "2026-10-25T00:50Z", ("2026-10-25T02:00Z", NONE)),
        # After the first 02:30, the first 02:45 comes before the second 02:00.
        ("*/15 * * * *", BOTH, "2026-10-25T00:30Z", ("2026-10-25T00:45Z", FIRST)),
        ("30 2 * * *", BOTH, "2026-10-25T00:30Z", ("2026-10-25T01:30Z", SECOND)),
        ("30 2 * * *", BOTH, "2026-10-25T01:30Z", ("2026-10-26T01:30Z", NONE)),
        ("30 2 * * *", ONCE, "2026-10-25T00:30Z", ("2026-10-26T01:30Z", NONE)),
        # From the transition itself, the second occurrences are next.
        ("0 2 * * *", BOTH, "2026-10-25T00:59:59Z", ("2026-10-25T01:00Z", SECOND)),
        ("0 2 * * *", BOTH, "2026-10-25T01:00Z", ("2026-10-26T01:00Z", NONE)),
    ],
)
def test_berlin_fall_night_resumes_from_any_instant(
    expression: str, fold: DstFold, after: str, expected: tuple[str, DstEffect]
) -> None:
    trigger = CronTrigger.build(expression, "Europe/Berlin", dst_fold=fold)
    fire = trigger.next_fire(_utc(after))
    assert fire is not None
    assert (fire.at, fire.dst) == (_utc(expected[0]), expected[1])


def test_resuming_from_a_second_occurrence_written_in_local_time() -> None:
    zone = ZoneInfo("America/New_York")
    trigger = CronTrigger.build("*/20 * * * *", "America/New_York", dst_fold="both")
    after = datetime(2026, 11, 1, 1, 10, tzinfo=zone, fold=1)  # 06:10Z, the second 01:10
    fire = trigger.next_fire(after)
    assert fire is not None
    assert (fire.at, fire.dst) == (_utc("2026-11-01T06:20Z"), SECOND)
    first_pass = trigger.next_fire(after.replace(fold=0))  # 05:10Z, the first 01:10
    assert first_pass is not None
    assert (first_pass.at, first_pass.dst) == (_utc("2026-11-01T05:20Z"), FIRST)


def test_gap_fires_once_at_its_end_and_not_again_from_there() -> None:
    # Asked from just before the gap's end, every matching time of the gap is still
    # ahead as one fire; asked from the gap's end, none is.
    trigger = CronTrigger.build("*/15 * * * *", "Europe/Berlin")
    before_end = trigger.next_fire(_utc("2026-03-29T00:59:59Z"))
    assert before_end is not None
    assert (before_end.at, before_end.dst) == (_utc("2026-03-29T01:00Z"), MOVED)
    at_end = trigger.next_fire(_utc("2026-03-29T01:00Z"))
    assert at_end is not None
    assert (at_end.at, at_end.dst) == (_utc("2026-03-29T01:15Z"), NONE)
