"""Built-in health checks: pools, mailboxes, the event bus, the blocking detector, supervisors.

Each reads a ``statistics()`` snapshot through a small protocol, so anything with the
right counters can be checked (actors plug in without this layer importing them).
Checks of counters that only grow (timeouts, drops, blocked steps) judge the increase
since their previous check; the first check counts from zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import attrs
import trio

from ._health import HealthReport

# -- protocols --------------------------------------------------------------------------


class PoolStatisticsLike(Protocol):
    """The pool counters :class:`PoolHealthCheck` reads (see ``PoolStatistics``)."""

    @property
    def in_use(self) -> int:
        """Connections handed out."""
        ...

    @property
    def max_size(self) -> int:
        """Most connections at once."""
        ...

    @property
    def waiting(self) -> int:
        """Acquirers queued."""
        ...

    @property
    def timeouts(self) -> int:
        """Acquisitions that timed out so far."""
        ...

    @property
    def is_closed(self) -> bool:
        """Whether the pool has closed."""
        ...


class HasPoolStatistics(Protocol):
    """A pool (or a proxy of one): ``statistics()`` returns pool counters."""

    def statistics(self) -> PoolStatisticsLike:
        """Current counters."""
        ...


class QueueStatistics(Protocol):
    """A bounded queue's fill: what an actor mailbox's ``statistics()`` provides."""

    @property
    def queued(self) -> int:
        """Items waiting now."""
        ...

    @property
    def capacity(self) -> int | float:
        """Most items it holds (``math.inf`` when unbounded)."""
        ...


class HasQueueStatistics(Protocol):
    """Something with a bounded queue, e.g. an actor ref or an event stream."""

    def statistics(self) -> QueueStatistics:
        """Current fill."""
        ...


class EventBusStatisticsLike(Protocol):
    """The event bus counters :class:`EventBusHealthCheck` reads."""

    @property
    def dropped(self) -> int:
        """Events dropped from full subscriber queues so far."""
        ...

    @property
    def handler_failures(self) -> int:
        """Handler calls that raised so far."""
        ...


class HasEventBusStatistics(Protocol):
    """An event bus."""

    def statistics(self) -> EventBusStatisticsLike:
        """Current counters."""
        ...


class BlockedStatistics(Protocol):
    """A blocking detector's counter of task steps that held the loop too long."""

    @property
    def blocked(self) -> int:
        """Blocking steps seen so far."""
        ...


class HasBlockedStatistics(Protocol):
    """A blocking detector (the Trio instrument reporting ``LoopBlocked``)."""

    def statistics(self) -> BlockedStatistics:
        """Current counters."""
        ...


class SupervisorLike(Protocol):
    """A supervisor, as far as :class:`SupervisorHealthCheck` cares."""

    @property
    def name(self) -> str:
        """Its name."""
        ...

    @property
    def state(self) -> str:
        """``"running"``, ``"stopping"``, ``"stopped"`` or ``"failed"``."""
        ...


