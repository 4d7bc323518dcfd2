"""``plain_json_problem``: the one check both codecs (store and wire) run first."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.types import JsonProblem, plain_json_problem

_plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(_plain)
def test_plain_values_pass_and_round_trip(value: Any) -> None:
    assert plain_json_problem(value, 64) is None
    json.dumps(value, allow_nan=False)  # what the check promises the encoder


@pytest.mark.parametrize(
    ("value", "problem", "text"),
    [
        ([1.0, math.nan], JsonProblem.NON_FINITE, "holds a non-finite number (nan)"),
        ({"a": {"b": -math.inf}}, JsonProblem.NON_FINITE, "holds a non-finite number (-inf)"),
        ({1: "x"}, JsonProblem.NON_STRING_KEY, "has a non-string key 1"),
        ({"a": [object]}, JsonProblem.NOT_JSON, "is a type"),
        ([[[[1]]]], JsonProblem.TOO_DEEP, "nests deeper than 2 levels"),
    ],
)
def test_each_problem_is_named(value: Any, problem: JsonProblem, text: str) -> None:
    assert plain_json_problem(value, 2) == (problem, text)


def test_a_very_deep_value_is_refused_without_recursing_to_the_bottom() -> None:
    value: Any = 0
    for _ in range(100_000):
        value = [value]
    found = plain_json_problem(value, 64)
    assert found is not None
    assert found[0] is JsonProblem.TOO_DEEP


def test_message_types_map_tags_both_ways_and_refuse_bad_tags() -> None:
    import attrs

    from mister_smith.types import MessageTypes

    @attrs.frozen
    class Ping:
        n: int

    @attrs.frozen
    class Pong:
        n: int

    types = MessageTypes(reserved="json", kind="test messages")
    assert types.register(Ping, tag="ping") is Ping
    assert types.register(Ping, tag="ping") is Ping  # again: harmless
    assert (types.tag_of(Ping), types.class_of("ping")) == ("ping", Ping)
    assert types.tag_of(Pong) is None
    assert types.class_of("pong") is None
    with pytest.raises(ValueError, match="already registered"):
        types.register(Pong, tag="ping")
    for bad in ("json", "", "two\nlines"):
        with pytest.raises(ValueError, match="reserved or has a newline"):
            types.register(Pong, tag=bad)
    with pytest.raises(TypeError, match="only attrs classes can be test messages"):
        types.register(dict, tag="d")
    assert types.registered() == {"ping": Ping}
