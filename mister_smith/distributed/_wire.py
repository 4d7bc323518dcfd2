"""The wire format: an envelope in NATS headers, the body JSON through one cattrs converter.

Only *registered* attrs classes and plain JSON values (``None``, booleans, finite
numbers, strings, lists, string-keyed dicts) cross the wire; never pickle, so a message
from the network can build nothing but the types a node chose to accept. Every way a
body can be wrong (an unknown type tag, invalid JSON, a payload that does not match its
type, non-finite numbers, nesting past :data:`MAX_DEPTH`, too many bytes) is an
:class:`~mister_smith.distributed.EnvelopeError` naming what was wrong.

Headers (the design's envelope, names as sent)::

    Ms-Kind         tell | ask | reply | error
    Ms-Type         the body's type tag ("json" for plain JSON values)
    Ms-Message-Id   unique id of this message
    Ms-Sender       the sending node (and actor, when known)
    Ms-Deadline-Ms  for ask: milliseconds left of the caller's deadline when sent
    Ms-Schema       the envelope schema version ("1.0.0")
    traceparent     W3C trace context, when the caller had one
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from ..types import JsonProblem, MessageTypes, plain_json_problem, strict_json_converter
from ._errors import EnvelopeError, PayloadTooLarge, UnknownMessageType

try:  # orjson is about 2x faster; the stdlib does the same job without it
    import orjson

    def _dumps(value: Any) -> bytes:
        return orjson.dumps(value)

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    _DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, RecursionError)
except ImportError:  # pragma: no cover - the nats extra brings orjson

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()

    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def _loads(data: bytes) -> Any:
        return json.loads(data, parse_constant=_reject_constant)

    _DECODE_ERRORS = (ValueError, RecursionError)


SCHEMA_VERSION = "1.0.0"
"""The envelope schema version every node sends and accepts."""

JSON_TAG = "json"
"""The type tag of plain JSON values."""

MAX_DEPTH = 64
"""Deepest nesting of lists and dicts accepted in a body."""

DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""Bytes of a body at most (the NATS server's default ``max_payload``)."""

T = TypeVar("T")

H_KIND = "Ms-Kind"
H_TYPE = "Ms-Type"
H_ID = "Ms-Message-Id"
H_SENDER = "Ms-Sender"
H_DEADLINE = "Ms-Deadline-Ms"
H_SCHEMA = "Ms-Schema"
H_TRACE = "traceparent"


class Kind(enum.Enum):
    """What a message on the wire is."""

    TELL = "tell"
    ASK = "ask"
    REPLY = "reply"
    ERROR = "error"


_KINDS = {kind.value: kind for kind in Kind}


@attrs.frozen
class Envelope:
    """What travels in a message's headers.

    Attributes:
        kind: tell, ask, reply or error.
        type_tag: The body's registered type tag (``"json"`` for plain values).
        message_id: Unique per message.
        sender: The sending node (and actor), for dead letters and tracing.
        deadline_ms: For an ask, the caller's remaining deadline in milliseconds when
            it was sent (relative, so clocks of different machines need not agree).
        traceparent: W3C trace context, when the caller had one.
    """

    kind: Kind
    type_tag: str
    message_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    sender: str = ""
    deadline_ms: int | None = None
    traceparent: str | None = None

    def headers(self) -> dict[str, str]:
        """The envelope as NATS headers."""
        headers = {
            H_KIND: self.kind.value,
            H_TYPE: self.type_tag,
            H_ID: self.message_id,
            H_SCHEMA: SCHEMA_VERSION,
        }
        if self.sender:
            headers[H_SENDER] = self.sender
        if self.deadline_ms is not None:
            headers[H_DEADLINE] = str(self.deadline_ms)
        if self.traceparent:
            headers[H_TRACE] = self.traceparent
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Envelope:
        """Read an envelope from NATS headers.

        Raises:
            EnvelopeError: a header is missing or malformed (named in the text).
        """
        kind = _KINDS.get(headers.get(H_KIND, ""))
        if kind is None:
            raise EnvelopeError(f"header {H_KIND} is missing or unknown: {headers.get(H_KIND)!r}")
        schema = headers.get(H_SCHEMA, "")
        if schema.split(".", 1)[0] != SCHEMA_VERSION.split(".", 1)[0]:
            raise EnvelopeError(f"header {H_SCHEMA} {schema!r} is not compatible with 1.x")
        tag = headers.get(H_TYPE, "")
        if not tag:
            raise EnvelopeError(f"header {H_TYPE} is missing")
        deadline: int | None = None
        raw = headers.get(H_DEADLINE)
        if raw is not None:
            if not (raw.isdigit() and len(raw) <= 12):
                raise EnvelopeError(f"header {H_DEADLINE} must be whole milliseconds: {raw!r}")
            deadline = int(raw)
        return cls(
            kind=kind,
            type_tag=tag,
            message_id=headers.get(H_ID, ""),
            sender=headers.get(H_SENDER, ""),
            deadline_ms=deadline,
            traceparent=headers.get(H_TRACE),
        )


