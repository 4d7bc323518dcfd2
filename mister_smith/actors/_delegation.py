"""``Delegated``: a message that carries whom the work is done for."""

from __future__ import annotations

from typing import Any

import attrs

from ..types import Caller


def _callers(value: Any) -> tuple[Caller, ...]:
    return tuple(value)


@attrs.frozen
class Delegated:
    """A message asked of an actor on behalf of callers, outermost first.

    ``AgentTool`` sends one to an actor whose class sets
    :attr:`~mister_smith.actors.Actor.accepts_delegated` (an ``Agent`` does) when it
    is called for someone: the actor must then call tools only where each of
    ``on_behalf_of`` may call them too, so offering an agent's ``ActorRef`` as a tool
    never widens what the tool's caller may do. Actors that do not set the flag never
    receive one.

    Attributes:
        message: The message itself.
        on_behalf_of: Who the work is done for, outermost first (identities, or plain
            names, which deny-policy tools refuse).
    """

    message: Any
    on_behalf_of: tuple[Caller, ...] = attrs.field(converter=_callers)

    @property
    def correlation_id(self) -> str | None:
        """The inner message's ``correlation_id`` (for middleware reading it)."""
        value = getattr(self.message, "correlation_id", None)
        return value if isinstance(value, str) else None
