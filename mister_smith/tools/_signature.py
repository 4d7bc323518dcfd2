"""JSON Schema from a typed function signature, and arguments back into Python values."""

from __future__ import annotations

import collections.abc
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import attrs

from ._schema import ToolSchema


@attrs.frozen
class Param:
    """Extra schema for one parameter, given as ``Annotated[T, Param(...)]``.

    Example: ``count: Annotated[int, Param("how many", minimum=1, maximum=10)]``.

    Attributes:
        description: The parameter's description (overrides the docstring's).
        minimum: Smallest allowed number.
        maximum: Largest allowed number.
        min_length: Shortest allowed string.
        max_length: Longest allowed string.
        pattern: Regular expression strings must contain a match of.
        min_items: Fewest allowed array items.
        max_items: Most allowed array items.
    """

    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None

    def apply(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with this parameter's keywords added."""
        keywords = {
            "description": self.description,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }
        return {**schema, **{k: v for k, v in keywords.items() if v is not None}}


_SEQUENCES = (list, collections.abc.Sequence, collections.abc.Iterable, tuple, frozenset, set)
_MAPPINGS = (dict, collections.abc.Mapping)


def _is_union(origin: object) -> bool:
    return origin is Union or origin is types.UnionType


def _simple_type(schema: Mapping[str, Any]) -> str | None:
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return str(schema["type"])
    return None


def schema_for_type(annotation: Any, *, _seen: tuple[type, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of values of ``annotation``.

    Supported: ``str``, ``int``, ``float``, ``bool``, ``None``, ``list[T]`` (and
    ``Sequence`` / ``tuple[T, ...]`` / ``set[T]``), ``dict[str, T]`` (and ``Mapping``),
    ``T | None`` and other unions, ``Literal[...]``, ``enum.Enum`` subclasses (by value),
    attrs classes (nested objects, init names as properties), ``Any`` / ``object``, and
    ``Annotated[T, Param(...)]`` or ``Annotated[T, "description"]``.

    Raises:
        TypeError: an unsupported or recursive type.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        schema = schema_for_type(inner, _seen=_seen)
        for item in metadata:
            if isinstance(item, Param):
                schema = item.apply(schema)
            elif isinstance(item, str):
                schema = {**schema, "description": item}
        return schema
    if annotation is Any or annotation is object:
        return {}
    if annotation is None or annotation is type(None):
        return {"type": "null"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if origin is Literal:
        values = list(get_args(annotation))
        for value in values:
            if not isinstance(value, str | int | bool) and value is not None:
                raise TypeError(f"Literal values must be str, int, bool or None, got {value!r}")
        return {"enum": values}
    if _is_union(origin):
        options = [schema_for_type(arg, _seen=_seen) for arg in get_args(annotation)]
        simple = [_simple_type(option) for option in options]
        if all(simple):
            return {"type": list(dict.fromkeys(typing.cast(list[str], simple)))}
        return {"anyOf": options}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        for value in values:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise TypeError(f"enum {annotation.__name__} values must be str or int")
        return {"enum": values}
    if isinstance(annotation, type) and attrs.has(annotation):
        if annotation in _seen:
            raise TypeError(f"recursive attrs class {annotation.__name__} is not supported")
        return _attrs_schema(annotation, (*_seen, annotation))
    if annotation in (list, tuple, set, frozenset):
        return {"type": "array"}
    if annotation is dict:
        return {"type": "object"}
    if origin in _SEQUENCES:
        args = get_args(annotation)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": schema_for_type(args[0], _seen=_seen)}
            raise TypeError(f"only tuple[T, ...] is supported, got {annotation!r}")
        array: dict[str, Any] = {"type": "array"}
        if args:
            array["items"] = schema_for_type(args[0], _seen=_seen)
        return array
    if origin in _MAPPINGS:
        key, value = get_args(annotation) or (str, Any)
        if key is not str:
            raise TypeError(f"mapping keys must be str, got {annotation!r}")
        return {"type": "object", "additionalProperties": schema_for_type(value, _seen=_seen)}
    raise TypeError(f"cannot describe {annotation!r} as JSON Schema")


def _attrs_schema(cls: type, seen: tuple[type, ...]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        name = field.alias or field.name
        schema = schema_for_type(hints.get(field.name, Any), _seen=seen)
        properties[name] = schema
        if field.default is attrs.NOTHING:
            required.append(name)
        else:
            default = _json_default(field.default)
            if default is not _NO_DEFAULT:
                schema.setdefault("default", default)
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = split_docstring(cls.__doc__)[0]
    return schema


_NO_DEFAULT = object()


def _json_default(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    return _NO_DEFAULT


_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Example|Examples|Note|Notes):\s*$"
)
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def split_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """A Google-style docstring's description (before any section) and its ``Args:``."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            current = None
            continue
        if section is None:
            description.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            match = _ARG_LINE.match(line)
            if match and (len(line) - len(line.lstrip())) <= 4:
                current = match.group(1).lstrip("*")
                params[current] = match.group(2).strip()
            elif current is not None and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), params


@attrs.frozen
class Signature:
    """What :func:`describe_function` learned about a function.

    Attributes:
        schema: The arguments' schema.
        description: The docstring's description part.
        annotations: Each parameter's annotation for :func:`structure_args` (``None``
            where values pass through unchanged).
    """

    schema: ToolSchema
    description: str
    annotations: dict[str, Any]


def describe_function(fn: Callable[..., object]) -> Signature:
    """Build the argument schema of ``fn`` from its signature and docstring.

    Every parameter must be annotated and passable by keyword (no ``*args`` /
    ``**kwargs`` / positional-only). Parameters without defaults are required; JSON
    defaults are recorded in the schema; ``Args:`` lines become descriptions.

    Raises:
        TypeError: an unannotated, variadic or positional-only parameter, or a type
            :func:`schema_for_type` does not support.
    """
    name = getattr(fn, "__qualname__", repr(fn))
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError as error:
        raise TypeError(f"cannot resolve the annotations of {name}: {error}") from error
    description, documented = split_docstring(inspect.getdoc(fn))
    properties: dict[str, Any] = {}
    required: list[str] = []
    annotations: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{name}: tools cannot take *args or **kwargs ({param.name})")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{name}: parameter {param.name!r} is positional-only")
        if param.name not in hints:
            raise TypeError(f"{name}: parameter {param.name!r} needs a type annotation")
        annotation = hints[param.name]
        try:
            schema = schema_for_type(annotation)
        except TypeError as error:
            raise TypeError(f"{name}: parameter {param.name!r}: {error}") from error
        if param.name in documented and "description" not in schema:
            schema["description"] = documented[param.name]
        if param.default is param.empty:
            required.append(param.name)
        else:
            default = _json_default(param.default)
            if default is not _NO_DEFAULT:
                schema.setdefault("default", default)
        properties[param.name] = schema
        annotations[param.name] = annotation if needs_structuring(annotation) else None
    return Signature(
        ToolSchema.from_properties(properties, required=required), description, annotations
    )


def structure(value: Any, annotation: Any) -> Any:
    """Turn a validated JSON value into the Python value ``annotation`` asks for.

    Attrs classes are built from objects, enums from values, tuples/sets from arrays,
    ints become floats where ``float`` is asked; everything else passes through.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return structure(value, get_args(annotation)[0])
    if annotation is Any or annotation is object or value is None:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if _is_union(origin):
        for option in get_args(annotation):
            if ToolSchema(
                {"type": "object", "properties": {"v": schema_for_type(option)}}
            ).is_valid({"v": value}):
                return structure(value, option)
        return value
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if isinstance(annotation, type) and attrs.has(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        kwargs = {}
        for field in attrs.fields(annotation):
            name = field.alias or field.name
            if field.init and name in value:
                kwargs[name] = structure(value[name], hints.get(field.name, Any))
        return annotation(**kwargs)
    if origin in _SEQUENCES:
        args = get_args(annotation)
        items = [structure(item, args[0]) for item in value] if args else list(value)
        if origin is tuple:
            return tuple(items)
        if origin in (set, frozenset):
            return origin(items)
        return items
    if origin in _MAPPINGS:
        args = get_args(annotation)
        item_type = args[1] if args else Any
        return {key: structure(item, item_type) for key, item in value.items()}
    return value


def needs_structuring(annotation: Any) -> bool:
    """Whether validated JSON values of ``annotation`` need :func:`structure` at all."""
    return not (annotation in (str, int, bool, Any, object) or get_origin(annotation) is Literal)


def structure_args(args: Mapping[str, Any], annotations: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the function from validated ``args``.

    ``annotations`` maps each parameter to its annotation, or to ``None`` when its
    values pass through unchanged (see :func:`needs_structuring`).
    """
    return {
        name: value if annotations[name] is None else structure(value, annotations[name])
        for name, value in args.items()
    }
