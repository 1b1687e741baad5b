"""Validators of the input every entry point shares: names, priorities, attempt counts
and named choices (policies, pools, guarantees).

Each raises `InvalidInput` naming the field it was given, so the Python API, the
command line and the HTTP server refuse the same value with the same words.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from taskwheel.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)

_NAME = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")
PRIORITY_RANGE = (-1_000_000, 1_000_000)
# Attempts beyond this are "retry forever" in all but name; the bound keeps counts far
# inside the stores' integer columns.
MAX_ATTEMPTS = 1_000_000
# Ids and row counts are 64-bit signed integers in both stores.
MAX_ID = 2**63 - 1


def validate_name(value: object, field_name: str) -> str:
    """A task, queue, step, schedule or namespace name: 1-200 letters, digits and
    ``_ . : - /``.

    Example:
        >>> validate_name("emails", "queue")
        'emails'
        >>> validate_name("no spaces", "queue")
        Traceback (most recent call last):
          ...
        InvalidInput: queue: must be 1-200 characters of letters, digits and _ . : - /, ...
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            field_name,
            f"must be 1-200 characters of letters, digits and _ . : - /, got {value!r}",
        )
    return value


def validate_text(value: object, field_name: str, *, longest: int = 200) -> str:
    """Free text a person gives (what an API key is for, say): 1 to ``longest``
    characters of valid Unicode (a lone surrogate is not text: no database can store
    it), without control characters.

    Example:
        >>> validate_text("billing service", "name")
        'billing service'
    """
    if not isinstance(value, str) or not 1 <= len(value) <= longest:
        raise InvalidInput(field_name, f"must be 1-{longest} characters, got {value!r}")
    for char in value:
        if "\ud800" <= char <= "\udfff":
            raise InvalidInput(field_name, f"must be valid Unicode, got the lone surrogate "
                               f"{char!r}")
        if char < " " or char == "\x7f":
            raise InvalidInput(field_name, f"must not hold control characters, got {value!r}")
    return value


# The scope of a worker or scheduler that serves every namespace. No namespace can be
# called so (a name has no "*"), so the store can take it where a namespace goes.
ALL_NAMESPACES = "*"


def validate_namespaces(values: object, field_name: str = "namespaces") -> tuple[str, ...]:
    """The namespaces a worker serves: names, or `ALL_NAMESPACES` alone.

    Example:
        >>> validate_namespaces(["tenant-a", "tenant-b"])
        ('tenant-a', 'tenant-b')
        >>> validate_namespaces(["*"])
        ('*',)
    """
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise InvalidInput(field_name, f"must be a sequence of namespaces, got {values!r}")
    names = tuple(dict.fromkeys(values))
    if ALL_NAMESPACES in names:
        if len(names) > 1:
            raise InvalidInput(field_name, f"{ALL_NAMESPACES!r} (every namespace) stands alone")
        return names
    return tuple(validate_name(name, field_name) for name in names)


def validate_priority(value: object, field: str = "priority") -> int:
    """A job's priority: an integer from -1000000 to 1000000 (higher runs first).

    Example:
        >>> validate_priority(9)
        9
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise InvalidInput(field, f"must be between {low} and {high}, got {value}")
    return value


def validate_max_attempts(value: object) -> int:
    """How many attempts a job gets: an integer from 1 to 1000000.

    Example:
        >>> validate_max_attempts(5)
        5
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise InvalidInput("max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}, "
                           f"got {value!r}")
    return value


def validate_id(value: object, field_name: str) -> int:
    """A job's or a workflow run's id: an integer from 1 to 2**63 - 1 (what the stores
    can hold; a larger one names nothing rather than failing in the driver).

    Example:
        >>> validate_id(42, "job_id")
        42
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidInput(field_name, f"must be an id (an integer from 1 to {MAX_ID}), "
                           f"got {value!r}")
    return value


def validate_limit(value: object, field_name: str = "limit") -> int:
    """How many rows a listing returns at most: an integer from 1 to 2**63 - 1.

    Example:
        >>> validate_limit(100)
        100
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidInput(field_name, f"must be an integer from 1 to {MAX_ID}, got {value!r}")
    return value


def validate_choice(kind: type[E], value: object, field_name: str, *, noun: str = "value") -> E:
    """The member of the string enum ``kind`` that ``value`` is or names; otherwise
    `InvalidInput` listing the choices (``unknown <noun> 'x' (use a, b, c)``).

    Example:
        >>> from taskwheel.jobs import Guarantee
        >>> validate_choice(Guarantee, "at_most_once", "guarantee")
        <Guarantee.AT_MOST_ONCE: 'at_most_once'>
        >>> validate_choice(Guarantee, "twice", "guarantee")
        Traceback (most recent call last):
          ...
        InvalidInput: guarantee: unknown value 'twice' (use at_least_once, at_most_once)
    """
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    choices = ", ".join(member.value for member in kind)
    raise InvalidInput(field_name, f"unknown {noun} {value!r} (use {choices})")
