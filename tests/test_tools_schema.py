"""ToolSchema validation, schemas from signatures, and hypothesis-generated bad inputs."""

from __future__ import annotations

import enum
import math
from typing import Annotated, Any, Literal

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import InvalidToolInput
from mister_smith.tools import Param, ToolBus, ToolSchema, schema_for_type, tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Point:
    """A point on the canvas."""

    x: float
    y: float = 0.0


@attrs.frozen
class Shape:
    name: str
    corners: list[Point]


# -- the validator -----------------------------------------------------------------------


def reasons(schema: ToolSchema, value: object) -> list[str]:
    return [str(v) for v in schema.violations(value)]


def test_types_required_and_extra_properties() -> None:
    schema = ToolSchema.from_properties(
        {"a": {"type": "integer"}, "b": {"type": "string"}}, required=["a"]
    )
    assert schema.is_valid({"a": 1})
    assert reasons(schema, {}) == ["a: required property is missing"]
    assert reasons(schema, {"a": True}) == ["a: expected integer, got boolean"]
    assert reasons(schema, {"a": 1.0}) == ["a: expected integer, got number"]
    assert reasons(schema, {"a": 1, "c": 2}) == ["c: unexpected property"]
    assert reasons(schema, {"a": 1, "weird key": 2}) == ["['weird key']: unexpected property"]
    assert reasons(schema, [1]) == ["<arguments>: expected object, got array"]
    assert reasons(schema, {1: 2}) == ["<arguments>: property names must be strings, got 1"]


def test_numbers_strings_arrays_enums_nested() -> None:
    schema = ToolSchema(
        {
            "type": "object",
            "properties": {
                "n": {"type": "number", "minimum": 0, "exclusiveMaximum": 10},
                "s": {"type": "string", "minLength": 2, "maxLength": 3, "pattern": "^[a-z]+$"},
                "xs": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
                "e": {"enum": ["a", 1, None]},
                "k": {"const": True},
                "o": {
                    "type": "object",
                    "properties": {"p": {"type": ["string", "null"]}},
                    "required": ["p"],
                    "additionalProperties": False,
                },
                "u": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]},
            },
        }
    )
    assert schema.is_valid(
        {"n": 9.5, "s": "ab", "xs": [1, 2], "e": None, "k": True, "o": {"p": None}, "u": "x"}
    )
    assert reasons(schema, {"n": 10}) == ["n: must be < 10"]
    assert reasons(schema, {"n": -1}) == ["n: must be >= 0"]
    assert reasons(schema, {"n": math.nan}) == ["n: expected a finite number"]
    assert reasons(schema, {"n": math.inf}) == ["n: expected a finite number"]
    assert reasons(schema, {"s": "A1"}) == ["s: does not match pattern '^[a-z]+$'"]
    assert reasons(schema, {"s": "abcd"}) == ["s: longer than 3 characters"]
    assert reasons(schema, {"xs": [1, "2"]}) == ["xs[1]: expected integer, got string"]
    assert reasons(schema, {"xs": [1, 2, 3]}) == ["xs: more than 2 items"]
    assert reasons(schema, {"e": True}) == ["e: must be one of 'a', 1, None"]
    assert reasons(schema, {"k": 1}) == ["k: must be True"]
    assert reasons(schema, {"o": {"q": 1}}) == [
        "o.p: required property is missing",
        "o.q: unexpected property",
    ]
    assert reasons(schema, {"u": "xy"}) == ["u: matches none of the 2 allowed forms"]


def test_schema_construction_checks() -> None:
    with pytest.raises(ValueError, match='"type": "object"'):
        ToolSchema({"type": "string"})
    with pytest.raises(ValueError, match="not supported"):
        ToolSchema({"type": "object", "properties": {"a": {"oneOf": []}}})
    with pytest.raises(ValueError, match="unknown JSON type"):
        ToolSchema({"type": "object", "properties": {"a": {"type": "int"}}})
    source = {"type": "object", "properties": {}}
    schema = ToolSchema(source)
    source["properties"] = {"x": {}}  # later changes to the input do not leak in
    assert schema.to_dict() == {"type": "object", "properties": {}}
    assert schema == ToolSchema({"type": "object", "properties": {}})
    with pytest.raises(InvalidToolInput, match="tool 't': invalid arguments: x"):
        ToolSchema.from_properties({"x": {"type": "string"}}, required=["x"]).validate({}, tool="t")


