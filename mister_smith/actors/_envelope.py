"""Mailbox envelopes: what ``tell`` and ``ask`` put in a mailbox around the user's message."""

from __future__ import annotations

from typing import Any

import attrs
import trio


@attrs.define(eq=False)
class Reply:
    """Where an ``ask``'s answer goes."""

    event: trio.Event = attrs.field(factory=trio.Event)
    value: Any = None
    error: BaseException | None = None
    abandoned: bool = False

    def set_value(self, value: Any) -> None:
        """Answer with ``value`` (the first answer wins)."""
        if not self.event.is_set():
            self.value = value
            self.event.set()

    def set_error(self, error: BaseException) -> None:
        """Answer by raising ``error`` in the asker (the first answer wins)."""
        if not self.event.is_set():
            self.error = error
            self.event.set()


@attrs.define(eq=False, slots=True)
class Ask:
    """A message sent with ``ask``: the payload plus its reply slot (and the sender's
    W3C trace context, restored around the handler)."""

    message: Any
    reply: Reply
    traceparent: str | None = None


@attrs.define(eq=False, slots=True)
class Traced:
    """A message sent with ``tell`` from inside a trace, and that trace's context."""

    message: Any
    traceparent: str


ENVELOPES = (Ask, Traced)
"""The wrappers around a user's message (a tuple: ``isinstance`` is faster with it than
with a union, and the loop checks it per message)."""


def payload(envelope: Any) -> Any:
    """The user's message inside a mailbox item."""
    return envelope.message if isinstance(envelope, ENVELOPES) else envelope
