"""Applying a middleware chain around every actor's ``handle``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..actors import ActorContext
from ._middleware import AgentMiddleware, MiddlewareChain, MiddlewareContext


class ActorMiddleware:
    """Adapts :class:`AgentMiddleware` to the actor system's middleware protocol.

    Pass it to ``open_actor_system(middleware=[...])``, ``ActorSystem.spawn(...,
    middleware=[...])`` or ``RuntimeManager.open(config, middleware=[...])``; the chain
    then runs around each message an actor (or agent) handles, with a fresh
    :class:`MiddlewareContext` naming the actor. A middleware that raises in
    ``before_process`` rejects the message: the handler never sees it and the actor
    treats it as a failed message (dead-lettered, supervised like any crash).
    """

    def __init__(self, middleware: Iterable[AgentMiddleware]) -> None:
        self.chain = MiddlewareChain(middleware)

    async def run(
        self,
        message: Any,
        ctx: ActorContext,
        handler: Callable[[Any, ActorContext], Awaitable[Any]],
    ) -> Any:
        """Run ``handler(message, ctx)`` inside the chain."""
        context = MiddlewareContext(
            actor=ctx.name,
            actor_id=ctx.ref.actor_id,
            correlation_id=_correlation_id(message),
        )

        async def handle(inner: Any) -> Any:
            return await handler(inner, ctx)

        return await self.chain.run(message, context, handle)


def _correlation_id(message: Any) -> str | None:
    value = getattr(message, "correlation_id", None)
    return None if value is None else str(value)
