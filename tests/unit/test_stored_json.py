"""Arguments are kept as JSON gives them back: what enqueue returns is what the task
receives, whether or not the value needed converting."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskwheel.errors import InvalidInput
from taskwheel.jobs import stored_json

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                  allow_infinity=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    | st.dictionaries(st.integers(-5, 5), inner, max_size=4),
    max_leaves=12,
)


@given(values)
def test_the_stored_value_is_what_its_json_decodes_to(value: Any) -> None:
    stored, text = stored_json(value, "args")
    assert stored == json.loads(text)
    assert json.dumps(stored, separators=(",", ":")) == text


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(("given", "kept"), [
    ((1, 2), [1, 2]),
    ({1: "a"}, {"1": "a"}),
    ([Colour.RED], [1]),
    ([True, None, "x", 1.5], [True, None, "x", 1.5]),
])
def test_values_json_changes_are_kept_changed(given: Any, kept: Any) -> None:
    stored, _ = stored_json(given, "args")
    assert stored == kept
    assert type(stored) is type(kept)
    if isinstance(kept, list):  # an IntEnum member becomes a plain int, as JSON gives it
        assert [type(v) for v in stored] == [type(v) for v in kept]


def test_keys_that_collide_in_json_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        stored_json({1: "one", "1": "uno"}, "kwargs")
    assert refused.value.field == "kwargs"
