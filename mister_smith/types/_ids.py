"""Typed, UUID-backed identifiers.

Each id kind is its own class, so passing an ``AgentId`` where an ``ActorId`` is
expected is a type error under mypy, and ids of different kinds never compare equal.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import ClassVar, Self

import attrs

_labels = random.Random(os.urandom(32))
"""A private generator for label ids, seeded from the OS (again in a forked child): user
code seeding the global ``random`` cannot make ids repeat."""
os.register_at_fork(after_in_child=lambda: _labels.seed(os.urandom(32)))
_VERSION_4 = 0x4000 << 64  # the version nibble: 4
_VARIANT_RFC = 0x8000 << 48  # the variant bits: RFC 4122
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID = uuid.UUID
_new = object.__new__
_set_slot = object.__setattr__  # UUID and frozen attrs classes forbid plain assignment
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def label_uuid() -> uuid.UUID:
    """A random (version 4) UUID for a label, without a system call.

    ``uuid.uuid4()`` reads ``os.urandom`` each time (a system call, microseconds on a
    busy machine). Labels made in bulk (event ids, actor ids) come from a private
    generator seeded from the OS instead: they are unique, not secret, so nothing that
    grants access may be one (credentials are sealed objects, see
    :class:`~mister_smith.types.CallerIdentity`).

    The UUID is assembled from its already valid 128-bit value: ``UUID(int=...)``
    re-checks the range and arguments, which is half the cost.
    """
    value = (_labels.getrandbits(128) & _CLEAR) | _VERSION_4 | _VARIANT_RFC
    made = _new(_UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _UNKNOWN_SAFETY)
    return made


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
    """Identifies an actor (stable across its restarts).

    A label, never a credential: no API takes one from outside to grant anything, so
    :meth:`new` draws it from :func:`label_uuid` (one is made per spawn).
    """

    prefix: ClassVar[str] = "actor"

    @classmethod
    def new(cls) -> Self:
        """A fresh random id (see :func:`label_uuid`)."""
        made = _new(cls)
        _set_slot(made, "uuid", label_uuid())  # (valid by construction: no validator run)
        return made


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
