"""ConnectionPool behaviours on virtual time (pytest-trio's ``autojump_clock``)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

from mister_smith.config import PoolSettings
from mister_smith.errors import PoolExhausted
from mister_smith.events import EventBus, ResourcePoolExhausted
from mister_smith.resources import ConnectionPool, PoolClosed, open_pool


@attrs.define(eq=False)
class Conn:
    """A fake connection: a serial number and whether it was closed."""

    serial: int
    created_at: float
    closed: bool = False
    broken: bool = False


@attrs.define
class Backend:
    """Makes and closes fake connections, recording everything."""

    connect_delay: float = 0.0
    close_delay: float = 0.0
    fail_next: int = 0
    made: list[Conn] = attrs.field(factory=list)
    closed: list[Conn] = attrs.field(factory=list)

    async def connect(self) -> Conn:
        await trio.sleep(self.connect_delay)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionRefusedError("backend down")
        conn = Conn(len(self.made), trio.current_time())
        self.made.append(conn)
        return conn

    async def close(self, conn: Conn) -> None:
        assert not conn.closed, "closed twice"
        await trio.sleep(self.close_delay)
        conn.closed = True
        self.closed.append(conn)

    async def ping(self, conn: Conn) -> bool:
        await trio.sleep(0)
        return not conn.broken

    def open_connections(self) -> list[Conn]:
        return [conn for conn in self.made if not conn.closed]


def is_closed(conn: Conn) -> bool:
    """Read the flag through a call, so mypy does not narrow it between awaits."""
    return conn.closed


async def break_and_fail(pool: ConnectionPool[Conn], used: list[Conn]) -> None:
    """Borrow a connection, break it, and fail as a user would on a reset connection."""
    async with pool.acquire() as conn:
        used.append(conn)
        conn.broken = True
        raise OSError("connection reset")


@asynccontextmanager
async def pool_of(backend: Backend, **options: object) -> AsyncIterator[ConnectionPool[Conn]]:
    options.setdefault("min_size", 0)
    options.setdefault("max_size", 2)
    async with open_pool(
        backend.connect,
        close=backend.close,
        **options,  # type: ignore[arg-type]
    ) as pool:
        yield pool


async def test_acquire_creates_then_reuses(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    async with pool_of(backend) as pool:
        async with pool.acquire() as first:
            assert first.serial == 0
        async with pool.acquire() as again:
            assert again is first
        stats = pool.statistics()
        assert (stats.created, stats.acquired, stats.idle, stats.in_use) == (1, 2, 1, 0)
    assert backend.closed == [first]


async def test_min_size_is_warmed_before_the_body(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend(connect_delay=1.0)
    async with pool_of(backend, min_size=3, max_size=5) as pool:
        # Created concurrently: one connect delay, not three.
        assert trio.current_time() == 1.0
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.created) == (3, 3, 3)
    assert len(backend.closed) == 3


async def test_settings_give_defaults_and_keywords_override(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    settings = PoolSettings(min_size=1, max_size=3, acquire_timeout=2.0, max_idle=7.0)
    async with open_pool(backend.connect, settings=settings, max_size=4) as pool:
        assert (pool.min_size, pool.max_size, pool.acquire_timeout) == (1, 4, 2.0)
    async with open_pool(backend.connect, min_size=0) as pool:
        defaults = PoolSettings()
        assert (pool.max_size, pool.acquire_timeout) == (defaults.max_size, 10.0)


async def test_exhaustion_waits_acquire_timeout_then_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    bus = EventBus()
    options = {"max_size": 1, "acquire_timeout": 3.0, "events": bus, "name": "db"}
    async with pool_of(backend, **options) as pool, pool.acquire():
        started = trio.current_time()
        with pytest.raises(PoolExhausted, match="db"):
            async with pool.acquire():
                pytest.fail("must not get a connection")
        assert trio.current_time() - started == 3.0
        stats = pool.statistics()
        assert (stats.timeouts, stats.waiting, stats.in_use) == (1, 0, 1)
    [event] = bus.history(ResourcePoolExhausted)
    assert (event.pool, event.waited) == ("db", 3.0)


async def test_waiters_are_served_in_order(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    order: list[int] = []
    async with pool_of(backend, max_size=1) as pool:

        async def user(index: int) -> None:
            await trio.sleep(index * 0.1)  # arrive in index order
            async with pool.acquire():
                order.append(index)
                await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            for index in range(4):
                nursery.start_soon(user, index)
    assert order == [0, 1, 2, 3]
    assert len(backend.made) == 1


async def test_per_call_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with pool_of(Backend(), max_size=1, acquire_timeout=60.0) as pool, pool.acquire():
        with pytest.raises(PoolExhausted):
            async with pool.acquire(timeout=0.5):
                pass
        assert trio.current_time() == 0.5


async def test_failed_user_connection_is_checked_and_reused_when_healthy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, health_check=backend.ping) as pool:
        with pytest.raises(ValueError):
            async with pool.acquire() as conn:
                raise ValueError("user bug, connection fine")
        async with pool.acquire() as again:
            assert again is conn
        assert pool.statistics().discarded == 0


async def test_failed_user_connection_is_discarded_when_broken(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, health_check=backend.ping) as pool:
        used: list[Conn] = []
        with pytest.raises(OSError):
            await break_and_fail(pool, used)
        await trio.testing.wait_all_tasks_blocked()
        [conn] = used
        assert conn.closed
        async with pool.acquire() as fresh:
            assert fresh is not conn
        stats = pool.statistics()
        assert (stats.discarded, stats.created) == (1, 2)


async def test_failed_user_connection_is_discarded_without_health_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend) as pool:
        with pytest.raises(KeyError):
            async with pool.acquire() as conn:
                raise KeyError("whatever")
        await trio.testing.wait_all_tasks_blocked()
        assert conn.closed
        assert pool.statistics().discarded == 1


async def test_health_check_that_hangs_or_raises_discards(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()

    async def hangs(conn: Conn) -> bool:
        await trio.sleep_forever()

    async def raises(conn: Conn) -> bool:
        raise RuntimeError("ping failed")

    for check in (hangs, raises):
        async with pool_of(backend, health_check=check, check_timeout=2.0) as pool:
            started = trio.current_time()
            with pytest.raises(ValueError):
                async with pool.acquire():
                    raise ValueError
            assert pool.statistics().discarded == 1
            assert trio.current_time() - started == (2.0 if check is hangs else 0.0)


async def test_cancelled_user_connection_is_checked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, health_check=backend.ping) as pool:
        with trio.move_on_after(1):
            async with pool.acquire() as conn:
                await trio.sleep_forever()
        async with pool.acquire() as again:
            assert again is conn  # cancelled mid-use, checked, still healthy


async def test_cancel_while_waiting_leaks_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    got: list[int] = []
    async with pool_of(backend, max_size=1) as pool:

        async def impatient() -> None:
            with trio.move_on_after(1):
                async with pool.acquire():
                    pytest.fail("should have been cancelled while waiting")

        async def patient() -> None:
            async with pool.acquire() as conn:
                got.append(conn.serial)

        async with trio.open_nursery() as nursery, pool.acquire():
            nursery.start_soon(impatient)
            await trio.sleep(0.5)
            nursery.start_soon(patient)
            await trio.sleep(2)  # impatient gave up meanwhile
            assert pool.statistics().waiting == 1
        assert got == [0]
        stats = pool.statistics()
        assert (stats.waiting, stats.in_use, stats.size) == (0, 0, 1)


async def test_cancel_just_after_being_served_passes_the_connection_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, max_size=1) as pool:
        cancel_scope = trio.CancelScope()
        got: list[Conn] = []

        async def first_waiter() -> None:
            with cancel_scope:
                async with pool.acquire() as conn:
                    got.append(conn)

        async def second_waiter() -> None:
            async with pool.acquire() as conn:
                got.append(conn)

        async with trio.open_nursery() as nursery:
            lease = pool.acquire()
            held = await lease.__aenter__()
            nursery.start_soon(first_waiter)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(second_waiter)
            await trio.testing.wait_all_tasks_blocked()
            # Cancel the first waiter, then serve it before it runs again: what it
            # was given must go to the second waiter.
            cancel_scope.cancel()
            await lease.__aexit__(None, None, None)
        assert got == [held]
        assert pool.statistics().in_use == 0


async def test_cancel_while_creating_frees_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(connect_delay=10.0)
    async with pool_of(backend, max_size=1, acquire_timeout=100.0) as pool:
        with trio.move_on_after(1):
            async with pool.acquire():
                pytest.fail("creation should have been cancelled")
        stats = pool.statistics()
        assert (stats.creating, stats.size, stats.creation_failures) == (0, 0, 1)
        async with pool.acquire() as conn:
            assert conn.serial == 0
        assert trio.current_time() == 11.0


async def test_slow_creation_counts_against_acquire_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(connect_delay=10.0)
    async with pool_of(backend, acquire_timeout=2.0) as pool:
        with pytest.raises(PoolExhausted, match="creating"):
            async with pool.acquire():
                pass
        assert trio.current_time() == 2.0
        assert pool.statistics().creating == 0


async def test_factory_error_propagates_and_frees_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(fail_next=1)
    async with pool_of(backend, max_size=1) as pool:
        with pytest.raises(ConnectionRefusedError):
            async with pool.acquire():
                pass
        async with pool.acquire() as conn:
            assert conn.serial == 0


async def test_factory_error_while_warming_fails_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(fail_next=1)
    with pytest.raises(ConnectionRefusedError):
        async with pool_of(backend, min_size=3, max_size=3):
            pytest.fail("the body must not run")
    assert len(backend.made) == 2
    assert backend.open_connections() == []


async def test_idle_connections_above_min_size_close_after_max_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, min_size=1, max_size=4, max_idle=10.0) as pool:
        async with pool.acquire(), pool.acquire(), pool.acquire():
            await trio.sleep(5)
        assert pool.statistics().idle == 3
        await trio.sleep(9.999)
        assert pool.statistics().idle == 3
        await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.idle, stats.idle_closed) == (1, 2)
        assert len(backend.closed) == 2
        await trio.sleep(1000)
        assert pool.statistics().idle == 1  # min_size is kept


async def test_expired_connections_are_replaced(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    async with pool_of(backend, min_size=1, max_size=2, max_lifetime=60.0) as pool:
        [first] = backend.made
        await trio.sleep(60)
        await trio.testing.wait_all_tasks_blocked()
        assert first.closed
        # The housekeeper re-warmed min_size with a new connection.
        stats = pool.statistics()
        assert (stats.idle, stats.expired, stats.created) == (1, 1, 2)
        async with pool.acquire() as conn:
            assert conn.serial == 1


async def test_connection_expiring_in_use_is_closed_on_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, max_lifetime=5.0) as pool:
        async with pool.acquire() as conn:
            await trio.sleep(6)
            assert not conn.closed
        await trio.testing.wait_all_tasks_blocked()
        assert is_closed(conn)
        assert pool.statistics().expired == 1


async def test_rewarming_backs_off_after_factory_errors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with pool_of(backend, min_size=1, max_size=1, max_lifetime=10.0) as pool:
        backend.fail_next = 3
        await trio.sleep(10)  # the warm connection expires; re-warming fails 3 times
        await trio.sleep(0.5 + 1.0 + 2.0 - 0.001)
        assert pool.statistics().size == 0
        await trio.sleep(0.002)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().size == 1
        assert pool.statistics().creation_failures == 3


async def test_closing_closes_idle_now_and_in_use_on_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    async with trio.open_nursery() as outer:
        returned = trio.Event()
        holding = trio.Event()

        async def holder(pool: ConnectionPool[Conn]) -> None:
            async with pool.acquire():
                holding.set()
                await returned.wait()

        async with pool_of(backend, max_size=3) as pool:
            async with pool.acquire(), pool.acquire():
                pass  # two idle connections; the holder takes the latest returned
            outer.start_soon(holder, pool)
            await holding.wait()
        [in_use, idle] = backend.made  # the first one returned last, so reused first
        assert idle.closed
        assert not in_use.closed
        assert pool.closed
        with pytest.raises(PoolClosed):
            async with pool.acquire():
                pass
        returned.set()
    assert is_closed(in_use)
    stats = pool.statistics()
    assert (stats.size, stats.closed, stats.created) == (0, 2, 2)


async def test_closing_wakes_waiters_with_pool_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend()
    errors: list[BaseException] = []
    async with trio.open_nursery() as outer:

        async def waiter(pool: ConnectionPool[Conn]) -> None:
            try:
                async with pool.acquire():
                    pass
            except PoolClosed as exc:
                errors.append(exc)

        async with pool_of(backend, max_size=1) as pool, pool.acquire():
            outer.start_soon(waiter, pool)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
    assert len(errors) == 1


async def test_close_that_hangs_is_abandoned(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend(close_delay=math.inf)
    async with pool_of(backend, min_size=1, close_timeout=3.0):
        pass
    assert trio.current_time() == 3.0
    assert backend.closed == []


async def test_body_error_comes_out_unwrapped(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    with pytest.raises(ZeroDivisionError):
        async with pool_of(backend, min_size=1):
            1 / 0  # noqa: B018
    assert backend.open_connections() == []


async def test_acquire_always_checkpoints(autojump_clock: trio.testing.MockClock) -> None:
    async with pool_of(Backend(), min_size=1) as pool:
        with trio.testing.assert_checkpoints():
            async with pool.acquire():
                pass


async def test_acquire_in_a_cancelled_scope_takes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with pool_of(Backend(), min_size=1) as pool:
        with trio.CancelScope() as scope:
            scope.cancel()
            async with pool.acquire():
                pytest.fail("cancelled before acquiring")
        stats = pool.statistics()
        assert (stats.idle, stats.in_use, stats.acquired) == (1, 0, 0)


async def test_lease_cannot_be_entered_twice(autojump_clock: trio.testing.MockClock) -> None:
    async with pool_of(Backend()) as pool:
        lease = pool.acquire()
        async with lease:
            with pytest.raises(RuntimeError):
                await lease.__aenter__()


@pytest.mark.parametrize(
    "options",
    [{"acquire_timeout": 0.0}, {"close_timeout": 0.0}, {"check_timeout": -1.0}],
)
async def test_invalid_options(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        async with pool_of(Backend(), **options):
            pass


async def test_repr_and_statistics_are_frozen(autojump_clock: trio.testing.MockClock) -> None:
    async with pool_of(Backend(), name="cache") as pool:
        assert "cache" in repr(pool)
        assert "open" in repr(pool)
        stats = pool.statistics()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            stats.size = 3  # type: ignore[misc]
    assert "closed" in repr(pool)


async def test_cancelling_the_pool_body_closes_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(close_delay=0.5)
    with trio.move_on_after(1):
        async with pool_of(backend, min_size=2, max_size=3) as pool, pool.acquire():
            await trio.sleep_forever()
    # Closing is shielded (bounded by close_timeout), so the cancellation waits for it.
    assert len(backend.made) == 2
    assert backend.open_connections() == []
    assert trio.current_time() == 1.5
    assert pool.statistics().closed == 2


async def test_connection_created_after_close_is_closed_not_handed_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(connect_delay=5.0)
    outcome: list[BaseException] = []
    async with trio.open_nursery() as outer:

        async def late_acquirer(pool: ConnectionPool[Conn]) -> None:
            try:
                async with pool.acquire():
                    pytest.fail("the pool closed while this connection was being created")
            except PoolClosed as exc:
                outcome.append(exc)

        async with pool_of(backend, acquire_timeout=60.0) as pool:
            outer.start_soon(late_acquirer, pool)
            await trio.sleep(1)
            assert pool.statistics().creating == 1
    assert len(outcome) == 1
    [conn] = backend.made
    assert conn.closed
    assert pool.statistics().size == 0


async def test_close_errors_are_logged_not_raised(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def connect() -> Conn:
        await trio.sleep(0)
        return Conn(0, 0.0)

    async def broken_close(conn: Conn) -> None:
        raise OSError("socket already gone")

    async with open_pool(connect, close=broken_close, min_size=2):
        pass
    assert caplog.text.count("closing a connection raised") == 2


async def test_waiting_without_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with pool_of(Backend(), max_size=1, acquire_timeout=None) as pool:
        assert pool.acquire_timeout == math.inf
        async with trio.open_nursery() as nursery:

            async def hold() -> None:
                async with pool.acquire():
                    await trio.sleep(3600)

            nursery.start_soon(hold)
            await trio.testing.wait_all_tasks_blocked()
            async with pool.acquire():
                assert trio.current_time() == 3600
