"""States that code waits on, held in trio-util ``AsyncValue``s: who wakes, and when."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import mcp_types
import pytest
import trio
import trio.testing
from mcp_servers.memory import MemoryServer, text

from mister_smith.events import EventBus
from mister_smith.supervision import Backoff, RestartLimit, Supervisor, open_supervisor
from mister_smith.tools import ToolBus
from mister_smith.tools.mcp import (
    McpServerOptions,
    McpServerState,
    McpServerUnavailable,
    register_mcp_server,
)

pytest.importorskip("nats", reason="the nats extra is not installed")

from mister_smith.distributed import ConnectionState, NatsBridge

URL = "nats://127.0.0.1:4222"


async def test_wait_connected_returns_at_once_with_a_checkpoint_when_up() -> None:
    bridge = NatsBridge()
    bridge._on_state("reconnected", URL)  # what the drain of the asyncio side's posts does
    with trio.testing.assert_checkpoints():
        await bridge.wait_connected()


async def test_wait_connected_waits_through_a_flap_it_did_not_see() -> None:
    bridge = NatsBridge()
    woke: list[ConnectionState] = []

    async def waiter() -> None:
        await bridge.wait_connected()
        woke.append(bridge.state)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        # Up and down again in one batch of posts, before the waiter runs.
        bridge._on_state("reconnected", URL)
        bridge._on_state("disconnected", URL)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
        bridge._on_state("reconnected", URL)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == [ConnectionState.CONNECTED]
    assert bridge.statistics().connects == 2


async def test_a_closed_connection_does_not_wake_connection_waiters() -> None:
    bridge = NatsBridge()
    with trio.move_on_after(0.01) as waited:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge.wait_connected)
            await trio.testing.wait_all_tasks_blocked()
            bridge._on_state("closed", URL)
    assert waited.cancelled_caught
    assert bridge.state is ConnectionState.CLOSED


async def _add(args: dict[str, Any]) -> mcp_types.CallToolResult:
    await trio.lowlevel.checkpoint()
    return text(str(args["a"] + args["b"]))


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    async with open_supervisor("root", keep_alive=True, events=EventBus()) as sup:
        yield sup
        await sup.stop()


async def test_a_call_waiting_for_a_restart_fails_once_the_server_stops_for_good(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", _add, {"type": "object", "properties": {"a": {}, "b": {}}})
    bus = ToolBus()
    me = bus.identities.mint("me")
    connection = await register_mcp_server(
        bus,
        "mem",
        supervisor=supervisor,
        transport=server.connect,
        options=McpServerOptions(
            ping_interval=1.0,
            ping_timeout=1.0,
            backoff=Backoff(initial=0.1),
            restart_limit=RestartLimit(2, 60.0),
        ),
        callers=[me],
    )
    server.refuse_connections = True
    server.hang_pings = True
    await trio.sleep(2.5)  # the hang is detected: restarts (refused) are under way
    assert connection.state is not McpServerState.READY
    started = trio.current_time()
    # The caller waits for the restart (wait_for_restart is on by default) and wakes
    # on the state's transition to STOPPED, not on a timeout.
    with pytest.raises(McpServerUnavailable, match="stopped for good"):
        await bus.call(me, "mem.add", {"a": 1, "b": 1}, timeout=30)
    assert connection.state is McpServerState.STOPPED
    assert trio.current_time() - started < 5
