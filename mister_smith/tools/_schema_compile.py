"""A schema compiled once into a predicate: the tool bus's fast path for valid arguments.

:class:`~mister_smith.tools.ToolSchema` explains what is wrong with arguments by walking
the schema (paths, reasons, at most 20 violations). Almost every call is valid, and
for those the walk only has to answer yes: :func:`compile_schema` turns the schema into
nested closures that answer it without building paths or looking keywords up per call.
It accepts exactly the values the walk finds no violation in (a property test holds
the two together); the walk runs only when the answer is no, to name the violations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[object], bool]
"""``check(value)``: whether ``value`` satisfies the compiled schema."""


def _always(value: object) -> bool:
    return True


def _string_keys(value: Any) -> bool:
    """Every property name is a string (JSON objects have no other keys)."""
    return all(isinstance(key, str) for key in value)


def _is_number(value: object) -> bool:
    """A JSON number: an int or a finite float, never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


TYPE_CHECKS: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": _is_number,
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "array": lambda value: isinstance(value, list | tuple),
    # A dict is by far the usual object: answer it before the slower ABC check.
    "object": lambda value: type(value) is dict or isinstance(value, Mapping),
}
"""The check of each JSON type name (integers exclude bools; numbers are finite)."""

_EXACT_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "array": frozenset({list, tuple}),
}
"""Exact types a bare ``{"type": name}`` property accepts without calling its check: a
value whose type is one of these passes it (a float, a subclass... still takes the
check itself). It spares one call per argument of the usual tool."""


