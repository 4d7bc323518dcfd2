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


def _attribute(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def message_priority(message: Any) -> int:
    """The message's priority (``priority`` attribute or key), default 5."""
    value = _attribute(message, "priority")
    return DEFAULT_PRIORITY if not isinstance(value, int) or isinstance(value, bool) else value


def message_requirements(message: Any) -> frozenset[str]:
    """Capabilities the message requires (``requires`` attribute or key)."""
    value = _attribute(message, "requires")
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def message_key(message: Any) -> str | None:
    """The sticky routing key (``key`` or ``routing_key``), if any."""
    value = _attribute(message, "key")
    if value is None:
        value = _attribute(message, "routing_key")
    return None if value is None else str(value)


def payload_of(message: Any) -> Any:
    """What the recipient receives: ``Routed.payload``, else the message itself."""
    return message.payload if isinstance(message, Routed) else message
