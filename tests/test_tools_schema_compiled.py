"""The compiled schema predicate accepts exactly what the explaining walk accepts."""

from __future__ import annotations

import enum
import math
import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.tools import ToolSchema
from mister_smith.tools._schema import SchemaViolation, _check

_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.5, math.nan, math.inf]),
    st.text(max_size=4),
)

_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", 1, None]), inner, max_size=2),
    ),
    max_leaves=8,
)


def _schemas(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    simple: dict[str, st.SearchStrategy[Any]] = {
        "type": st.one_of(
            st.sampled_from(_TYPES), st.lists(st.sampled_from(_TYPES), min_size=1, max_size=3)
        ),
        "enum": st.lists(_scalars, min_size=1, max_size=3),
        "const": _scalars,
        "minimum": st.integers(-3, 3),
        "maximum": st.integers(-3, 3),
        "exclusiveMinimum": st.integers(-3, 3),
        "exclusiveMaximum": st.integers(-3, 3),
        "minLength": st.integers(0, 3),
        "maxLength": st.integers(0, 3),
        "pattern": st.sampled_from(["^a", "b$", "[0-9]"]),
        "minItems": st.integers(0, 3),
        "maxItems": st.integers(0, 3),
        "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
    }
    if depth > 0:
        sub = _schemas(depth - 1)
        simple["items"] = st.one_of(st.just(True), sub)
        simple["properties"] = st.dictionaries(st.sampled_from(["a", "b"]), sub, max_size=2)
        simple["additionalProperties"] = st.one_of(st.booleans(), sub)
        simple["anyOf"] = st.lists(sub, min_size=1, max_size=2)
    return st.fixed_dictionaries({}, optional=simple)


def _walk_accepts(schema: dict[str, Any], value: object) -> bool:
    found: list[SchemaViolation] = []
    _check(value, schema, "", found)
    return not found


@given(_schemas(2), _values)
def test_compiled_predicate_agrees_with_the_walk(sub: dict[str, Any], value: object) -> None:
    schema = ToolSchema({"type": "object", "properties": {"v": sub}, "required": ["v"]})
    args = {"v": value}
    walk = _walk_accepts(schema.to_dict(), args)
    assert schema.is_valid(args) is walk
    assert (schema.violations(args) == []) is walk


@given(_schemas(1), st.dictionaries(st.sampled_from(["a", "b", "c", 3]), _values, max_size=3))
def test_compiled_top_level_object_agrees_with_the_walk(
    extra: dict[str, Any], args: dict[Any, Any]
) -> None:
    extra.pop("type", None)
    schema = ToolSchema({**extra, "type": "object"})
    assert schema.is_valid(args) is _walk_accepts(schema.to_dict(), args)


def test_items_true_accepts_any_item() -> None:
    schema = ToolSchema({"type": "object", "properties": {"xs": {"type": "array", "items": True}}})
    assert schema.is_valid({"xs": [1, "a", None]})
    assert schema.violations({"xs": 3})[0].reason == "expected array, got integer"


def test_non_string_keys_are_refused_even_by_an_open_object() -> None:
    schema = ToolSchema({"type": "object"})
    assert not schema.is_valid({1: "x"})
    assert "property names must be strings" in schema.violations({1: "x"})[0].reason


class _Level(enum.IntEnum):
    LOW = 1


class _Text(str):
    """A str subclass (as a key and as a value)."""


_BARE = ToolSchema(
    {
        "type": "object",
        "properties": {
            "i": {"type": "integer"},
            "n": {"type": "number"},
            "s": {"type": "string"},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
            "a": {"type": "array"},
        },
        "additionalProperties": False,
    }
)


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        ({"i": 1, "n": 2, "s": "x", "b": True, "z": None, "a": [1]}, True),
        ({"a": (1, "x")}, True),
        ({"i": True}, False),  # a bool is no integer, though bool is an int subclass
        ({"n": False}, False),
        ({"i": _Level.LOW}, True),  # an int subclass other than bool takes the full check
        ({"i": 1.0}, False),
        ({"n": 1.5}, True),
        ({"n": math.inf}, False),
        ({"s": _Text("x")}, True),
        ({_Text("s"): "x"}, True),
        ({"b": 1}, False),
        ({"z": 0}, False),
        ({"a": {"k": 1}}, False),
        ({"other": 1}, False),
    ],
)
def test_bare_typed_properties_keep_their_exact_meaning(
    args: dict[Any, Any], accepted: bool
) -> None:
    """The exact-type shortcut accepts only what the full check accepts."""
    assert _BARE.accepts(args) is accepted
    assert _BARE.is_valid(args) is _walk_accepts(_BARE.to_dict(), args) is accepted


def test_the_top_level_object_may_be_any_mapping() -> None:
    schema = ToolSchema({"type": "object", "properties": {"i": {"type": "integer"}}})
    assert schema.accepts(types.MappingProxyType({"i": 1}))
    assert not schema.accepts(types.MappingProxyType({"i": "1"}))
    assert not schema.accepts([("i", 1)])
    assert ToolSchema({"type": "object"}).accepts(types.MappingProxyType({}))


def test_deeply_nested_objects_compile_in_linear_time() -> None:
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(60):
        nested = {"type": "object", "properties": {"x": nested}}
    schema = ToolSchema({"type": "object", "properties": {"x": nested}})
    value: object = "leaf"
    for _ in range(61):
        value = {"x": value}
    assert schema.accepts(value)


_BARE_TYPES = ("string", "integer", "number", "boolean", "null", "array")
_property_schemas = st.one_of(
    st.sampled_from(_BARE_TYPES).map(lambda name: {"type": name}),
    st.sampled_from([{"type": ["integer", "null"]}, {"type": "integer", "minimum": 0}]),
)


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _property_schemas, max_size=3),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3, unique=True),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", 1]), _values, max_size=4),
)
def test_closed_objects_of_bare_types_agree_with_the_walk(
    properties: dict[str, Any], required: list[str], args: dict[Any, Any]
) -> None:
    """The straight-line predicate of the usual tool schema (closed, bare-typed
    properties) accepts exactly what the walk accepts, as does the loop it falls back to."""
    schema = ToolSchema(
        {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    )
    assert schema.accepts(args) is _walk_accepts(schema.to_dict(), args)
    assert schema.accepts(dict(args)) is schema.accepts(types.MappingProxyType(args))


def test_a_plain_tool_signature_gets_the_straight_line_predicate() -> None:
    # Guards the fast path the test above compares: the generated function is named
    # "accepts", the loop it falls back to "check".
    schema = ToolSchema(
        {
            "type": "object",
            "properties": {"i": {"type": "integer"}, "a": {"type": "array"}},
            "required": ["i"],
            "additionalProperties": False,
        }
    )
    assert schema.accepts.__name__ == "accepts"
    assert schema.accepts({"i": 1, "a": (1,)})
    assert not schema.accepts({"a": []})
    assert not schema.accepts({"i": 1, "x": 2})
    assert schema.accepts({"i": _Level.LOW})
    assert not schema.accepts({"i": True})
