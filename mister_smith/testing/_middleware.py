"""The harness's system-wide actor middleware: pending faults and control messages."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import trio

from ..actors import ActorContext, ActorRef
from ._failures import Hang, Injection, Slow

Handler = Callable[[Any, ActorContext], Awaitable[Any]]


@attrs.frozen
class ControlMessage:
    """A message the harness sends through an actor's mailbox and consumes itself.

    It never reaches the actor's handler (or any middleware installed after the
    harness's), but it is accepted, counted and handled (or dead-lettered) like any
    other message, so ``accepted == handled + dead_lettered`` keeps holding.

    Attributes:
        kind: ``"trigger"`` (wakes an idle actor so a pending fault applies) or
            ``"ping"`` (answered with :data:`PONG`, proving the actor answers).
    """

    kind: str

    def __repr__(self) -> str:
        return f"<harness {self.kind}>"


TRIGGER: Final = ControlMessage("trigger")
"""Sent to an actor with no queued message so a pending fault is applied at once."""

PING: Final = ControlMessage("ping")
"""Asked of an actor by :meth:`SystemTestHarness.assert_recovered`."""

PONG: Final = "pong"
"""The reply to :data:`PING`."""


class FaultMiddleware:
    """Applies pending injected faults to an actor's next message.

    Installed system-wide (outermost) by :class:`SystemTestHarness`. A fault queued
    for an actor is taken by the next message the actor dequeues, whatever it is: a
    crash or error is raised before the handler runs (the message is dead-lettered as
    "crashed while handling it", exactly like a failing handler), a hang never returns,
    a slow fault delays the handler. :class:`ControlMessage` items are answered here.
    """

    def __init__(self) -> None:
        self._pending: dict[ActorRef, collections.deque[Injection]] = {}
        self.control_handled = 0
        """Control messages consumed without a fault."""

    def add(self, ref: ActorRef, injection: Injection) -> None:
        """Queue ``injection`` for ``ref``'s next message."""
        self._pending.setdefault(ref, collections.deque()).append(injection)

    def pending(self, ref: ActorRef) -> int:
        """Faults queued for ``ref`` and not yet applied."""
        queue = self._pending.get(ref)
        return 0 if queue is None else len(queue)

    def discard(self, ref: ActorRef) -> list[Injection]:
        """Forget the faults queued for ``ref`` (it stopped); return them."""
        return list(self._pending.pop(ref, ()))

    async def run(self, message: Any, ctx: ActorContext, handler: Handler) -> Any:
        """Apply a pending fault, answer control messages, else call ``handler``."""
        queue = self._pending.get(ctx.ref)
        if queue:
            injection = queue.popleft()
            failure = injection.failure
            error = failure.make_error(injection.label)
            injection.mark_applied(error)
            if error is not None:
                raise error
            if isinstance(failure, Hang):
                await trio.sleep_forever()
            if isinstance(failure, Slow):
                await trio.sleep(failure.delay)
        if isinstance(message, ControlMessage):
            self.control_handled += 1
            await trio.lowlevel.checkpoint()
            return PONG if message.kind == "ping" else None
        return await handler(message, ctx)
