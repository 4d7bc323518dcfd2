"""The protocols fit the real parts: actors, the blocking detector, pools, the monitor.

Health checks and metrics name only the counters they read; these tests plug in the
real objects (and mypy checks the structural fit).
"""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing

from mister_smith.actors import Actor, ActorContext, ActorSystem, open_actor_system
from mister_smith.events import EventBus
from mister_smith.monitoring import FrameworkMetrics, HealthSource
from mister_smith.resources import (
    BlockingHealthCheck,
    HasQueueStatistics,
    HealthMonitor,
    HealthStatus,
    MailboxHealthCheck,
    PoolHealthCheck,
    open_pool,
)
from mister_smith.tools import BlockingDetector


class Sleeper(Actor):
    """Handles each message slowly, so its mailbox fills up."""

    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        await trio.sleep(10)
        return message


def mailboxes(system: ActorSystem) -> dict[str, HasQueueStatistics]:
    return {ref.name: ref for ref in system.actors()}


async def test_actor_mailboxes_feed_health_and_metrics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    metrics = FrameworkMetrics()
    metrics.attach(bus)
    async with open_actor_system(events=bus, mailbox_capacity=5) as system:
        ref = await system.spawn(Sleeper, name="sleeper", role="test")
        metrics.add_actors(system.actors)
        check = MailboxHealthCheck(lambda: mailboxes(system), degraded_at=0.6)
        assert (await check.check()).status is HealthStatus.HEALTHY
        for index in range(5):
            ref.tell_nowait(index)
        await trio.testing.wait_all_tasks_blocked()
        report = await check.check()
        assert report.status is HealthStatus.DEGRADED  # 4 of 5 queued, one in hand
        samples = metrics.registry
        assert samples.get_sample_value("mister_smith_mailbox_depth", {"actor": "sleeper"}) == 4.0
        assert samples.get_sample_value("mister_smith_mailbox_capacity", {"actor": "sleeper"}) == 5
        assert samples.get_sample_value("mister_smith_actors") == 1.0
        assert samples.get_sample_value("mister_smith_actors_spawned_total", {"role": "test"}) == 1


async def test_blocking_detector_feeds_health_and_metrics() -> None:
    bus = EventBus()
    metrics = FrameworkMetrics()
    metrics.attach(bus)
    detector = BlockingDetector(bus, threshold=0.005)
    metrics.add_blocking_detector(detector)
    check = BlockingHealthCheck(detector, unhealthy_after=100)
    trio.lowlevel.add_instrument(detector)
    try:
        await trio.sleep(0)
        await check.check()  # baseline, whatever the test runner's own steps did
        time.sleep(0.05)  # block the loop on purpose
        await trio.sleep(0)
    finally:
        trio.lowlevel.remove_instrument(detector)
    assert (await check.check()).status is HealthStatus.DEGRADED
    assert (metrics.registry.get_sample_value("mister_smith_loop_blocked_total") or 0) >= 1
    assert (metrics.registry.get_sample_value("mister_smith_loop_blocked_steps_total") or 0) >= 1


async def test_monitor_is_a_health_source_and_pools_fit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def connect() -> object:
        await trio.sleep(0)
        return object()

    async with open_pool(connect, name="db", min_size=1) as pool:
        monitor = HealthMonitor([PoolHealthCheck(pool, name="db")])
        source: HealthSource = monitor
        metrics = FrameworkMetrics()
        metrics.add_pool(pool)
        metrics.add_health(source)
        await monitor.check_now()
        assert source.readiness().ok
        assert metrics.registry.get_sample_value("mister_smith_ready") == 1.0
        assert (
            metrics.registry.get_sample_value(
                "mister_smith_pool_connections", {"pool": "db", "state": "idle"}
            )
            == 1.0
        )
