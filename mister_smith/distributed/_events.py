"""Events of the distributed layer, announced on the node's event bus."""

from __future__ import annotations

import attrs

from ..events import Event


@attrs.frozen(kw_only=True)
class NatsConnectionChanged(Event):
    """The node's NATS connection changed state (``connected``, ``disconnected``,
    ``closed``, ...); ``server`` is the URL it is (or was) connected to."""

    node: str
    old_state: str
    new_state: str
    server: str = ""


@attrs.frozen(kw_only=True)
class RemoteDeadLetter(Event):
    """A message that arrived from the wire was never delivered to an actor: its
    envelope was bad, its type unknown, its deadline passed, or its target is gone."""

    node: str
    subject: str
    message_type: str
    reason: str


@attrs.frozen(kw_only=True)
class SingletonPlaced(Event):
    """This node took the lease of a cluster singleton (or shard) and started it.

    ``previous_node`` names the node that held it before (its lease expired), or is
    empty for a first placement."""

    node: str
    singleton: str
    previous_node: str = ""


@attrs.frozen(kw_only=True)
class SingletonReleased(Event):
    """This node stopped running a cluster singleton: it shut down, or lost the lease."""

    node: str
    singleton: str
    reason: str
