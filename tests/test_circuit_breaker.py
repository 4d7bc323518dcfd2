"""The Trio circuit breaker: closed / open / half-open on the virtual clock, events, stats."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mister_smith.errors import CircuitOpenError, NetworkError
from mister_smith.events import CircuitStateChanged, EventBus
from mister_smith.supervision import BreakerState, BreakerStatistics, CircuitBreaker


class Boom(Exception):
    pass


async def ok(value: int = 1, *, plus: int = 0) -> int:
    await trio.sleep(1)
    return value + plus


async def boom() -> None:
    await trio.sleep(1)
    raise Boom("down")


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (a call, so mypy does not narrow it across awaits)."""
    return breaker.state


def changes(bus: EventBus) -> list[tuple[str, str, float]]:
    return [(e.old_state, e.new_state, e.timestamp) for e in bus.history(CircuitStateChanged)]


async def trip(breaker: CircuitBreaker, failures: int) -> None:
    for _ in range(failures):
        with pytest.raises(Boom):
            await breaker.call(boom)


async def test_closed_breaker_passes_calls_through(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker("svc")
    assert await breaker.call(ok, 2, plus=3) == 5
    assert trio.current_time() == 1.0
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.statistics() == BreakerStatistics(
        state=BreakerState.CLOSED,
        calls=1,
        successes=1,
        failures=0,
        rejected=0,
        consecutive_failures=0,
        opened=0,
    )


async def test_threshold_consecutive_failures_open_it(autojump_clock: trio.abc.Clock) -> None:
    bus = EventBus()
    breaker = CircuitBreaker("svc", failure_threshold=3, reset_timeout=10, events=bus)
    await trip(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.statistics().consecutive_failures == 2
    await trip(breaker, 1)
    assert trio.current_time() == 3.0
    assert state(breaker) is BreakerState.OPEN
    assert breaker.retry_at == 13.0
    assert changes(bus) == [("closed", "open", 3.0)]
    event = bus.history(CircuitStateChanged)[0]
    assert (event.source, event.breaker) == ("svc", "svc")


async def test_a_success_resets_the_consecutive_count(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    await trip(breaker, 1)
    await breaker.call(ok)
    await trip(breaker, 1)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.statistics().failures == 2


async def test_open_breaker_fails_fast_with_retry_at(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker("svc", failure_threshold=1, reset_timeout=10)
    await trip(breaker, 1)
    called = False

    async def never() -> None:
        nonlocal called
        called = True

    await trio.sleep(4)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(never)
    assert info.value.retry_at == 11.0
    assert isinstance(info.value, NetworkError)
    assert "svc" in str(info.value)
    assert not called
    assert trio.current_time() == 5.0  # no waiting
    stats = breaker.statistics()
    assert (stats.rejected, stats.calls, stats.opened) == (1, 1, 1)


async def test_half_open_admits_limited_probes_and_closes_after_successes(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus = EventBus()
    breaker = CircuitBreaker(
        "svc", failure_threshold=1, reset_timeout=10, half_open_max_calls=2, events=bus
    )
    await trip(breaker, 1)  # open at 1
    await trio.sleep_until(11)
    assert state(breaker) is BreakerState.HALF_OPEN
    results: list[int] = []

    async def probe(value: int) -> None:
        results.append(await breaker.call(ok, value))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe, 1)
        nursery.start_soon(probe, 2)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(CircuitOpenError):
            await breaker.call(ok)  # both probe slots taken
    assert sorted(results) == [1, 2]
    assert state(breaker) is BreakerState.CLOSED
    assert changes(bus) == [
        ("closed", "open", 1.0),
        ("open", "half_open", 11.0),
        ("half_open", "closed", 12.0),
    ]
    assert breaker.statistics().rejected == 1


async def test_half_open_failure_reopens(autojump_clock: trio.abc.Clock) -> None:
    bus = EventBus()
    breaker = CircuitBreaker("svc", failure_threshold=1, reset_timeout=5, events=bus)
    await trip(breaker, 1)
    await trio.sleep_until(6)
    await trip(breaker, 1)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.retry_at == 12.0
    assert changes(bus)[-1] == ("half_open", "open", 7.0)
    assert breaker.statistics().opened == 2


async def test_async_with_records_outcomes(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    async with breaker as entered:
        assert entered is breaker
        await trio.sleep(1)
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    stats = breaker.statistics()
    assert (stats.calls, stats.successes, stats.failures) == (2, 1, 1)


async def test_cancellation_is_not_a_failure(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    with trio.move_on_after(0.5):
        await breaker.call(ok)
    assert state(breaker) is BreakerState.CLOSED
    stats = breaker.statistics()
    assert (stats.calls, stats.successes, stats.failures) == (1, 0, 0)


async def test_cancelled_probe_frees_its_slot(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=2, half_open_max_calls=1)
    await trip(breaker, 1)
    await trio.sleep_until(3)
    with trio.move_on_after(0.5):
        await breaker.call(ok)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert await breaker.call(ok, 7) == 7  # the slot was released
    assert state(breaker) is BreakerState.CLOSED


async def test_entering_a_cancelled_scope_raises_cancelled_not_admitted(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreaker()
    with trio.CancelScope() as scope:
        scope.cancel()
        await breaker.call(ok)
    assert breaker.statistics().calls == 0


async def test_exception_groups_count_as_failures(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=1)

    async def fails_in_nursery() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(boom)

    with pytest.RaisesGroup(Boom):
        await breaker.call(fails_in_nursery)
    assert state(breaker) is BreakerState.OPEN


async def test_wait_until_allowed_sleeps_until_retry_at(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=7, half_open_max_calls=1)
    await trip(breaker, 1)
    await breaker.wait_until_allowed()
    assert trio.current_time() == 8.0
    assert state(breaker) is BreakerState.HALF_OPEN
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED


async def test_wait_until_allowed_polls_while_probes_are_busy(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=2, half_open_max_calls=1)
    await trip(breaker, 1)
    await trio.sleep_until(3)
    breaker.acquire_nowait()  # the only probe is taken
    async with trio.open_nursery() as nursery:
        nursery.start_soon(breaker.wait_until_allowed)
        await trio.sleep(2.5)
        breaker.release()
    # Admitted at the first poll (1 s steps) after the slot was freed at 5.5.
    assert trio.current_time() == 6.0


async def test_record_failure_without_admission(autojump_clock: trio.abc.Clock) -> None:
    """Supervisors record crashes of supervised runs directly."""
    breaker = CircuitBreaker(failure_threshold=2)
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.statistics().failures == 2


async def test_zero_reset_timeout_still_reports_the_opening(
    autojump_clock: trio.abc.Clock,
) -> None:
    bus = EventBus()
    breaker = CircuitBreaker("svc", failure_threshold=1, reset_timeout=0, events=bus)
    await trip(breaker, 1)
    assert breaker.statistics().opened == 1
    assert changes(bus)[0] == ("closed", "open", 1.0)


async def test_async_with_breaker_is_a_checkpoint(autojump_clock: trio.abc.Clock) -> None:
    breaker = CircuitBreaker()
    with trio.testing.assert_checkpoints():
        async with breaker:
            pass


async def test_cancelled_wait_until_allowed_does_not_leak_a_probe(
    autojump_clock: trio.abc.Clock,
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=2, half_open_max_calls=1)
    breaker.record_failure()
    await trio.sleep(2)
    with trio.CancelScope() as scope:
        scope.cancel()
        await breaker.wait_until_allowed()
    assert await breaker.call(ok, 5) == 5
