"""The MCP client against real stdio server processes (written with the official SDK, and
one that breaks the protocol), on the real clock: calls, crash and hang recovery,
bounded messages, and no process left behind.

Each SDK server start costs about a second (the SDK's imports), so the tests share few
starts: one for calls, three for the crash-then-hang story.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from mister_smith.errors import ToolPermissionDenied, ToolTimeout
from mister_smith.events import EventBus, SupervisionDecision
from mister_smith.supervision import Backoff, Supervisor, open_supervisor
from mister_smith.tools import ToolBus
from mister_smith.tools.mcp import (
    McpConnectFailed,
    McpResultTooLarge,
    McpServerOptions,
    McpServerState,
    McpServerUnavailable,
    McpToolFailed,
)

SERVERS = Path(__file__).resolve().parent / "mcp_servers"
SDK_SERVER = [sys.executable, str(SERVERS / "stdio_server.py")]
HOSTILE_SERVER = [sys.executable, str(SERVERS / "hostile_server.py")]
QUICK = McpServerOptions(
    ping_interval=0.1, ping_timeout=0.5, backoff=Backoff(initial=0.05), connect_timeout=30.0
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    async with open_supervisor("root", keep_alive=True, events=EventBus()) as sup:
        yield sup
        await sup.stop()


async def test_calls_to_a_stdio_server_under_grants_and_deadlines(supervisor: Supervisor) -> None:
    bus = ToolBus()
    role = bus.identities.register_role("user")
    me = bus.identities.mint("me", roles=[role])
    connection = await bus.register_mcp_server(
        "sdk", supervisor=supervisor, stdio=SDK_SERVER, roles=[role], options=QUICK
    )
    assert {"sdk.add", "sdk.sleep", "sdk.pixel", "sdk.grow"} <= set(connection.statistics().tools)
    assert await bus.call(me, "sdk.add", {"a": 2, "b": 3}) == {"result": 5}
    with pytest.raises(McpToolFailed, match="Error executing tool fail"):
        await bus.call(me, "sdk.fail", {"reason": "no"})
    with pytest.raises(ToolTimeout):
        await bus.call(me, "sdk.sleep", {"seconds": 30}, timeout=0.2)
    result = await bus.call(me, "sdk.pixel")
    assert isinstance(result, list)
    caption, image = result
    assert caption["text"] == "a pixel"
    assert connection.blob(image["ref"]).data.startswith(b"\x89PNG")
    with pytest.raises(ToolPermissionDenied):
        await bus.call(bus.identities.mint("stranger"), "sdk.add", {"a": 1, "b": 1})
    assert await bus.call(me, "sdk.grow") == {"result": "grown"}
    with trio.fail_after(5):
        while "sdk.shout" not in connection.statistics().tools:
            await trio.sleep(0.01)
    assert await bus.call(me, "sdk.shout", {"message": "hi"}) == {"result": "HI"}
    pid = connection.statistics().pid
    assert pid is not None
    await connection.close()
    assert not alive(pid)
    assert bus.list_tools() == []


async def test_a_crashed_then_hung_server_is_restarted_by_its_supervisor() -> None:
    bus = ToolBus()
    me = bus.identities.mint("me")
    async with open_supervisor("root", keep_alive=True, events=EventBus()) as supervisor:
        connection = await bus.register_mcp_server(
            "sdk", supervisor=supervisor, stdio=SDK_SERVER, callers=[me], options=QUICK
        )
        first = await bus.call(me, "sdk.whoami")
        async with supervisor.events.subscribe(SupervisionDecision) as decisions:
            with pytest.raises(McpServerUnavailable, match="went away during the call"):
                await bus.call(me, "sdk.crash", {"status": 3})
            crash = await decisions.receive()
            assert crash.error_type == "McpServerUnavailable"
            assert "exited with status 3" in crash.error
            assert "crashing with status 3" in crash.error  # the end of its stderr
            second = await bus.call(me, "sdk.whoami", timeout=30)  # waits for the restart
            assert second != first
            assert not alive(first["result"])  # type: ignore[index]
            with pytest.raises(ToolTimeout):
                await bus.call(me, "sdk.freeze", timeout=0.3)  # blocks the server's loop
            hang = await decisions.receive()
            assert hang.error_type == "McpServerHung"
            third = await bus.call(me, "sdk.whoami", timeout=30)
        assert third not in (first, second)
        assert not alive(second["result"])  # type: ignore[index]  # a hung server is killed
        assert connection.statistics().restarts == 2
        await supervisor.stop()
    assert not alive(third["result"])  # type: ignore[index]  # shut down with its supervisor
    assert connection.state is McpServerState.CLOSED


async def test_a_server_writing_an_endless_message_is_cut_off(supervisor: Supervisor) -> None:
    bus = ToolBus()
    me = bus.identities.mint("me")
    options = McpServerOptions(max_message_bytes=100_000, backoff=Backoff(initial=0.05))
    connection = await bus.register_mcp_server(
        "hostile", supervisor=supervisor, stdio=HOSTILE_SERVER, callers=[me], options=options
    )
    assert await bus.call(me, "hostile.garbage") == "after garbage"
    assert connection.statistics().protocol_errors == 3  # lines that are not JSON-RPC
    pid = connection.statistics().pid
    assert pid is not None
    with trio.fail_after(5), pytest.raises(McpResultTooLarge, match="100000 bytes"):
        await bus.call(me, "hostile.flood", timeout=30)
    await connection.wait_ready()  # restarted
    assert not alive(pid)
    assert connection.statistics().restarts == 1


async def test_a_server_that_cannot_start_fails_registration_with_a_typed_error(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    bus = ToolBus()
    with pytest.raises(McpConnectFailed, match="could not be connected"):
        await bus.register_mcp_server(
            "missing", supervisor=supervisor, stdio=[str(tmp_path / "no-such-server")]
        )
    quits = [sys.executable, "-c", "import sys; sys.stderr.write('bad config'); sys.exit(2)"]
    with pytest.raises(McpConnectFailed, match="could not be connected"):
        await bus.register_mcp_server("quits", supervisor=supervisor, stdio=quits)
    assert bus.list_tools() == []
    assert [child.name for child in supervisor.children()] == []