def json_equal(left: object, right: object) -> bool:
    """Equality as JSON sees it: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def _type_names(declared: object) -> list[str]:
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else list(declared)  # type: ignore[call-overload]


def _any(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    return lambda value: any(check(value) for check in checks)


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    return lambda value: all(check(value) for check in checks)


def _string_check(schema: Mapping[str, Any]) -> Check:
    shortest: int | None = schema.get("minLength")
    longest: int | None = schema.get("maxLength")
    pattern = schema.get("pattern")
    search = None if pattern is None else re.compile(pattern).search
    if shortest is None and longest is None and search is None:
        return _always

    def check(value: object) -> bool:
        text: str = value  # type: ignore[assignment]
        if shortest is not None and len(text) < shortest:
            return False
        if longest is not None and len(text) > longest:
            return False
        return search is None or search(text) is not None

    return check


def _number_check(schema: Mapping[str, Any]) -> Check:
    low = schema.get("minimum")
    high = schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    below = schema.get("exclusiveMaximum")
    if low is None and high is None and above is None and below is None:
        return _always

    def check(value: Any) -> bool:
        if low is not None and value < low:
            return False
        if high is not None and value > high:
            return False
        if above is not None and value <= above:
            return False
        return below is None or value < below

    return check


def _array_check(schema: Mapping[str, Any]) -> Check:
    fewest: int | None = schema.get("minItems")
    most: int | None = schema.get("maxItems")
    items = schema.get("items")
    item_check = None if items is None or items is True else compile_schema(items)
    if fewest is None and most is None and item_check is None:
        return _always

    def check(value: Any) -> bool:
        if fewest is not None and len(value) < fewest:
            return False
        if most is not None and len(value) > most:
            return False
        return item_check is None or all(item_check(item) for item in value)

    return check


def _exact_types(sub: Check) -> frozenset[type]:
    """The exact types that certainly pass ``sub`` when it is a bare type check."""
    for name, kinds in _EXACT_TYPES.items():
        if sub is TYPE_CHECKS[name]:
            return kinds
    return frozenset()


def _object_check(schema: Mapping[str, Any], *, typed: bool = False) -> Check:
    """The check of an object's shape; ``typed``: also that it is an object at all (fused
    into one closure for a schema whose only type is ``"object"``, as every tool's is)."""
    properties = {name: compile_schema(sub) for name, sub in schema.get("properties", {}).items()}
    exact = {name: kinds for name, sub in properties.items() if (kinds := _exact_types(sub))}
    required = tuple(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    extra_check: Check | None = None
    if isinstance(extra, Mapping):
        extra_check = compile_schema(extra)
    closed = extra is False
    if not properties and not required and not closed and extra_check is None:
        if typed:
            is_object = TYPE_CHECKS["object"]
            return lambda value: is_object(value) and _string_keys(value)
        return _string_keys

    def check(value: Any) -> bool:
        if typed and type(value) is not dict and not isinstance(value, Mapping):
            return False
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            kinds = exact.get(key)
            if kinds is not None and type(item) in kinds:
                continue  # a str key (it is in exact) with a value of an accepted type
            if not isinstance(key, str):
                return False
            sub = properties.get(key)
            if sub is not None:
                if not sub(item):
                    return False
            elif closed or (extra_check is not None and not extra_check(item)):
                return False
        return True

    if (
        typed
        and closed
        and 0 < len(properties) <= _MOST_UNROLLED
        and len(exact) == len(properties)
        and all(name in properties for name in required)
    ):
        return _unrolled(exact, frozenset(required), check)
    return check


_MOST_UNROLLED = 8
"""Most properties :func:`_unrolled` writes out: it looks every property up, present or
not, so past a few the loop over the keys given is cheaper."""

_MISSING = object()


def _unrolled(exact: dict[str, frozenset[type]], required: frozenset[str], full: Check) -> Check:
    """``full``, answered first by straight-line code for a dict whose values all have an
    exact accepted type: the shape of almost every tool's arguments.

    For a closed object whose properties are all bare types (what ``@tool`` builds from
    a plain signature), the check is a few dict lookups and type tests; a generated
    function (as attrs and cattrs generate theirs) does them without the loop, the
    ``items()`` iterator and the ``exact`` lookups of ``full``, about half its cost.
    It answers ``True`` only when ``full`` would (every key is a property, every value
    of an exact accepted type, every required property present); anything else, a float
    for a number or a missing property included, is handed to ``full``, which decides.
    Property names reach the code as variables, never as source text.
    """
    namespace: dict[str, object] = {"full": full, "missing": _MISSING}
    lines = ["def accepts(value):", "    if type(value) is dict:", "        found = 0"]
    for index, (name, kinds) in enumerate(exact.items()):
        namespace[f"name{index}"] = name
        namespace[f"kinds{index}"] = kinds
        test = f"type(item) not in kinds{index}"
        if len(kinds) == 1:
            namespace[f"kind{index}"] = next(iter(kinds))
            test = f"type(item) is not kind{index}"
        lines += [
            f"        item = value.get(name{index}, missing)",
            "        if item is not missing:",
            f"            if {test}:",
            "                return full(value)",
            "            found += 1",
        ]
        if name in required:
            lines += ["        else:", "            return full(value)"]
    lines += [
        "        if found == len(value):",
        "            return True",
        "    return full(value)",
    ]
    exec("\n".join(lines), namespace)  # our own source: names and types are variables
    unrolled: Check = namespace["accepts"]  # type: ignore[assignment]
    return unrolled


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """The predicate for ``schema`` (already checked to use supported keywords only).

    It returns ``True`` exactly when :meth:`ToolSchema.violations` finds nothing. Only
    the keywords present become checks, so ``{"type": "integer"}`` compiles to the
    integer test alone.
    """
    checks: list[Check] = []
    options = schema.get("anyOf")
    if options is not None:
        checks.append(_any([compile_schema(option) for option in options]))
    names = _type_names(schema.get("type"))
    if names:
        checks.append(_any([TYPE_CHECKS[name] for name in names]))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda value: json_equal(value, const))
    enum = schema.get("enum")
    if enum is not None:
        checks.append(lambda value: any(json_equal(value, option) for option in enum))
    if names == ["object"] and len(checks) == 1:
        # Type and shape in one closure: the top level of every tool's arguments.
        return _object_check(schema, typed=True)
    shapes = {
        "string": _string_check(schema),
        "number": _number_check(schema),
        "array": _array_check(schema),
        "object": _object_check(schema),
    }
    if all(shape is _always for shape in shapes.values()):
        return _all(checks)
    if len(names) == 1:
        # A value of the one declared type has that type's shape: test only that one.
        kind = "number" if names[0] == "integer" else names[0]
        shape = shapes.get(kind, _always)
        return _all([*checks, shape] if shape is not _always else checks)
    string, number, array, mapping = shapes.values()

    def shaped(value: object) -> bool:
        if isinstance(value, str):
            return string(value)
        if _is_number(value):
            return number(value)
        if isinstance(value, list | tuple):
            return array(value)
        if isinstance(value, Mapping):
            return mapping(value)
        return True

    return _all([*checks, shaped])
