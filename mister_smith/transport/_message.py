"""What routing reads from a message: priority, required capabilities, routing key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

DEFAULT_PRIORITY = 5
"""The wire envelope's default priority (1 = lowest, 10 = highest)."""


def _capabilities(value: Iterable[str] | str) -> frozenset[str]:
    return frozenset({value}) if isinstance(value, str) else frozenset(value)


@attrs.frozen
class Routed:
    """A message with routing attributes; the recipient receives ``payload``.

    Attributes:
        payload: What the chosen actor gets.
        priority: 1 (lowest) to 10 (highest), default 5.
        requires: Capabilities the recipient must have.
        key: Sticky routing key (e.g. a conversation id) for consistent hashing.
    """

    payload: Any
    priority: int = attrs.field(
        default=DEFAULT_PRIORITY, validator=[attrs.validators.ge(1), attrs.validators.le(10)]
    )
    requires: frozenset[str] = attrs.field(default=frozenset(), converter=_capabilities)
    key: str | None = None


_NOTHING_REQUIRED: frozenset[str] = frozenset()

# Exact built-in types whose instances never carry routing attributes: immutable types
# without an instance dict, and not mappings. Routing reads three attributes of every
# message; for these (and for Routed, read directly) it skips the Mapping check, an ABC
# isinstance that costs more than the rest of a load-balanced decision. Compared by
# exact type, so a subclass (a namedtuple, a str with attributes) takes the general path.
_PLAIN_TYPES: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), tuple})


def _attribute(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def message_priority(message: Any) -> int:
    """The message's priority (``priority`` attribute or key), default 5."""
    kind = type(message)
    if kind is Routed:
        value = message.priority
    elif kind in _PLAIN_TYPES:
        return DEFAULT_PRIORITY
    else:
        value = _attribute(message, "priority")
    return DEFAULT_PRIORITY if not isinstance(value, int) or isinstance(value, bool) else value


def message_requirements(message: Any) -> frozenset[str]:
    """Capabilities the message requires (``requires`` attribute or key)."""
    kind = type(message)
    if kind is Routed:
        required: frozenset[str] = message.requires  # a frozenset: its converter made it
        return required
    if kind in _PLAIN_TYPES:
        return _NOTHING_REQUIRED
    value = _attribute(message, "requires")
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def message_key(message: Any) -> str | None:
    """The sticky routing key (``key`` or ``routing_key``), if any."""
    kind = type(message)
    if kind is Routed:
        value = message.key  # Routed has no ``routing_key``
    elif kind in _PLAIN_TYPES:
        return None
    else:
        value = _attribute(message, "key")
        if value is None:
            value = _attribute(message, "routing_key")
    return None if value is None else str(value)


def payload_of(message: Any) -> Any:
    """What the recipient receives: ``Routed.payload``, else the message itself."""
    return message.payload if isinstance(message, Routed) else message
