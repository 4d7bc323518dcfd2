"""The loops that run on trio-util's ``periodic``: exact start times on virtual time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import attrs
import psutil
import pytest
import trio
import trio.testing

from mister_smith.errors import ResourceError
from mister_smith.resources import FunctionCheck, HealthMonitor
from mister_smith.runtime import _watchdog

pytest.importorskip("nats", reason="the nats extra is not installed")

from mister_smith.distributed import NatsUnavailable, Node
from mister_smith.distributed._placement import Placement


async def test_health_round_that_overruns_is_followed_at_once_without_a_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[float] = []
    delays = [25.0, 1.0, 1.0, 1.0]

    async def slow_then_quick() -> bool:
        started.append(trio.current_time())
        await trio.sleep(delays[len(started) - 1])
        return True

    check = FunctionCheck("db", slow_then_quick, timeout=60)
    monitor = HealthMonitor([check], interval=10, timeout=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        await trio.sleep(50)  # the round at 45 s ends at 46 s; the next is due at 55 s
        nursery.cancel_scope.cancel()
    # The 25 s round missed the rounds due at 10 and 20: the next starts when it ends,
    # and the schedule carries on from there (not three rounds back to back).
    assert started == [0.0, 25.0, 35.0, 45.0]
    assert monitor.statistics().rounds == 4


@attrs.frozen
class _Memory:
    rss: int


@attrs.define
class _ScriptedProcess:
    """Stands in for ``psutil.Process``: answers RSS from a script, noting when."""

    answers: list[int]
    reads: list[float] = attrs.field(factory=list)

    def memory_info(self) -> _Memory:
        self.reads.append(len(self.reads) * 1.0)
        return _Memory(self.answers[len(self.reads) - 1])


async def test_memory_watchdog_reads_every_interval_and_raises_over_the_limit(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = _ScriptedProcess([100, 100, 100, 5000])
    monkeypatch.setattr(psutil, "Process", lambda: process)
    with pytest.raises(ResourceError, match="resident memory 5000 bytes exceeds max_memory 1024"):
        await _watchdog.memory_watchdog(1024)
    # The first read at once, then one every MEMORY_CHECK_INTERVAL.
    assert trio.current_time() == 3 * _watchdog.MEMORY_CHECK_INTERVAL
    assert len(process.reads) == 4


@attrs.define
class _FakeRegistry:
    """Records when refreshes start; each takes ``duration`` seconds; some fail."""

    duration: float
    fail_at: frozenset[int] = frozenset()
    started: list[float] = attrs.field(factory=list)

    async def refresh(self, *, declared: int = 0) -> None:
        self.started.append(trio.current_time())
        await trio.sleep(self.duration)
        if len(self.started) - 1 in self.fail_at:
            raise NatsUnavailable("down", retry_at=0.0)


async def test_registry_refresh_starts_every_third_of_the_ttl_however_long_it_takes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = _FakeRegistry(duration=2.0, fail_at=frozenset({1}))
    node = SimpleNamespace(
        settings=SimpleNamespace(registry_ttl=9.0),
        registry=registry,
        placement=SimpleNamespace(declared={}),
    )
    with trio.move_on_after(10):
        await Node._refresh_registry(cast(Node, node))
    # Start to start (not 0, 5, 10): a slow or failed refresh does not push the next
    # one towards the TTL.
    assert registry.started == [0.0, 3.0, 6.0, 9.0]


class _TimedPlacement(Placement):
    """A placement whose rounds only note when they start and take 2 s."""

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.rounds: list[float] = []

    async def round(self) -> None:
        self.rounds.append(trio.current_time())
        await trio.sleep(2.0)
        if len(self.rounds) == 2:
            raise NatsUnavailable("down", retry_at=0.0)


async def test_placement_rounds_start_a_third_of_the_ttl_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    node = SimpleNamespace(settings=SimpleNamespace(registry_ttl=9.0), cluster="c")
    placement = _TimedPlacement(cast(Node, node))
    with trio.move_on_after(13):
        await placement.run()
    # The first round a period after the start (declare() takes leases at once), then
    # start to start; a round that finds NATS down does not end the loop.
    assert placement.rounds == [3.0, 6.0, 9.0, 12.0]
