"""Plain JSON: what a value must be to be written as JSON and read back the same, and
the strict converter that turns such values into attrs messages."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs

T = TypeVar("T")


class JsonProblem(enum.Enum):
    """Why a value is not plain JSON (see :func:`plain_json_problem`)."""

    TOO_DEEP = "too deep"
    NON_FINITE = "non-finite number"
    NON_STRING_KEY = "non-string key"
    NOT_JSON = "not a JSON type"


def plain_json_problem(value: Any, max_depth: int) -> tuple[JsonProblem, str] | None:
    """The first way ``value`` is not plain JSON, with a description to follow a
    subject ("the body ...", "it ..."), or ``None`` when it is.

    Plain JSON here: ``None``, bools, ints, strings, finite floats, lists and tuples of
    plain JSON, and dicts with string keys, nested at most ``max_depth`` levels (the
    bound keeps the check itself from recursing without end). Codecs that must not
    turn NaN into ``null`` or a key ``1`` into ``"1"`` check with this first.
    """
    return _problem(value, max_depth, 0)


def _problem(value: Any, max_depth: int, depth: int) -> tuple[JsonProblem, str] | None:
    if depth > max_depth:
        return JsonProblem.TOO_DEEP, f"nests deeper than {max_depth} levels"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return JsonProblem.NON_FINITE, f"holds a non-finite number ({value!r})"
    if isinstance(value, list | tuple):
        for item in value:
            found = _problem(item, max_depth, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return JsonProblem.NON_STRING_KEY, f"has a non-string key {key!r}"
            found = _problem(item, max_depth, depth + 1)
            if found is not None:
                return found
        return None
    return JsonProblem.NOT_JSON, f"is a {type(value).__qualname__}"


def strict_json_converter() -> cattrs.Converter:
    """A cattrs converter for messages read from JSON that checks scalar types instead of
    coercing them (plain cattrs turns ``3`` into ``"3"`` for a ``str`` field and ``"1"``
    into ``True`` for a bool) and refuses unknown keys. The durable store's codec and
    the wire format each build one."""
    converter = cattrs.Converter(forbid_extra_keys=True)

    def exact(kind: type[Any], name: str) -> Callable[[Any, Any], Any]:
        def structure(value: Any, _: Any) -> Any:
            if type(value) is not kind:
                raise TypeError(f"expected {name}, got {type(value).__name__}")
            return value

        return structure

    def number(value: Any, _: Any) -> float:
        if type(value) not in (int, float):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)

    converter.register_structure_hook(str, exact(str, "a string"))
    converter.register_structure_hook(int, exact(int, "an integer"))
    converter.register_structure_hook(bool, exact(bool, "a boolean"))
    converter.register_structure_hook(float, number)
    return converter


class MessageTypes:
    """Which attrs classes a codec knows, each under a type tag (both ways).

    The tag travels with the body (a stored record's first line, a NATS header), so it
    is one non-empty line and never ``reserved`` (the tag of plain JSON values).

    Args:
        reserved: The tag no class may take.
        kind: What registered classes become, for errors ("durable messages").
    """

    __slots__ = ("_by_tag", "_by_type", "_kind", "_reserved")

    def __init__(self, *, reserved: str, kind: str) -> None:
        self._reserved = reserved
        self._kind = kind
        self._by_tag: dict[str, type[Any]] = {}
        self._by_type: dict[type[Any], str] = {}

    def register(self, cls: type[T], *, tag: str | None = None) -> type[T]:
        """Accept ``cls`` under ``tag`` (default: its module and qualified name).

        Raises:
            TypeError: ``cls`` is not an attrs class.
            ValueError: the tag is empty, reserved, has a newline, or is taken by
                another class.
        """
        klass: type[Any] = cls
        if not attrs.has(klass):
            raise TypeError(f"only attrs classes can be {self._kind}, not {cls!r}")
        name = f"{cls.__module__}.{cls.__qualname__}" if tag is None else tag
        if not name or name == self._reserved or "\n" in name:
            raise ValueError(f"type tag {name!r} is reserved or has a newline")
        taken = self._by_tag.get(name)
        if taken is not None and taken is not cls:
            raise ValueError(f"type tag {name!r} is already registered for {taken!r}")
        self._by_tag[name] = cls
        self._by_type[cls] = name
        return cls

    def tag_of(self, cls: type[Any]) -> str | None:
        """The tag of ``cls``, or ``None`` when it is not registered."""
        return self._by_type.get(cls)

    def class_of(self, tag: str) -> type[Any] | None:
        """The class registered under ``tag``, or ``None``."""
        return self._by_tag.get(tag)

    def registered(self) -> dict[str, type[Any]]:
        """Every registered tag and its class."""
        return dict(self._by_tag)
