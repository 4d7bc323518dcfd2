"""ResourceManager: named pools and resources as supervised children."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

from mister_smith.errors import PoolExhausted, ResourceError
from mister_smith.events import ChildStarted, EventBus, SupervisionDecision
from mister_smith.resources import (
    ConnectionPool,
    HealthMonitor,
    HealthStatus,
    PoolClosed,
    UnknownResource,
    open_resource_manager,
)
from mister_smith.supervision import open_supervisor


@attrs.define
class Backend:
    made: int = 0
    closed: int = 0
    fail: bool = False

    async def connect(self) -> int:
        await trio.sleep(0.1)
        if self.fail:
            raise ConnectionRefusedError("backend down")
        self.made += 1
        return self.made

    async def close(self, conn: int) -> None:
        await trio.sleep(0)
        self.closed += 1


async def test_add_pool_and_look_it_up(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    async with open_resource_manager() as manager:
        pool = await manager.add_pool(
            "db", backend.connect, close=backend.close, min_size=2, max_size=4
        )
        assert isinstance(pool, ConnectionPool)
        assert manager.pool("db") is pool
        assert "db" in manager
        assert manager.names() == ["db"]
        async with pool.acquire() as conn:
            assert conn in (1, 2)
        assert manager.statistics()["db"].idle == 2
    assert pool.closed
    assert backend.closed == 2


async def test_unknown_and_duplicate_names(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    async with open_resource_manager() as manager:
        with pytest.raises(UnknownResource, match="nope") as caught:
            manager.pool("nope")
        assert isinstance(caught.value, ResourceError)
        assert isinstance(caught.value, LookupError)
        await manager.add_pool("db", backend.connect, min_size=0)
        with pytest.raises(ValueError):
            await manager.add_pool("db", backend.connect)
        with pytest.raises(UnknownResource):
            await manager.remove("nope")


async def test_generic_resources(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def open_client() -> AsyncIterator[dict[str, str]]:
        log.append("open")
        try:
            yield {"kind": "client"}
        finally:
            log.append("close")

    async with open_resource_manager() as manager:
        client = await manager.add_resource("http", open_client)
        assert manager.resource("http") is client
        with pytest.raises(TypeError):
            manager.pool("http")
        assert manager.statistics() == {}
        await manager.remove("http")
        assert "http" not in manager
        assert manager.names() == []
        assert log == ["open", "close"]


async def test_warm_up_failure_propagates_from_add_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = Backend(fail=True)
    async with open_resource_manager() as manager:
        with pytest.raises(ConnectionRefusedError):
            await manager.add_pool("db", backend.connect, min_size=1)
        assert manager.names() == []
        with pytest.raises(UnknownResource):
            manager.resource("db")


async def test_resources_close_in_reverse_order(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []

    def opener(name: str) -> object:
        @asynccontextmanager
        async def open_it() -> AsyncIterator[str]:
            try:
                yield name
            finally:
                log.append(name)

        return open_it

    async with open_resource_manager() as manager:
        for name in ("a", "b", "c"):
            await manager.add_resource(name, opener(name))  # type: ignore[arg-type]
    assert log == ["c", "b", "a"]


async def test_manager_under_a_parent_supervisor(autojump_clock: trio.testing.MockClock) -> None:
    backend = Backend()
    async with open_supervisor("root", keep_alive=True) as root:
        async with open_resource_manager(supervisor=root, name="resources") as manager:
            assert manager.supervisor.name == "resources"
            assert root.child("resources").value is manager.supervisor
            pool = await manager.add_pool("db", backend.connect, min_size=1)
        assert pool.closed
        with pytest.raises(LookupError):
            root.child("resources")
        await root.stop()


async def test_pool_that_stays_unhealthy_is_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    backend = Backend()
    health = HealthMonitor(interval=5, timeout=1, failure_threshold=2, events=bus)
    async with open_resource_manager(events=bus, health=health) as manager:
        first = await manager.add_pool(
            "db", backend.connect, close=backend.close, min_size=1, max_size=1, acquire_timeout=1
        )
        assert health.component("db").required
        async with trio.open_nursery() as nursery:
            nursery.start_soon(health.run)

            async def hog() -> None:
                async with first.acquire():
                    await trio.sleep_forever()

            async def starve() -> None:
                while True:
                    try:
                        async with first.acquire():
                            pass
                    except PoolExhausted:
                        await trio.sleep(1)
                    except PoolClosed:
                        return  # restarted: this pool object is gone for good

            nursery.start_soon(hog)
            nursery.start_soon(starve)
            # Rounds at 0.1 (degraded: one waiting), 5.1 and 10.1 (unhealthy: timeouts).
            await trio.sleep(6)
            assert health.component("db").status is HealthStatus.UNHEALTHY
            await trio.sleep(4.5)  # the second unhealthy round: the pool child fails
            await trio.testing.wait_all_tasks_blocked()
            [decision] = bus.history(SupervisionDecision)
            assert (decision.child, decision.error_type) == ("db", "ComponentUnhealthy")
            assert [e.child for e in bus.history(ChildStarted)].count("db") == 2
            assert first.closed
            second = manager.pool("db")
            assert second is not first
            assert second.statistics().idle == 1
            nursery.cancel_scope.cancel()
        await manager.remove("db")
        assert health.components() == {}
