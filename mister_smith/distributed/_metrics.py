"""The bridge's counters in the runtime's Prometheus registry (read at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..monitoring import NAMESPACE
from ._bridge import ConnectionState, NatsBridge


class NatsMetricsCollector(Collector):
    """Exports a node's bridge statistics: connection state, reconnects, traffic,
    drops and refusals, labelled by node."""

    def __init__(self, bridge: NatsBridge, node: str) -> None:
        self.bridge = bridge
        self.node = node

    def collect(self) -> Iterator[Metric]:
        """One sample per figure, read from ``bridge.statistics()`` now."""
        stats = self.bridge.statistics()
        up = GaugeMetricFamily(
            f"{NAMESPACE}_nats_connected", "1 while the NATS connection is up.", labels=["node"]
        )
        up.add_metric([self.node], 1.0 if stats.state is ConnectionState.CONNECTED else 0.0)
        yield up
        outbound = GaugeMetricFamily(
            f"{NAMESPACE}_nats_outbound_bytes",
            "Bytes of publishes waiting for the NATS client.",
            labels=["node"],
        )
        outbound.add_metric([self.node], float(stats.outbound_bytes))
        yield outbound
        for name, value, text in (
            ("nats_connects", stats.connects, "Connections made (the first and reconnects)."),
            ("nats_disconnects", stats.disconnects, "Connections lost."),
            ("nats_published", stats.published, "Publishes handed to the NATS client."),
            ("nats_publish_failures", stats.publish_failures, "Publishes lost by the client."),
            ("nats_refused_full", stats.refused_full, "Publishes refused at the outbound bound."),
            ("nats_received", stats.received, "Messages delivered to subscriptions."),
            ("nats_dropped", stats.dropped, "Messages dropped at a full subscription."),
        ):
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", text, labels=["node"])
            family.add_metric([self.node], float(value))
            yield family
