"""``AgentTool``: an actor or agent offered as a tool (a call is an ``ask``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import trio

from ..actors import ActorRef, Delegated
from ..errors import ToolTimeout
from ..types import Caller
from ._context import CURRENT_TOOL_CALL
from ._schema import ToolSchema


@runtime_checkable
class Askable(Protocol):
    """Anything that answers a message: an ``ActorRef``, an agent, a fake in tests."""

    async def ask(self, message: object, *, timeout: float | None = None) -> object:
        """Send ``message`` and wait (at most ``timeout`` seconds) for the reply."""
        ...


@runtime_checkable
class Delegate(Askable, Protocol):
    """An :class:`Askable` that also carries whom the work is done for.

    ``mister_smith.agents.AgentEndpoint`` is one: the agent it asks then calls tools
    only where its own grants *and* those of everyone in ``on_behalf_of`` allow.
    """

    async def ask_on_behalf(
        self,
        message: object,
        *,
        on_behalf_of: tuple[Caller, ...],
        timeout: float | None = None,
    ) -> object:
        """Like ``ask``, the work restricted to what ``on_behalf_of`` may do too."""
        ...


def _message_argument(args: Mapping[str, Any]) -> object:
    return args["message"]


class AgentTool:
    """Offers an :class:`Askable` (an actor ref, an agent) as a tool: calling it asks it.

    The ``ask`` gets the time left before the caller's deadline (the bus's deadline for
    the call, or any enclosing one) as its ``timeout``, capped by this tool's own
    ``timeout``, so the callee's ask covers queueing and reply within the same budget. A
    ``TimeoutError`` from the ask (e.g. ``AskTimeout``) becomes
    :class:`~mister_smith.ToolTimeout`.

    Delegation carries identity: a :class:`Delegate` target (an ``AgentEndpoint``) is
    asked with :meth:`Delegate.ask_on_behalf` and the caller of this tool (plus whom
    *it* acts for), and an ``ActorRef`` of an actor that accepts delegation (an
    agent's, see ``Actor.accepts_delegated``) is asked with a
    :class:`~mister_smith.actors.Delegated` message carrying them, so the agent asked
    may only use tools its caller may use too: no privilege escalation through a
    teammate, however the agent is offered. Any other :class:`Askable` (a plain
    actor's ref, a fake) gets the bare message and acts under its own grants: give
    such targets no grants their callers lack.

    Args:
        target: What to ask.
        name: The tool's name.
        description: What the agent does, for the calling model.
        input_schema: The arguments (default: a required string ``message``).
        to_message: Builds the message from the arguments (default: ``args["message"]``).
        timeout: Longest the ask may take (also the bus's per-tool deadline).
    """

    def __init__(
        self,
        target: Askable,
        *,
        name: str,
        description: str,
        input_schema: ToolSchema | None = None,
        to_message: Callable[[Mapping[str, Any]], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if input_schema is None:
            if to_message is not None:
                raise ValueError("a custom to_message needs its input_schema")
            input_schema = ToolSchema.from_properties(
                {"message": {"type": "string", "description": "What to ask the agent."}},
                required=["message"],
            )
        self.target = target
        self.name = name
        self.description = description
        self.input_schema = input_schema
        self.to_message = to_message or _message_argument
        self.timeout = timeout

    def ask_timeout(self) -> float | None:
        """The timeout the next ask gets: the caller's remaining time, capped by ours."""
        remaining = trio.current_effective_deadline() - trio.current_time()
        limit = min(remaining, math.inf if self.timeout is None else self.timeout)
        return None if math.isinf(limit) else max(limit, 0.0)

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Ask the target with the message built from ``args``; return the reply."""
        message = self.to_message(args)
        timeout = self.ask_timeout()
        call = CURRENT_TOOL_CALL.get()
        on_behalf_of = call.delegation() if call is not None else ()
        target = self.target
        try:
            if isinstance(target, Delegate):
                return await target.ask_on_behalf(
                    message, on_behalf_of=on_behalf_of, timeout=timeout
                )
            if on_behalf_of and isinstance(target, ActorRef) and target.accepts_delegated:
                return await target.ask(Delegated(message, on_behalf_of), timeout=timeout)
            return await target.ask(message, timeout=timeout)
        except TimeoutError as error:
            raise ToolTimeout(
                f"agent tool {self.name!r} got no reply within {timeout} s"
            ) from error
