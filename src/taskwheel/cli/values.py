"""Values typed on the command line or read from a file: JSON arguments, times and
deadlines, refused as `InvalidInput` naming their field."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from taskwheel.errors import InvalidInput
from taskwheel.jobs import unique_keys

# An ISO 8601 date starts the value: anything else given as a deadline is a duration.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def parse_arguments(args_text: str, kwargs_text: str) -> tuple[list[Any], dict[str, Any]]:
    """``--args`` (a JSON list) and ``--kwargs`` (a JSON object); ``null`` is neither."""
    args = _parse_json(args_text, "args")
    if not isinstance(args, list):
        raise InvalidInput("args", f"must be a JSON list, got {args_text!r}")
    kwargs = _parse_json(kwargs_text, "kwargs")
    if not isinstance(kwargs, dict):
        raise InvalidInput("kwargs", f"must be a JSON object, got {kwargs_text!r}")
    return args, kwargs


def _parse_json(text: str, field: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"not valid JSON ({exc}): {text!r}") from None
    except ValueError as exc:
        raise InvalidInput(field, f"{exc}: {text!r}") from None


def parse_datetime(text: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            field, f"not an ISO 8601 time: {text!r} (e.g. 2030-01-01T09:00:00+00:00)"
        ) from None


def parse_deadline(text: str) -> datetime | str:
    return parse_datetime(text, "deadline") if _ISO_DATE.match(text.strip()) else text
