"""What the monitoring layer reads from other parts, as small structural protocols.

Monitoring sits beside resources, actors and tools, not above them: it names only the
counters it needs, so any object with a matching ``statistics()`` plugs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class PoolStatisticsLike(Protocol):
    """A pool's counters (what ``ConnectionPool.statistics()`` returns)."""

    @property
    def name(self) -> str:
        """The pool's name (a metric label)."""
        ...

    @property
    def idle(self) -> int:
        """Open connections not in use."""
        ...

    @property
    def in_use(self) -> int:
        """Connections handed out."""
        ...

    @property
    def creating(self) -> int:
        """Connections being created."""
        ...

    @property
    def waiting(self) -> int:
        """Acquirers queued."""
        ...

    @property
    def max_size(self) -> int:
        """Most connections at once."""
        ...

    @property
    def created(self) -> int:
        """Connections created so far."""
        ...

    @property
    def closed(self) -> int:
        """Connections closed so far."""
        ...

    @property
    def acquired(self) -> int:
        """Successful acquisitions so far."""
        ...

    @property
    def timeouts(self) -> int:
        """Acquisitions that timed out so far."""
        ...

    @property
    def discarded(self) -> int:
        """Connections discarded after a failed use so far."""
        ...


class PoolMetricsSource(Protocol):
    """A pool."""

    def statistics(self) -> PoolStatisticsLike:
        """Current counters."""
        ...


class ActorStatisticsLike(Protocol):
    """An actor's mailbox counters (what ``ActorRef.statistics()`` returns).

    ``handled``, ``failed``, ``dead_lettered``, ``in_flight`` and ``restarts`` are
    read when present.
    """

    @property
    def name(self) -> str:
        """The actor's name (a metric label)."""
        ...

    @property
    def queued(self) -> int:
        """Messages waiting in the mailbox."""
        ...

    @property
    def capacity(self) -> int:
        """Mailbox capacity."""
        ...


class ActorMetricsSource(Protocol):
    """An actor (or its ref)."""

    def statistics(self) -> ActorStatisticsLike:
        """Current counters."""
        ...


class EventBusStatisticsLike(Protocol):
    """The event bus counters exported at scrape time."""

    @property
    def emitted(self) -> int:
        """Events emitted so far."""
        ...

    @property
    def dropped(self) -> int:
        """Events dropped from full subscriber queues so far."""
        ...

    @property
    def handler_failures(self) -> int:
        """Handler calls that raised so far."""
        ...


class EventBusMetricsSource(Protocol):
    """An event bus."""

    def statistics(self) -> EventBusStatisticsLike:
        """Current counters."""
        ...


class BlockingStatisticsLike(Protocol):
    """A blocking detector's counters."""

    @property
    def steps(self) -> int:
        """Task steps measured so far."""
        ...

    @property
    def blocked(self) -> int:
        """Steps that blocked the loop so far."""
        ...


class BlockingMetricsSource(Protocol):
    """A blocking detector."""

    def statistics(self) -> BlockingStatisticsLike:
        """Current counters."""
        ...


class HealthView(Protocol):
    """A liveness or readiness verdict (what ``HealthMonitor.readiness()`` returns)."""

    @property
    def ok(self) -> bool:
        """Whether the probe passes (HTTP 200) or not (HTTP 503)."""
        ...

    def to_dict(self) -> Mapping[str, Any]:
        """The JSON body; ``"checks"`` maps component names to dicts with a ``"status"``."""
        ...


class HealthSource(Protocol):
    """What the HTTP endpoints and health metrics ask (a ``HealthMonitor``)."""

    def liveness(self) -> HealthView:
        """Should the process be left running?"""
        ...

    def readiness(self) -> HealthView:
        """Should the process receive traffic?"""
        ...

    async def fresh_readiness(self) -> HealthView:
        """Readiness from checks recent enough to trust (re-run when they are not)."""
        ...


class ToolRegistryLike(Protocol):
    """Where monitoring learns which tool names are real (a ``ToolBus``)."""

    def get_tool(self, name: str) -> object:
        """The tool registered as ``name``; raises a ``LookupError`` if there is none."""
        ...
