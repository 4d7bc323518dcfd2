"""Issue 12, item 6: rendering ``/metrics`` does not block the Trio loop.

The review's case: a scrape of a large registry rendered on the loop held it for
724 ms. The same registry is rendered here twice while the runtime's
:class:`BlockingDetector` watches every task step: once on the loop (the old way, as
a baseline), once through the endpoint (in a worker thread). Real time: threads and
the GIL are what is measured, so this test takes about a second.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import MutableMapping
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, generate_latest

from mister_smith.monitoring import METRICS_PATH, MonitoringApp
from mister_smith.resources import HealthMonitor
from mister_smith.tools import BlockingDetector

SERIES = 12_000
THRESHOLD = 0.1  # the runtime's default blocking threshold (seconds)


def large_registry(series: int = SERIES) -> CollectorRegistry:
    """A registry with many series, e.g. many live actors and registered tools."""
    registry = CollectorRegistry()
    calls = Counter("calls", "Calls, by name.", ["name", "outcome"], registry=registry)
    for index in range(series):
        calls.labels(name=f"actor-{index:05d}", outcome="ok").inc()
    return registry


async def scrape(app: MonitoringApp) -> tuple[int, bytes]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": METRICS_PATH, "headers": []}
    await app(scope, receive, send)
    return int(sent[0]["status"]), bytes(sent[1]["body"])


async def test_a_large_scrape_does_not_block_the_loop() -> None:
    registry = large_registry()
    app = MonitoringApp(health=HealthMonitor(), registry=registry)

    # Baseline: rendered on the loop, as before the fix, it is one long step.
    baseline = BlockingDetector(threshold=THRESHOLD)
    trio.lowlevel.add_instrument(baseline)
    try:
        await trio.lowlevel.checkpoint()  # the detector times steps from the next one
        on_loop = generate_latest(registry)
        await trio.lowlevel.checkpoint()
    finally:
        trio.lowlevel.remove_instrument(baseline)
    render_cost = baseline.statistics().worst
    assert render_cost > THRESHOLD, "the registry is too small to show anything"

    # Through the endpoint, with the loop busy meanwhile: every step stays short.
    detector = BlockingDetector(threshold=THRESHOLD)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await trio.sleep(0.005)

    trio.lowlevel.add_instrument(detector)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            status, body = await scrape(app)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(detector)
    assert status == 200
    assert body.count(b"\ncalls_total{") == SERIES
    assert len(body) == len(on_loop)
    statistics = detector.statistics()
    assert statistics.blocked == 0, detector.offenders  # no LoopBlocked at 0.1 s
    assert statistics.worst < render_cost / 2
    assert len(ticks) > 5  # the loop kept running other tasks meanwhile
    longest_gap = max(later - earlier for earlier, later in itertools.pairwise(ticks))
    assert longest_gap < render_cost  # never held for the whole render (load adds noise)


async def test_a_body_over_the_size_bound_is_refused_not_truncated() -> None:
    app = MonitoringApp(
        health=HealthMonitor(), registry=large_registry(1_000), max_metrics_bytes=16 * 1024
    )
    status, body = await scrape(app)
    assert status == 503
    assert b"exceeds the limit" in body