# -- schemas from signatures -------------------------------------------------------------


def test_schema_for_types() -> None:
    assert schema_for_type(int | None) == {"type": ["integer", "null"]}
    assert schema_for_type(dict[str, float]) == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert schema_for_type(tuple[str, ...]) == {"type": "array", "items": {"type": "string"}}
    assert schema_for_type(Literal["a", "b"]) == {"enum": ["a", "b"]}
    assert schema_for_type(Color) == {"enum": ["red", "blue"]}
    assert schema_for_type(Any) == {}
    assert schema_for_type(Annotated[str, "a note"]) == {"type": "string", "description": "a note"}
    shape = schema_for_type(Shape)
    assert shape["required"] == ["name", "corners"]
    assert shape["properties"]["corners"]["items"]["description"] == "A point on the canvas."
    assert schema_for_type(Point | None)["anyOf"][1] == {"type": "null"}
    for bad in (dict[int, str], tuple[int, str], complex, set[complex]):
        with pytest.raises(TypeError):
            schema_for_type(bad)


async def test_tool_decorator_builds_schema_and_structures_args() -> None:
    seen: dict[str, Any] = {}

    @tool(name="draw", timeout=5)
    async def draw_shape(
        shape: Shape,
        color: Color,
        scale: Annotated[float, Param("Zoom factor.", minimum=0.1, maximum=10)] = 1.0,
        labels: tuple[str, ...] = (),
    ) -> str:
        """Draw a shape.

        Longer text.

        Args:
            shape: The shape to draw,
                with its corners.
            color: Fill colour.
        """
        seen.update(shape=shape, color=color, scale=scale, labels=labels)
        await trio.lowlevel.checkpoint()
        return "drawn"

    assert draw_shape.name == "draw"
    assert draw_shape.timeout == 5
    assert draw_shape.description == "Draw a shape.\n\nLonger text."
    props = draw_shape.input_schema.properties
    assert props["shape"]["description"] == "The shape to draw, with its corners."
    assert props["scale"] == {
        "type": "number",
        "minimum": 0.1,
        "maximum": 10,
        "description": "Zoom factor.",
        "default": 1.0,
    }
    assert draw_shape.input_schema.required == ("shape", "color")
    bus = ToolBus(default_policy="open")
    bus.register_tool(draw_shape)
    result = await bus.call(
        "me",
        "draw",
        {
            "shape": {"name": "tri", "corners": [{"x": 1}, {"x": 2, "y": 3}]},
            "color": "blue",
            "scale": 2,
            "labels": ["a"],
        },
    )
    assert result == "drawn"
    assert seen == {
        "shape": Shape("tri", [Point(1.0), Point(2.0, 3.0)]),
        "color": Color.BLUE,
        "scale": 2.0,
        "labels": ("a",),
    }
    assert type(seen["scale"]) is float


def test_decorator_refusals() -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"plain \(sync\) function.*blocking=True"):
        tool(plain)
    blocking = tool(blocking=True)(plain)
    assert blocking.blocking

    async def coro(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="already async"):
        tool(blocking=True)(coro)

    async def untyped(x) -> None:  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(TypeError, match="needs a type annotation"):
        tool(untyped)

    async def variadic(*args: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"\*args"):
        tool(variadic)

    async def gen(x: int) -> Any:
        yield x

    with pytest.raises(TypeError, match="generator"):
        tool(gen)


# -- hypothesis: nothing invalid reaches the tool ---------------------------------------

received: list[dict[str, Any]] = []


@tool
async def probe(
    name: Annotated[str, Param(max_length=8)],
    count: Annotated[int, Param(minimum=1, maximum=5)],
    ratio: float,
    flag: bool,
    color: Color,
    where: Point,
    tags: list[str] = [],  # noqa: B006 - never mutated; shows a non-JSON default
    mode: Literal["a", "b"] = "a",
    note: str | None = None,
) -> None:
    """Accept anything well-typed and record it."""
    received.append(
        {
            "name": name,
            "count": count,
            "ratio": ratio,
            "flag": flag,
            "color": color,
            "where": where,
            "tags": tags,
            "mode": mode,
            "note": note,
        }
    )


