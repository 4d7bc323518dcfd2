"""Random workloads against a real ConnectionPool, each in one ``trio.run`` on a MockClock.

Users arrive at random times, hold connections for random durations, fail, get
cancelled, or time out; the backend's connections break, its connects fail or hang.
Throughout, the pool never has more than ``max_size`` connections open, never hands one
connection to two users at once, never hands out a closed one; at the end every
connection it created is closed exactly once.
"""

from __future__ import annotations

import attrs
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mister_smith.errors import PoolExhausted
from mister_smith.resources import PoolClosed, open_pool


@attrs.define(eq=False)
class Conn:
    serial: int
    closed: bool = False
    broken: bool = False


@attrs.frozen
class User:
    arrival: float
    hold: float
    fails: bool
    breaks: bool
    cancel_after: float | None


users = st.builds(
    User,
    arrival=st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
    hold=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    fails=st.booleans(),
    breaks=st.booleans(),
    cancel_after=st.none() | st.sampled_from([0.1, 0.7, 2.5]),
)


@given(
    data=st.data(),
    max_size=st.integers(1, 4),
    min_fraction=st.floats(0, 1),
    acquire_timeout=st.sampled_from([0.5, 2.0, 10.0]),
    max_lifetime=st.sampled_from([None, 1.5, 4.0]),
    max_idle=st.sampled_from([0.5, 3.0, 100.0]),
    connect_delay=st.sampled_from([0.0, 0.3]),
    with_check=st.booleans(),
)
def test_random_workload_keeps_the_pool_sound(
    data: st.DataObject,
    max_size: int,
    min_fraction: float,
    acquire_timeout: float,
    max_lifetime: float | None,
    max_idle: float,
    connect_delay: float,
    with_check: bool,
) -> None:
    workload = data.draw(st.lists(users, min_size=1, max_size=12))
    connect_failures = data.draw(st.sets(st.integers(0, 15), max_size=4))
    min_size = int(min_fraction * max_size)
    made: list[Conn] = []
    closes: list[Conn] = []
    held: set[int] = set()
    attempts = 0
    outcomes: list[str] = []

    async def connect() -> Conn:
        nonlocal attempts
        attempt = attempts
        attempts += 1
        await trio.sleep(connect_delay)
        if attempt in connect_failures and attempt >= min_size:
            raise ConnectionRefusedError
        conn = Conn(len(made))
        made.append(conn)
        assert sum(not c.closed for c in made) <= max_size, "more open than max_size"
        return conn

    async def close(conn: Conn) -> None:
        assert not conn.closed, "closed twice"
        assert conn.serial not in held, "closed while in use"
        await trio.sleep(0)
        conn.closed = True
        closes.append(conn)

    async def ping(conn: Conn) -> bool:
        await trio.sleep(0.01)
        return not conn.broken

    async def main() -> None:
        async with open_pool(
            connect,
            close=close,
            health_check=ping if with_check else None,
            min_size=min_size,
            max_size=max_size,
            acquire_timeout=acquire_timeout,
            max_idle=max_idle,
            max_lifetime=max_lifetime,
        ) as pool:

            async def use(user: User) -> None:
                await trio.sleep(user.arrival)
                deadline = trio.current_time() + (user.cancel_after or 1e9)
                with trio.move_on_at(deadline):
                    try:
                        async with pool.acquire() as conn:
                            assert conn.serial not in held, "handed out twice"
                            assert not conn.closed, "handed out a closed connection"
                            held.add(conn.serial)
                            try:
                                await trio.sleep(user.hold)
                                if user.breaks:
                                    conn.broken = True
                                if user.fails:
                                    raise ValueError("user failed")
                            finally:
                                held.discard(conn.serial)
                    except ValueError:
                        outcomes.append("failed")
                    except PoolExhausted:
                        outcomes.append("timeout")
                    except ConnectionRefusedError:
                        outcomes.append("refused")
                    else:
                        outcomes.append("ok")
                stats = pool.statistics()
                assert stats.size + stats.creating + stats.closing <= max_size

            async with trio.open_nursery() as nursery:
                for user in workload:
                    nursery.start_soon(use, user)
            stats = pool.statistics()
            assert (stats.in_use, stats.waiting) == (0, 0)  # warming may be under way
        stats = pool.statistics()
        assert stats.is_closed
        assert stats.size == 0
        try:
            async with pool.acquire():
                raise AssertionError("acquired from a closed pool")
        except PoolClosed:
            pass

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert all(conn.closed for conn in made), "a connection leaked"
    assert len(closes) == len(made) == len({id(conn) for conn in closes})
    assert not held
