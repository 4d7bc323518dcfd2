"""The loops that run on trio-util's ``periodic``: exact start times on virtual time."""

from __future__ import annotations

import trio
import trio.testing

from mister_smith.resources import FunctionCheck, HealthMonitor


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
        await trio.sleep(46)
        nursery.cancel_scope.cancel()
    # The 25 s round missed the rounds due at 10 and 20: the next starts when it ends,
    # and the schedule carries on from there (not three rounds back to back).
    assert started == [0.0, 25.0, 35.0, 45.0]
    assert monitor.statistics().rounds == 4
