"""Remote deadlines: a message that came over the wire carries the caller's deadline,
and the receiving actor handles it under that deadline (or not at all once it passed)."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from ..actors import ActorContext
from ..errors import MessageRejected


@attrs.frozen
class Delivery:
    """A message from the wire on its way to an actor spawned by a node.

    Attributes:
        message: The decoded message (what the handler sees).
        deadline: Trio-clock time by which the caller stops waiting (``None``: a tell).
        sender: The sending node, from the envelope.
    """

    message: Any
    deadline: float | None
    sender: str = ""


class DeadlineMiddleware:
    """Unwraps :class:`Delivery` and runs the handler under its deadline.

    A message whose deadline has passed before its handler starts is rejected unseen
    (a dead letter with the reason, not a crash); a handler still running at the
    deadline is cancelled and the message rejected the same way: the caller has given
    up, so finishing the work would only waste it. Messages from local senders pass
    through untouched. Nodes install it on every actor they spawn.
    """

    async def run(self, message: Any, ctx: ActorContext, handler: Any) -> Any:
        """Run ``handler`` on the unwrapped message, bounded by its remote deadline."""
        if not isinstance(message, Delivery):
            return await handler(message, ctx)
        deadline = message.deadline
        if deadline is None:
            return await handler(message.message, ctx)
        if trio.current_time() >= deadline:
            raise MessageRejected(
                f"the remote caller's deadline passed before actor {ctx.name!r} took it"
            )
        with trio.move_on_at(deadline) as scope:
            return await handler(message.message, ctx)
        if scope.cancelled_caught:
            raise MessageRejected(
                f"the remote caller's deadline passed while actor {ctx.name!r} handled it"
            )
        raise AssertionError("unreachable")  # pragma: no cover
