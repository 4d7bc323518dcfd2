"""``ToolSchema``: a JSON Schema for a tool's arguments, and the validator for its subset."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import InvalidToolInput
from ._schema_compile import TYPE_CHECKS, Check, compile_schema, json_equal

SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
    }
)
"""The validating keywords :class:`ToolSchema` enforces; annotations (``description``,
``title``, ``default``, ``examples``...) are kept for readers and ignored by validation."""

_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})
_JSON_TYPES = ("string", "integer", "number", "boolean", "null", "array", "object")
_MAX_VIOLATIONS = 20
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@attrs.frozen
class SchemaViolation:
    """One way a value breaks a schema.

    Attributes:
        path: Where, e.g. ``"items[2].name"`` (``""`` for the arguments as a whole).
        reason: What is wrong, e.g. ``"expected integer, got string"``.
    """

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '<arguments>'}: {self.reason}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_type(value: object, json_type: str) -> bool:
    check = TYPE_CHECKS.get(json_type)
    return check is not None and check(value)


def _join(path: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _check(value: object, schema: Mapping[str, Any], path: str, out: list[SchemaViolation]) -> None:
    if len(out) >= _MAX_VIOLATIONS:
        return
    any_of = schema.get("anyOf")
    if any_of is not None and not any(_matches(value, option) for option in any_of):
        out.append(SchemaViolation(path, f"matches none of the {len(any_of)} allowed forms"))
        return
    declared = schema.get("type")
    if declared is not None:
        types = [declared] if isinstance(declared, str) else list(declared)
        if not any(_is_type(value, t) for t in types):
            got = _json_type(value)
            if got == "number" and "number" in types:
                reason = "expected a finite number"
            else:
                reason = f"expected {' or '.join(types)}, got {got}"
            out.append(SchemaViolation(path, reason))
            return
    if "const" in schema and not json_equal(value, schema["const"]):
        out.append(SchemaViolation(path, f"must be {schema['const']!r}"))
        return
    if "enum" in schema and not any(json_equal(value, option) for option in schema["enum"]):
        options = ", ".join(repr(option) for option in schema["enum"])
        out.append(SchemaViolation(path, f"must be one of {options}"))
        return
    if isinstance(value, str):
        _check_string(value, schema, path, out)
    elif _is_type(value, "number"):
        _check_number(value, schema, path, out)  # type: ignore[arg-type]
    elif isinstance(value, list | tuple):
        _check_array(value, schema, path, out)
    elif isinstance(value, Mapping):
        _check_object(value, schema, path, out)


def _check_string(
    value: str, schema: Mapping[str, Any], path: str, out: list[SchemaViolation]
) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.append(SchemaViolation(path, f"shorter than {schema['minLength']} characters"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(SchemaViolation(path, f"longer than {schema['maxLength']} characters"))
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        out.append(SchemaViolation(path, f"does not match pattern {schema['pattern']!r}"))


def _check_number(
    value: float, schema: Mapping[str, Any], path: str, out: list[SchemaViolation]
) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        out.append(SchemaViolation(path, f"must be >= {schema['minimum']}"))
    if "maximum" in schema and value > schema["maximum"]:
        out.append(SchemaViolation(path, f"must be <= {schema['maximum']}"))
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        out.append(SchemaViolation(path, f"must be > {schema['exclusiveMinimum']}"))
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        out.append(SchemaViolation(path, f"must be < {schema['exclusiveMaximum']}"))


def _check_array(
    value: list[object] | tuple[object, ...],
    schema: Mapping[str, Any],
    path: str,
    out: list[SchemaViolation],
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(SchemaViolation(path, f"fewer than {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(SchemaViolation(path, f"more than {schema['maxItems']} items"))
        return
    items = schema.get("items")
    if items is not None and items is not True:
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]", out)


def _check_object(
    value: Mapping[Any, object], schema: Mapping[str, Any], path: str, out: list[SchemaViolation]
) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key in value:
        if not isinstance(key, str):
            out.append(SchemaViolation(path, f"property names must be strings, got {key!r}"))
            return
    for key in schema.get("required", ()):
        if key not in value:
            out.append(SchemaViolation(_join(path, key), "required property is missing"))
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], _join(path, key), out)
        elif extra is False:
            out.append(SchemaViolation(_join(path, key), "unexpected property"))
        elif isinstance(extra, Mapping):
            _check(item, extra, _join(path, key), out)


def _matches(value: object, schema: Mapping[str, Any]) -> bool:
    found: list[SchemaViolation] = []
    _check(value, schema, "", found)
    return not found


def _check_schema(schema: object, path: str) -> None:
    """Refuse schemas using keywords we would silently not enforce."""
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema at {path or '<root>'} must be a mapping, got {schema!r}")
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword not in SUPPORTED_KEYWORDS:
            raise ValueError(f"schema keyword {keyword!r} at {path or '<root>'} is not supported")
        if keyword == "type":
            types = [value] if isinstance(value, str) else value
            if not types or any(t not in _JSON_TYPES for t in types):
                raise ValueError(f"unknown JSON type {value!r} at {path or '<root>'}")
        elif keyword == "properties":
            for name, sub in value.items():
                _check_schema(sub, _join(path, name))
        elif keyword == "items" or (keyword == "additionalProperties" and value is not False):
            if value is not True:
                _check_schema(value, f"{path}/{keyword}")
        elif keyword == "anyOf":
            for index, sub in enumerate(value):
                _check_schema(sub, f"{path}/anyOf[{index}]")
        elif keyword == "pattern":
            re.compile(value)


def _copy_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise TypeError(f"a tool schema must be a mapping, got {schema!r}")
    return copy.deepcopy(dict(schema))


@attrs.frozen(eq=False)
class ToolSchema:
    """The JSON Schema of a tool's arguments (always an object at the top).

    Validation covers the subset :data:`SUPPORTED_KEYWORDS` (types, ``required``,
    ``properties``, ``additionalProperties``, ``enum`` / ``const``, numeric and length
    bounds, ``pattern``, ``items``, ``anyOf``); a schema using any other validating
    keyword is refused at construction rather than silently not enforced. Integers must
    be ints (``1.0`` is not an integer here; ``True`` is never a number) and numbers
    must be finite.

    Args:
        schema: The JSON Schema (deep-copied; read it back with :meth:`to_dict`).

    Raises:
        ValueError: the top level is not ``"type": "object"`` or a keyword is unsupported.
    """

    _schema: dict[str, Any] = attrs.field(converter=_copy_schema, alias="schema")

    accepts: Check = attrs.field(init=False, repr=False)
    """The schema compiled into a predicate: ``accepts(args)`` is ``True`` exactly when
    :meth:`violations` finds nothing (the tool bus calls it directly on every call)."""

    def __attrs_post_init__(self) -> None:
        _check_schema(self._schema, "")
        if self._schema.get("type") != "object":
            raise ValueError('a tool schema must have "type": "object" at the top')
        object.__setattr__(self, "accepts", compile_schema(self._schema))

    @classmethod
    def from_properties(
        cls,
        properties: Mapping[str, Mapping[str, Any]],
        *,
        required: tuple[str, ...] | list[str] = (),
        additional_properties: bool = False,
    ) -> ToolSchema:
        """Build an object schema from its property schemas."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": dict(properties),
            "additionalProperties": additional_properties,
        }
        if required:
            schema["required"] = list(required)
        return cls(schema)

    @classmethod
    def empty(cls) -> ToolSchema:
        """A schema for tools without arguments (an empty object)."""
        return cls({"type": "object", "properties": {}, "additionalProperties": False})

    @property
    def properties(self) -> Mapping[str, Mapping[str, Any]]:
        """The top-level property schemas (read-only view; do not mutate)."""
        props: Mapping[str, Mapping[str, Any]] = self._schema.get("properties", {})
        return props

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required top-level properties."""
        return tuple(self._schema.get("required", ()))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON Schema, e.g. for a model's tool list."""
        return copy.deepcopy(self._schema)

    def violations(self, args: object) -> list[SchemaViolation]:
        """Every way ``args`` breaks the schema (at most 20), empty when valid."""
        if self.accepts(args):
            return []
        found: list[SchemaViolation] = []
        _check(args, self._schema, "", found)
        return found

    def is_valid(self, args: object) -> bool:
        """Whether ``args`` satisfies the schema."""
        return self.accepts(args)

    def validate(self, args: object, *, tool: str = "") -> None:
        """Raise :class:`~mister_smith.InvalidToolInput` naming each violation, if any."""
        found = self.violations(args)
        if found:
            where = f"tool {tool!r}: " if tool else ""
            raise InvalidToolInput(f"{where}invalid arguments: " + "; ".join(map(str, found)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ToolSchema):
            return NotImplemented
        return json_equal(self._schema, other._schema)

    def __hash__(self) -> int:
        return hash(repr(sorted(self._schema)))