def _fraction(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


# -- checks -----------------------------------------------------------------------------


@attrs.define(eq=False)
class PoolHealthCheck:
    """Exhaustion and saturation of a connection pool.

    ``UNHEALTHY`` when the pool is closed or acquisitions timed out since the previous
    check (exhausted); ``DEGRADED`` when acquirers are waiting or at least
    ``saturation`` of ``max_size`` is in use; else ``HEALTHY``.
    """

    pool: HasPoolStatistics
    name: str = "pool"
    required: bool = True
    saturation: float = attrs.field(default=0.9)
    _last_timeouts: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        _fraction("saturation", self.saturation)

    async def check(self) -> HealthReport:
        """Judge the pool's current statistics."""
        await trio.lowlevel.checkpoint()
        stats = self.pool.statistics()
        new_timeouts = stats.timeouts - self._last_timeouts
        self._last_timeouts = stats.timeouts
        details = {
            "in_use": stats.in_use,
            "max_size": stats.max_size,
            "waiting": stats.waiting,
            "timeouts": stats.timeouts,
        }
        if stats.is_closed:
            return HealthReport.unhealthy("pool is closed", details)
        if new_timeouts > 0:
            return HealthReport.unhealthy(
                f"exhausted: {new_timeouts} acquisitions timed out since the last check",
                details,
            )
        if stats.waiting > 0:
            return HealthReport.degraded(f"{stats.waiting} acquirers waiting", details)
        if stats.in_use >= self.saturation * stats.max_size:
            return HealthReport.degraded(
                f"saturated: {stats.in_use} of {stats.max_size} in use", details
            )
        return HealthReport.healthy(details=details)


MailboxSources = Mapping[str, HasQueueStatistics] | Callable[[], Mapping[str, HasQueueStatistics]]
"""Named mailboxes, or a function returning the current ones (e.g. every live actor)."""


@attrs.define(eq=False)
class MailboxHealthCheck:
    """Mailbox saturation of actors: the fullest mailbox decides.

    ``UNHEALTHY`` when one is at least ``unhealthy_at`` full (by default: full, so
    ``tell`` would be refused); ``DEGRADED`` at ``degraded_at`` (default 0.8, the
    backpressure threshold); else ``HEALTHY``. The details name the fullest few.
    """

    sources: MailboxSources
    name: str = "mailboxes"
    required: bool = False
    degraded_at: float = 0.8
    unhealthy_at: float = 1.0
    listed: int = 5
    """How many of the fullest mailboxes the details name."""

    def __attrs_post_init__(self) -> None:
        _fraction("degraded_at", self.degraded_at)
        _fraction("unhealthy_at", self.unhealthy_at)
        if self.degraded_at > self.unhealthy_at:
            raise ValueError("degraded_at must be <= unhealthy_at")

    async def check(self) -> HealthReport:
        """Compute each mailbox's fill and judge the fullest."""
        await trio.lowlevel.checkpoint()
        sources = self.sources() if callable(self.sources) else self.sources
        fills: list[tuple[float, str]] = []
        for actor, source in sources.items():
            stats = source.statistics()
            fill = stats.queued / stats.capacity if stats.capacity > 0 else 1.0
            fills.append((fill, actor))
        fills.sort(reverse=True)
        details = {
            "mailboxes": len(fills),
            "fullest": {actor: round(fill, 4) for fill, actor in fills[: self.listed]},
        }
        if not fills:
            return HealthReport.healthy(details=details)
        worst, actor = fills[0]
        if worst >= self.unhealthy_at:
            full = sum(1 for fill, _ in fills if fill >= self.unhealthy_at)
            return HealthReport.unhealthy(
                f"{full} mailbox(es) at or above {self.unhealthy_at:.0%} (fullest: {actor})",
                details,
            )
        if worst >= self.degraded_at:
            return HealthReport.degraded(f"mailbox of {actor} is {worst:.0%} full", details)
        return HealthReport.healthy(details=details)


@attrs.define(eq=False)
class EventBusHealthCheck:
    """Events lost by the event bus.

    ``DEGRADED`` when subscribers dropped events or handlers failed since the previous
    check; ``UNHEALTHY`` when at least ``unhealthy_drops`` were dropped since then.
    """

    bus: HasEventBusStatistics
    name: str = "event_bus"
    required: bool = False
    unhealthy_drops: int = 1000
    _last_dropped: int = attrs.field(default=0, init=False)
    _last_failures: int = attrs.field(default=0, init=False)

    async def check(self) -> HealthReport:
        """Compare the bus's drop and handler-failure counters with the last check."""
        await trio.lowlevel.checkpoint()
        stats = self.bus.statistics()
        dropped = stats.dropped - self._last_dropped
        failures = stats.handler_failures - self._last_failures
        self._last_dropped = stats.dropped
        self._last_failures = stats.handler_failures
        details = {
            "dropped": stats.dropped,
            "handler_failures": stats.handler_failures,
            "dropped_since_last": dropped,
            "handler_failures_since_last": failures,
        }
        if dropped >= self.unhealthy_drops:
            return HealthReport.unhealthy(f"{dropped} events dropped since the last check", details)
        if dropped > 0 or failures > 0:
            return HealthReport.degraded(
                f"{dropped} events dropped, {failures} handler failures since the last check",
                details,
            )
        return HealthReport.healthy(details=details)


@attrs.define(eq=False)
class BlockingHealthCheck:
    """Task steps that blocked the Trio loop (from the blocking detector).

    ``DEGRADED`` when any step blocked since the previous check; ``UNHEALTHY`` when at
    least ``unhealthy_after`` did.
    """

    detector: HasBlockedStatistics
    name: str = "loop_blocking"
    required: bool = False
    unhealthy_after: int = 10
    _last_blocked: int = attrs.field(default=0, init=False)

    async def check(self) -> HealthReport:
        """Compare the detector's blocked count with the last check."""
        await trio.lowlevel.checkpoint()
        blocked = self.detector.statistics().blocked
        new = blocked - self._last_blocked
        self._last_blocked = blocked
        details = {"blocked": blocked, "blocked_since_last": new}
        if new >= self.unhealthy_after:
            return HealthReport.unhealthy(
                f"the loop was blocked {new} times since the last check", details
            )
        if new > 0:
            return HealthReport.degraded(
                f"the loop was blocked {new} times since the last check", details
            )
        return HealthReport.healthy(details=details)


@attrs.define(eq=False)
class SupervisorHealthCheck:
    """A supervisor is running (``UNHEALTHY`` when stopping, stopped or failed)."""

    supervisor: SupervisorLike
    name: str = "supervisor"
    required: bool = True

    async def check(self) -> HealthReport:
        """Look at the supervisor's state."""
        await trio.lowlevel.checkpoint()
        state = self.supervisor.state
        if state == "running":
            return HealthReport.healthy(details={"state": state})
        return HealthReport.unhealthy(
            f"supervisor {self.supervisor.name} is {state}", {"state": state}
        )