def well_typed(call: dict[str, Any]) -> bool:
    """An independent check of what the tool got (not using our validator)."""
    where = call["where"]
    return (
        isinstance(call["name"], str)
        and len(call["name"]) <= 8
        and type(call["count"]) is int
        and 1 <= call["count"] <= 5
        and type(call["ratio"]) is float
        and math.isfinite(call["ratio"])
        and type(call["flag"]) is bool
        and isinstance(call["color"], Color)
        and isinstance(where, Point)
        and type(where.x) is float
        and type(where.y) is float
        and math.isfinite(where.x)
        and math.isfinite(where.y)
        and isinstance(call["tags"], list)
        and all(isinstance(t, str) for t in call["tags"])
        and call["mode"] in ("a", "b")
        and (call["note"] is None or isinstance(call["note"], str))
    )


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-10, 10)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(["red", "blue", "green", "a", "b", "c"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "z"]) | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
param_names = st.sampled_from(
    ["name", "count", "ratio", "flag", "color", "where", "tags", "mode", "note"]
)

valid_args = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8),
        "count": st.integers(1, 5),
        "ratio": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5),
        "flag": st.booleans(),
        "color": st.sampled_from(["red", "blue"]),
        "where": st.fixed_dictionaries(
            {"x": st.floats(-1e6, 1e6)}, optional={"y": st.integers(-3, 3)}
        ),
    },
    optional={
        "tags": st.lists(st.text(max_size=3), max_size=3),
        "mode": st.sampled_from(["a", "b"]),
        "note": st.none() | st.text(max_size=5),
    },
)


def call_probe(args: object) -> tuple[bool, BaseException | None]:
    """Call the probe through a bus in a fresh Trio run; (reached, error)."""
    received.clear()
    bus = ToolBus(default_policy="open")
    bus.register_tool(probe)

    async def main() -> BaseException | None:
        try:
            await bus.call("fuzzer", "probe", args)  # type: ignore[arg-type]
        except InvalidToolInput as error:
            return error
        return None

    error = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return bool(received), error


@given(valid_args)
def test_valid_inputs_reach_the_tool_well_typed(args: dict[str, Any]) -> None:
    reached, error = call_probe(args)
    assert error is None
    assert reached
    assert well_typed(received[0])


@given(st.dictionaries(param_names | st.text(max_size=4), json_values, max_size=10))
def test_random_inputs_are_refused_or_well_typed(args: dict[str, Any]) -> None:
    reached, error = call_probe(args)
    if error is not None:
        assert not reached
        assert "invalid arguments" in str(error)
    else:
        assert reached
        assert well_typed(received[0])


mutations = st.sampled_from(
    [
        "drop_required",
        "add_unknown",
        "wrong_type",
        "count_range",
        "bad_enum",
        "nested_extra",
        "nested_type",
        "long_name",
        "tag_type",
        "non_finite",
    ]
)


@given(valid_args, mutations, st.data())
def test_every_mutated_input_is_refused(
    args: dict[str, Any], mutation: str, data: st.DataObject
) -> None:
    args = {**args, "where": dict(args["where"])}
    if mutation == "drop_required":
        del args[data.draw(st.sampled_from(["name", "count", "ratio", "flag", "color", "where"]))]
    elif mutation == "add_unknown":
        args[
            data.draw(
                st.text(min_size=1, max_size=5).filter(
                    lambda k: k not in args and k not in probe.input_schema.properties
                )
            )
        ] = 1
    elif mutation == "wrong_type":
        key = data.draw(st.sampled_from(["name", "count", "ratio", "flag", "where"]))
        wrong = {"name": 1, "count": "1", "ratio": "1.5", "flag": 1, "where": [1]}[key]
        args[key] = wrong
    elif mutation == "count_range":
        args["count"] = data.draw(st.integers(max_value=0) | st.integers(min_value=6))
    elif mutation == "bad_enum":
        key = data.draw(st.sampled_from(["color", "mode"]))
        args[key] = data.draw(
            st.text(max_size=5).filter(lambda v: v not in ("red", "blue", "a", "b"))
        )
    elif mutation == "nested_extra":
        args["where"]["z"] = 0
    elif mutation == "nested_type":
        args["where"]["x"] = data.draw(st.text() | st.booleans() | st.none())
    elif mutation == "long_name":
        args["name"] = data.draw(st.text(min_size=9, max_size=20))
    elif mutation == "tag_type":
        args["tags"] = [data.draw(st.integers() | st.none() | st.booleans())]
    elif mutation == "non_finite":
        args["ratio"] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    reached, error = call_probe(args)
    assert error is not None, f"{mutation} was accepted: {args!r}"
    assert not reached
