"""Typed, UUID-backed identifiers.

Each id kind is its own class, so passing an ``AgentId`` where an ``ActorId`` is
expected is a type error under mypy, and ids of different kinds never compare equal.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Self

import attrs


@attrs.frozen(order=True, repr=False)
class _TypedId:
    """Common behaviour of the typed ids; not used directly."""

    prefix: ClassVar[str] = "id"
    uuid: uuid.UUID = attrs.field(
        factory=uuid.uuid4, validator=attrs.validators.instance_of(uuid.UUID)
    )

    @classmethod
    def new(cls) -> Self:
        """A fresh random id."""
        return cls(uuid.uuid4())

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse the full form (``str(id.uuid)``, optionally ``prefix-``-prefixed).

        Raises:
            ValueError: ``text`` is not a UUID (the message names the id kind).
        """
        raw = text.removeprefix(f"{cls.prefix}-")
        try:
            return cls(uuid.UUID(raw))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"not a valid {cls.__name__}: {text!r}") from exc

    @property
    def short(self) -> str:
        """Printable short form, e.g. ``agent-1a2b3c4d``."""
        return f"{self.prefix}-{self.uuid.hex[:8]}"

    def __str__(self) -> str:
        return self.short

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.uuid}')"


@attrs.frozen(order=True, repr=False)
class AgentId(_TypedId):
    """Identifies an agent."""

    prefix: ClassVar[str] = "agent"


@attrs.frozen(order=True, repr=False)
class ActorId(_TypedId):
    """Identifies an actor (stable across its restarts)."""

    prefix: ClassVar[str] = "actor"


@attrs.frozen(order=True, repr=False)
class TaskId(_TypedId):
    """Identifies a task."""

    prefix: ClassVar[str] = "task"


@attrs.frozen(order=True, repr=False)
class ToolId(_TypedId):
    """Identifies a tool."""

    prefix: ClassVar[str] = "tool"


@attrs.frozen(order=True, repr=False)
class NodeId(_TypedId):
    """Identifies a node of the supervision tree (a supervisor or a child)."""

    prefix: ClassVar[str] = "node"


TYPED_IDS: tuple[type[_TypedId], ...] = (AgentId, ActorId, TaskId, ToolId, NodeId)
"""Every typed id class, for converters that register hooks for all of them."""
