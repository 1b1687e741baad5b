"""Durations as users write them: ``"30s"``, ``"1h30m"``, ``"250ms"``, 5, 2.5, timedelta;
and the moments they give, which must carry a timezone."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from taskwheel.errors import InvalidInput

DurationLike = str | int | float | timedelta
# The longest delay or deadline: a time counted from now beyond it has no calendar date
# (datetime ends in the year 9999).
LONGEST_WAIT = 1000 * 365 * 86400.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# The longest duration taken: far beyond any delay, timeout or interval anyone means, and
# short enough that now plus it is a time every clock and database can hold.
MAX_DURATION = 1000 * 365.25 * 86400


def parse_duration(
    value: DurationLike, field: str, *, allow_zero: bool = True, longest: float | None = None
) -> float:
    """Return a duration in seconds, or raise `InvalidInput` naming ``field``.

    Example:
        >>> parse_duration("1m30s", "timeout")
        90.0
    """
    seconds: float
    if isinstance(value, bool):
        raise InvalidInput(field, f"expected a duration, got {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip(), field)
    else:
        raise InvalidInput(field, f"expected a duration such as '30s', got {value!r}")
    if not math.isfinite(seconds):
        raise InvalidInput(field, f"duration must be finite, got {value!r}")
    if longest is not None and seconds > longest:
        raise InvalidInput(field, f"duration must be at most {format_duration(longest)}, "
                           f"got {value!r}")
    if seconds < 0:
        raise InvalidInput(field, f"duration must not be negative, got {value!r}")
    if seconds > MAX_DURATION:
        raise InvalidInput(
            field, f"duration must be at most {MAX_DURATION / 86400:.0f}d (1000 years), "
            f"got {value!r}"
        )
    if seconds == 0 and not allow_zero:
        raise InvalidInput(field, f"duration must be greater than zero, got {value!r}")
    return seconds


def aware_datetime(moment: object, field: str) -> datetime:
    """``moment`` if it is a timezone-aware datetime, else `InvalidInput` naming ``field``:
    a naive time means a different instant on every machine."""
    if not isinstance(moment, datetime):
        raise InvalidInput(field, f"expected a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            field, f"{moment.isoformat()} has no timezone; add one (e.g. +00:00 or Z)"
        )
    try:
        # Stores keep epoch seconds: the moment must come back from them.
        datetime.fromtimestamp(moment.timestamp(), UTC)
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(field, f"{moment.isoformat()} is out of range") from None
    return moment


def _parse_text(text: str, field: str) -> float:
    if text.startswith("-"):
        raise InvalidInput(field, f"duration must not be negative, got {text!r}")
    try:
        return float(text)
    except ValueError:
        pass
    position = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise InvalidInput(
            field, f"malformed duration {text!r} (use e.g. '250ms', '30s', '10m', '1h30m', '2d')"
        )
    return total


def format_duration(seconds: float) -> str:
    """Render seconds compactly for people: 0.25 -> '250ms', 5400 -> '1h30m'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    parts = []
    remainder = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remainder = divmod(remainder, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
