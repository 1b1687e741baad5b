"""Durations as users write them: text with units, plain numbers, timedeltas; every
refusal names the field it came from."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskwheel.durations import format_duration, parse_duration
from taskwheel.errors import InvalidInput

UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("2d3h4m5s", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0),
        ("  45s  ", 45.0),
        ("12", 12.0),
        ("0.5", 0.5),
        ("0s", 0.0),
        ("0", 0.0),
    ],
)
def test_text_durations_are_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text, "timeout") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
        (timedelta(minutes=2, milliseconds=500), 120.5),
        (timedelta(0), 0.0),
    ],
)
def test_numbers_and_timedeltas_are_seconds(value: int | float | timedelta, seconds: float) -> None:
    result = parse_duration(value, "delay")
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    [
        "", "   ", "abc", "5 s", "1h 30m", "30S", "30sec", "s", "10x", "1h30", ".5s", "5.s",
        "0x10", "30s!", "ms30",
    ],
)
def test_malformed_text_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInput, match="malformed duration") as caught:
        parse_duration(value, "lease_ttl")
    assert caught.value.field == "lease_ttl"
    assert str(caught.value).startswith("lease_ttl: ")


@pytest.mark.parametrize(
    "value",
    ["-5", "-5s", " -1m", "-0.5", -1, -0.001, timedelta(seconds=-1)],
)
def test_negative_durations_are_refused_naming_the_field(value: str | float | timedelta) -> None:
    with pytest.raises(InvalidInput, match="must not be negative") as caught:
        parse_duration(value, "timeout")
    assert caught.value.field == "timeout"


@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, math.nan, "inf", "nan", "1e400", "9" * 400 + "w"]
)
def test_infinite_or_nan_durations_are_refused(value: str | float) -> None:
    with pytest.raises(InvalidInput, match="finite") as caught:
        parse_duration(value, "cap")
    assert caught.value.field == "cap"


@pytest.mark.parametrize("value", [True, False, None, [30], {"s": 30}, b"30s"])
def test_values_of_other_types_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="expected a duration") as caught:
        parse_duration(value, "every")  # type: ignore[arg-type]
    assert caught.value.field == "every"


@pytest.mark.parametrize("value", [0, 0.0, "0s", "0", "0ms", timedelta(0)])
def test_zero_is_refused_only_when_asked(value: str | float | timedelta) -> None:
    assert parse_duration(value, "delay") == 0.0
    with pytest.raises(InvalidInput, match="greater than zero") as caught:
        parse_duration(value, "timeout", allow_zero=False)
    assert caught.value.field == "timeout"


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(UNIT_SECONDS))
        ),
        min_size=1,
        max_size=5,
    )
)
def test_a_sequence_of_parts_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{count}{unit}" for count, unit in parts)
    expected = sum(count * UNIT_SECONDS[unit] for count, unit in parts)
    assert parse_duration(text, "delay") == pytest.approx(expected)


@settings(max_examples=60)
@given(st.floats(min_value=0, max_value=10 * 365 * 86400, allow_nan=False))
def test_formatted_durations_read_back_close_to_the_original(seconds: float) -> None:
    text = format_duration(seconds)
    back = parse_duration(text, "delay")
    # Below a second: whole milliseconds; below a minute: three significant figures;
    # above: whole seconds.
    if seconds < 1:
        assert back == pytest.approx(seconds, abs=0.0005 + 1e-12)
    elif seconds < 60:
        assert back == pytest.approx(seconds, rel=0.005)
    else:
        assert back == pytest.approx(seconds, abs=0.5 + 1e-9)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (5, "5s"), (90, "1m30s"), (5400, "1h30m"), (86400 + 61, "1d1m1s")],
)
def test_durations_are_formatted_compactly(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
