"""The node's NATS connection as a health check (readiness depends on it)."""

from __future__ import annotations

from ..resources import HealthReport, HealthStatus
from ._bridge import ConnectionState, NatsBridge


class NatsHealthCheck:
    """Healthy while connected; degraded when inbound messages were dropped since the
    previous check (a served actor cannot keep up); unhealthy while the connection is
    down (remote calls fail fast meanwhile)."""

    required = True

    def __init__(self, bridge: NatsBridge, node: str) -> None:
        self.bridge = bridge
        self.node = node
        self._dropped = 0

    @property
    def name(self) -> str:
        """``nats:<node>``."""
        return f"nats:{self.node}"

    async def check(self) -> HealthReport:
        """Report the connection's state and the bridge's counters."""
        stats = self.bridge.statistics()
        details = {
            "state": stats.state.value,
            "server": self.bridge.server,
            "outbound_bytes": stats.outbound_bytes,
            "dropped": stats.dropped,
            "disconnects": stats.disconnects,
            "publish_failures": stats.publish_failures,
        }
        dropped, self._dropped = stats.dropped - self._dropped, stats.dropped
        if stats.state is not ConnectionState.CONNECTED:
            return HealthReport(
                HealthStatus.UNHEALTHY, f"the NATS connection is {stats.state.value}", details
            )
        if dropped > 0:
            return HealthReport(
                HealthStatus.DEGRADED, f"{dropped} inbound messages dropped (slow actors)", details
            )
        return HealthReport(HealthStatus.HEALTHY, "", details)
