"""``MessageCodec``: how a message becomes the bytes a durable mailbox keeps, and back.

Only *registered* attrs classes and plain JSON values (``None``, booleans, finite
numbers, strings, lists, string-keyed dicts) are kept; never pickle, so a store file
can rebuild nothing but the types the process chose to accept. The bytes are the type
tag, a newline, and the JSON body structured by one cattrs converter (never the global
one) that checks scalar types instead of coercing them.

Any object with the same ``encode(message) -> (tag, body)`` / ``decode(tag, body)``
pair can stand in (the distributed layer's ``WireFormat`` has it), so a node can keep
one registry for the wire and the store.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeVar

import attrs
import cattrs

from ..errors import MessageNotDurable
from ..types import JsonProblem, MessageTypes, plain_json_problem, strict_json_converter

T = TypeVar("T")

JSON_TAG = "json"
"""The type tag of plain JSON values."""

MAX_DEPTH = 64
"""Deepest nesting of lists and dicts accepted in a message."""


class Codec(Protocol):
    """What a durable actor system needs of a codec (``MessageCodec``, ``WireFormat``)."""

    def encode(self, message: Any) -> tuple[str, bytes]:
        """``(tag, body)`` for ``message``; raises (any error) when it cannot."""
        ...

    def decode(self, tag: str, body: bytes) -> Any:
        """The message ``body`` holds as a ``tag``; raises (any error) when it cannot."""
        ...


def to_payload(codec: Codec, message: Any) -> bytes:
    """The bytes a durable mailbox keeps for ``message``.

    Raises:
        MessageNotDurable: the codec cannot encode it (the cause is attached).
    """
    try:
        tag, body = codec.encode(message)
    except Exception as exc:
        raise MessageNotDurable(
            f"a {type(message).__qualname__} cannot be kept in a durable mailbox: {exc}"
        ) from exc
    return tag.encode() + b"\n" + body


def from_payload(codec: Codec, payload: bytes) -> Any:
    """The message ``payload`` (made by :func:`to_payload`) holds.

    Raises:
        MessageNotDurable: the bytes are not a message this codec reads.
    """
    tag, newline, body = payload.partition(b"\n")
    if not newline:
        raise MessageNotDurable("a stored message has no type tag")
    try:
        return codec.decode(tag.decode(), body)
    except Exception as exc:
        raise MessageNotDurable(
            f"a stored {tag.decode(errors='replace')!r} cannot be read: {exc}"
        ) from exc


def _check_json(value: Any) -> None:
    found = plain_json_problem(value, MAX_DEPTH)
    if found is None:
        return
    problem, text = found
    if problem is JsonProblem.NOT_JSON:
        raise TypeError(
            f"{text.removeprefix('is ')} is neither plain JSON nor a registered message "
            "type (register it with @durable_message)"
        )
    if problem is JsonProblem.NON_STRING_KEY:
        raise TypeError(f"it {text}")
    raise ValueError(f"it {text}")


class MessageCodec:
    """Registered attrs classes and plain JSON values, as JSON (see the module).

    Register every message class a durable actor receives, in every process that runs
    it, under the same tag (by default ``module.QualName``)::

        @durable_message
        @attrs.frozen
        class Charge:
            order: str
            cents: int
    """

    def __init__(self) -> None:
        self._converter = strict_json_converter()
        self._types = MessageTypes(reserved=JSON_TAG, kind="durable messages")

    def register(self, cls: type[T], *, tag: str | None = None) -> type[T]:
        """Accept ``cls`` (an attrs class) under ``tag``; returns ``cls`` (a decorator).

        Raises:
            TypeError: ``cls`` is not an attrs class.
            ValueError: the tag is reserved or taken by another class.
        """
        return self._types.register(cls, tag=tag)

    def registered(self) -> dict[str, type[Any]]:
        """Every registered tag and its class."""
        return self._types.registered()

    def encode(self, message: Any) -> tuple[str, bytes]:
        """``(tag, body)`` for ``message``.

        Raises:
            TypeError: its type is not registered and it is not plain JSON.
            ValueError: it holds non-finite numbers or nests too deep.
        """
        tag = self._types.tag_of(type(message))
        if tag is None:
            if attrs.has(type(message)):
                raise TypeError(
                    f"{type(message).__qualname__} is not registered (use @durable_message)"
                )
            tag, value = JSON_TAG, message
        else:
            value = self._converter.unstructure(message)
        _check_json(value)
        return tag, json.dumps(value, allow_nan=False, separators=(",", ":")).encode()

    def decode(self, tag: str, body: bytes) -> Any:
        """The message ``body`` holds as a ``tag``.

        Raises:
            LookupError: ``tag`` is not registered here.
            ValueError: the body is not JSON or does not match the type.
        """
        cls = None if tag == JSON_TAG else self._types.class_of(tag)
        if cls is None and tag != JSON_TAG:
            raise LookupError(f"type tag {tag!r} is not registered in this process")
        value = json.loads(body)
        if cls is None:
            return value
        try:
            return self._converter.structure(value, cls)
        except Exception as exc:  # cattrs reports every mismatch as a group
            if isinstance(exc, (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError)):
                raise ValueError("; ".join(cattrs.transform_error(exc))) from None  # noqa: TRY004
            raise


DEFAULT_CODEC = MessageCodec()
"""The codec durable actors use unless given one; register with :func:`durable_message`."""


def durable_message(cls: type[T] | None = None, *, tag: str | None = None) -> Any:
    """Register an attrs class with :data:`DEFAULT_CODEC` so durable actors can keep it
    (a class decorator, with or without ``tag=``)."""

    def register(target: type[T]) -> type[T]:
        return DEFAULT_CODEC.register(target, tag=tag)

    return register if cls is None else register(cls)