def _check_json(value: Any) -> None:
    """Refuse what is not plain, finite, bounded-depth JSON (orjson would quietly turn
    NaN into null)."""
    found = plain_json_problem(value, MAX_DEPTH)
    if found is None:
        return
    problem, text = found
    if problem is JsonProblem.NOT_JSON:
        raise UnknownMessageType(
            f"{text.removeprefix('is ')} is neither plain JSON nor a registered message type"
        )
    raise EnvelopeError(f"the body {text}")


class WireFormat:
    """Which message types cross the wire, and how: one cattrs converter (never the
    global one) over registered attrs classes, plus plain JSON values.

    Register every message class a node sends or accepts, on every node, under the same
    tag (by default ``module.QualName``)::

        wire = WireFormat()

        @wire.register
        @attrs.frozen
        class Survey:
            package: str
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 1:
            raise ValueError(f"max_payload must be >= 1, got {max_payload!r}")
        self.max_payload = max_payload
        self._converter = strict_json_converter()
        self._types = MessageTypes(reserved=JSON_TAG, kind="sent across the wire")

    def register(self, cls: type[T], *, tag: str | None = None) -> type[T]:
        """Accept ``cls`` (an attrs class) on the wire under ``tag``; returns ``cls`` so
        it works as a decorator.

        Raises:
            TypeError: ``cls`` is not an attrs class.
            ValueError: the tag is taken by another class, or reserved.
        """
        return self._types.register(cls, tag=tag)

    def registered(self) -> dict[str, type[Any]]:
        """Every registered tag and its class."""
        return self._types.registered()

    def tag_of(self, message: Any) -> str:
        """The tag ``message`` would be sent under.

        Raises:
            UnknownMessageType: its type is not registered and it is not plain JSON.
        """
        tag = self._types.tag_of(type(message))
        if tag is not None:
            return tag
        if attrs.has(type(message)):
            raise UnknownMessageType(
                f"{type(message).__qualname__} is not registered with the wire format "
                "(WireFormat.register it on every node)"
            )
        return JSON_TAG

    def encode(self, message: Any) -> tuple[str, bytes]:
        """``(tag, body)`` for ``message``.

        Raises:
            UnknownMessageType: its type is not registered and it is not plain JSON.
            EnvelopeError: it holds non-finite numbers or nests too deep.
            PayloadTooLarge: the body exceeds ``max_payload`` bytes.
        """
        tag = self.tag_of(message)
        value = message if tag == JSON_TAG else self._converter.unstructure(message)
        _check_json(value)
        try:
            body = _dumps(value)
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"cannot encode a {type(message).__qualname__}: {exc}") from exc
        if len(body) > self.max_payload:
            raise PayloadTooLarge(
                f"a {type(message).__qualname__} encodes to {len(body)} bytes "
                f"(max_payload {self.max_payload})"
            )
        return tag, body

    def decode(self, tag: str, body: bytes) -> Any:
        """The message ``body`` holds, as a ``tag``.

        Raises:
            UnknownMessageType: ``tag`` is not registered here.
            EnvelopeError: the body is not JSON, too deep, or does not match the type.
            PayloadTooLarge: the body exceeds ``max_payload`` bytes.
        """
        if len(body) > self.max_payload:
            raise PayloadTooLarge(f"a body of {len(body)} bytes (max_payload {self.max_payload})")
        cls = None if tag == JSON_TAG else self._types.class_of(tag)
        if cls is None and tag != JSON_TAG:
            raise UnknownMessageType(f"type tag {tag!r} is not registered on this node")
        try:
            value = _loads(body)
        except _DECODE_ERRORS as exc:
            raise EnvelopeError(f"the body of a {tag!r} is not valid JSON: {exc}") from None
        _check_json(value)
        if cls is None:
            return value
        try:
            return self._converter.structure(value, cls)
        except Exception as exc:  # cattrs reports every mismatch as a group
            detail = "; ".join(cattrs.transform_error(exc)) if _is_cattrs(exc) else repr(exc)
            raise EnvelopeError(f"the body does not match {tag!r}: {detail}") from None


def _is_cattrs(exc: BaseException) -> bool:
    return isinstance(exc, (cattrs.BaseValidationError, cattrs.ForbiddenExtraKeysError))


DEFAULT_WIRE = WireFormat()
"""The wire format nodes use unless given one; register with :func:`wire_message`."""


def wire_message(cls: type[T] | None = None, *, tag: str | None = None) -> Any:
    """Register an attrs class with ``DEFAULT_WIRE``, the process-wide wire format (a
    class decorator, with or without ``tag=``)."""

    def register(target: type[T]) -> type[T]:
        return DEFAULT_WIRE.register(target, tag=tag)

    return register if cls is None else register(cls)
