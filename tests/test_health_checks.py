"""The built-in health checks: pools, mailboxes, the event bus, blocking, supervisors."""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing

from mister_smith.errors import PoolExhausted
from mister_smith.events import Event, EventBus, LoopBlocked
from mister_smith.resources import (
    BlockingHealthCheck,
    EventBusHealthCheck,
    HealthStatus,
    MailboxHealthCheck,
    PoolHealthCheck,
    SupervisorHealthCheck,
    open_pool,
)
from mister_smith.supervision import open_supervisor


async def make_conn() -> object:
    await trio.sleep(0)
    return object()


async def test_pool_check_sees_saturation_and_exhaustion(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pool(make_conn, min_size=0, max_size=2, acquire_timeout=1.0) as pool:
        check = PoolHealthCheck(pool, name="db")
        assert (await check.check()).status is HealthStatus.HEALTHY
        async with pool.acquire():
            assert (await check.check()).status is HealthStatus.HEALTHY  # 1 of 2: 50 %
            async with pool.acquire():
                report = await check.check()
                assert report.status is HealthStatus.DEGRADED
                assert report.reason == "saturated: 2 of 2 in use"
                async with trio.open_nursery() as nursery:

                    async def wait_in_line() -> None:
                        with pytest.raises(PoolExhausted):
                            async with pool.acquire():
                                pass

                    nursery.start_soon(wait_in_line)
                    await trio.testing.wait_all_tasks_blocked()
                    report = await check.check()
                    assert report.status is HealthStatus.DEGRADED
                    assert report.reason == "1 acquirers waiting"
                report = await check.check()
                assert report.status is HealthStatus.UNHEALTHY
                assert report.reason.startswith("exhausted: 1 acquisitions timed out")
                assert report.details["timeouts"] == 1
                # Only new timeouts count: back to saturated at the next check.
                assert (await check.check()).status is HealthStatus.DEGRADED
    report = await check.check()
    assert (report.status, report.reason) == (HealthStatus.UNHEALTHY, "pool is closed")


@attrs.frozen
class QueueStats:
    queued: int
    capacity: int | float


@attrs.define
class FakeMailbox:
    queued: int
    capacity: int | float = 10

    def statistics(self) -> QueueStats:
        return QueueStats(self.queued, self.capacity)


async def test_mailbox_check_judges_the_fullest() -> None:
    boxes = {"a": FakeMailbox(1), "b": FakeMailbox(5), "c": FakeMailbox(0, math.inf)}
    check = MailboxHealthCheck(lambda: boxes)
    report = await check.check()
    assert report.status is HealthStatus.HEALTHY
    assert report.details["fullest"] == {"b": 0.5, "a": 0.1, "c": 0.0}
    boxes["a"].queued = 8
    report = await check.check()
    assert (report.status, report.reason) == (HealthStatus.DEGRADED, "mailbox of a is 80% full")
    boxes["b"].queued = 10
    report = await check.check()
    assert report.status is HealthStatus.UNHEALTHY
    assert "fullest: b" in report.reason
    assert (await MailboxHealthCheck({}).check()).status is HealthStatus.HEALTHY


async def test_mailbox_check_reads_event_streams_too() -> None:
    bus = EventBus()
    async with bus.subscribe(Event, buffer=4) as stream:
        check = MailboxHealthCheck({"stream": stream}, degraded_at=0.5)
        for _ in range(2):
            bus.emit(LoopBlocked(task="t", duration=1.0))
        assert (await check.check()).status is HealthStatus.DEGRADED


def test_mailbox_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        MailboxHealthCheck({}, degraded_at=0.9, unhealthy_at=0.5)
    with pytest.raises(ValueError):
        MailboxHealthCheck({}, degraded_at=0.0)
    with pytest.raises(ValueError):
        PoolHealthCheck(FakePool(), saturation=1.5)


@attrs.frozen
class PoolStats:
    in_use: int = 0
    max_size: int = 1
    waiting: int = 0
    timeouts: int = 0
    is_closed: bool = False


class FakePool:
    def statistics(self) -> PoolStats:
        return PoolStats()


async def test_event_bus_check_sees_drops_rising() -> None:
    bus = EventBus()
    check = EventBusHealthCheck(bus, unhealthy_drops=5)
    assert (await check.check()).status is HealthStatus.HEALTHY
    async with bus.subscribe(Event, buffer=1):
        for _ in range(3):
            bus.emit(LoopBlocked(task="t", duration=1.0))  # 2 dropped
        report = await check.check()
        assert report.status is HealthStatus.DEGRADED
        assert report.details["dropped_since_last"] == 2
        assert (await check.check()).status is HealthStatus.HEALTHY  # nothing new
        for _ in range(6):
            bus.emit(LoopBlocked(task="t", duration=1.0))
        assert (await check.check()).status is HealthStatus.UNHEALTHY


async def test_event_bus_check_sees_handler_failures() -> None:
    bus = EventBus()

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    bus.add_handler(Event, broken)
    check = EventBusHealthCheck(bus)
    bus.emit(LoopBlocked(task="t", duration=1.0))
    report = await check.check()
    assert report.status is HealthStatus.DEGRADED
    assert report.details["handler_failures_since_last"] == 1


@attrs.frozen
class BlockedStats:
    blocked: int


@attrs.define
class FakeDetector:
    blocked: int = 0

    def statistics(self) -> BlockedStats:
        return BlockedStats(self.blocked)


async def test_blocking_check_sees_blocked_steps_rising() -> None:
    detector = FakeDetector()
    check = BlockingHealthCheck(detector, unhealthy_after=3)
    assert (await check.check()).status is HealthStatus.HEALTHY
    detector.blocked = 1
    assert (await check.check()).status is HealthStatus.DEGRADED
    detector.blocked = 4
    report = await check.check()
    assert report.status is HealthStatus.UNHEALTHY
    assert report.details == {"blocked": 4, "blocked_since_last": 3}
    assert (await check.check()).status is HealthStatus.HEALTHY


async def test_supervisor_check(autojump_clock: trio.testing.MockClock) -> None:
    async with open_supervisor("app", keep_alive=True) as supervisor:
        check = SupervisorHealthCheck(supervisor)
        assert (await check.check()).status is HealthStatus.HEALTHY
        await supervisor.stop()
    report = await check.check()
    assert report.status is HealthStatus.UNHEALTHY
    assert report.reason == "supervisor app is stopped"
