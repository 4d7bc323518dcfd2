"""The dead-letter log: a bounded record of every message no actor handled."""

from __future__ import annotations

import collections
from typing import Any

import attrs
import trio

from ..events import DeadLetter, EventBus, bounded_payload, cut_text


@attrs.frozen
class DeadLetterRecord:
    """One entry of the dead-letter log.

    The log outlives the actor, so it is bounded by bytes as well as by count: a
    message over :data:`~mister_smith.events.DEFAULT_PAYLOAD_LIMIT` bytes is kept as a
    :class:`~mister_smith.events.PayloadPreview` (type name, size, ``repr`` head), and
    a long reason is cut; the ``DeadLetter`` event carries the same.
    """

    actor: str
    message: Any
    reason: str
    timestamp: float


class DeadLetterLog:
    """The last ``size`` dead letters of an actor system, each also announced as a
    :class:`~mister_smith.events.DeadLetter` event."""

    __slots__ = ("_events", "_records")

    def __init__(self, events: EventBus, size: int) -> None:
        self._events = events
        self._records: collections.deque[DeadLetterRecord] = collections.deque(maxlen=size)

    def record(self, actor: str, message: Any, reason: str) -> None:
        """``message`` sent to ``actor`` was never handled, because of ``reason``."""
        now = trio.current_time()
        # Bounded by bytes: the message may be large and outlive its actor here.
        message, reason = bounded_payload(message), cut_text(reason)
        self._records.append(DeadLetterRecord(actor, message, reason, now))
        self._events.emit(DeadLetter(source=actor, actor=actor, message=message, reason=reason))

    def records(self) -> list[DeadLetterRecord]:
        """The log, oldest first."""
        return list(self._records)

    def resize(self, size: int) -> None:
        """Keep at most ``size`` records from now on (the newest are kept).

        Raises:
            ValueError: ``size`` is negative.
        """
        if size < 0:
            raise ValueError(f"dead-letter log size must be >= 0, got {size!r}")
        if size != self._records.maxlen:
            self._records = collections.deque(self._records, maxlen=size)
