"""The MCP client against in-process SDK servers, on virtual time: registration, grants,
calls and their errors, bounds, tool-list changes, and supervision (hang, restart budget).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import mcp_types
import pytest
import trio
from mcp.shared.exceptions import MCPError
from mcp_servers.memory import MemoryServer, text

from mister_smith.errors import InvalidToolInput, ToolPermissionDenied, ToolTimeout
from mister_smith.events import EventBus, SupervisionDecision
from mister_smith.supervision import Backoff, RestartLimit, Supervisor, open_supervisor
from mister_smith.tools import ToolBus
from mister_smith.tools.mcp import (
    McpConnectFailed,
    McpProtocolError,
    McpResultTooLarge,
    McpServerConnection,
    McpServerHung,
    McpServerOptions,
    McpServerState,
    McpServerUnavailable,
    McpToolFailed,
    register_mcp_server,
)

FAST = McpServerOptions(ping_interval=1.0, ping_timeout=2.0, backoff=Backoff(initial=0.5))


async def add(args: dict[str, Any]) -> mcp_types.CallToolResult:
    await trio.lowlevel.checkpoint()
    return text(str(args["a"] + args["b"]))


ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    async with open_supervisor("root", keep_alive=True, events=EventBus()) as sup:
        yield sup
        await sup.stop()


async def connect(
    bus: ToolBus,
    server: MemoryServer,
    supervisor: Supervisor,
    options: McpServerOptions = FAST,
    **grants: Any,
) -> McpServerConnection:
    return await register_mcp_server(
        bus, "mem", supervisor=supervisor, transport=server.connect, options=options, **grants
    )


async def test_tools_are_registered_prefixed_and_denied_until_granted(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    role = bus.identities.register_role("maths")
    granted = bus.identities.mint("ada", roles=[role])
    stranger = bus.identities.mint("eve")
    connection = await connect(bus, server, supervisor, roles=[role])
    assert [spec.name for spec in bus.list_tools()] == ["mem.add"]
    assert bus.list_tools()[0].input_schema.required == ("a", "b")
    assert await bus.call(granted, "mem.add", {"a": 2, "b": 3}) == "5"
    with pytest.raises(ToolPermissionDenied):
        await bus.call(stranger, "mem.add", {"a": 2, "b": 3})
    with pytest.raises(ToolPermissionDenied):
        await bus.call("ada", "mem.add", {"a": 2, "b": 3})  # a name is not an identity
    with pytest.raises(InvalidToolInput, match="b: required property is missing"):
        await bus.call(granted, "mem.add", {"a": 2})  # refused before the server sees it
    stats = connection.statistics()
    assert stats.state is McpServerState.READY
    assert stats.calls == 1
    assert stats.tools == ("mem.add",)


async def test_without_grants_the_bus_default_denies_everyone(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    ada = bus.identities.mint("ada")
    await connect(bus, server, supervisor)
    with pytest.raises(ToolPermissionDenied):
        await bus.call(ada, "mem.add", {"a": 1, "b": 1})
    bus.grant("mem.add", callers=[ada])
    assert await bus.call(ada, "mem.add", {"a": 1, "b": 1}) == "2"


async def test_is_error_and_protocol_errors_map_to_typed_tool_errors(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    async def broken(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text="disk on fire")], is_error=True
        )

    async def picky(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        raise MCPError(mcp_types.INVALID_PARAMS, "x must be odd")

    async def rude(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        raise MCPError(-32099, "not today")

    server = MemoryServer()
    server.add("broken", broken)
    server.add("picky", picky)
    server.add("rude", rude)
    bus = ToolBus()
    me = bus.identities.mint("me")
    await connect(bus, server, supervisor, callers=[me])
    with pytest.raises(McpToolFailed, match="disk on fire"):
        await bus.call(me, "mem.broken")
    with pytest.raises(InvalidToolInput, match="x must be odd"):
        await bus.call(me, "mem.picky")
    with pytest.raises(McpProtocolError, match="not today") as raised:
        await bus.call(me, "mem.rude")
    assert raised.value.code == -32099
    stats = bus.statistics().tools
    assert stats["mem.broken"].failures == 1
    assert stats["mem.picky"].invalid == 1


async def test_results_text_json_and_images_by_reference_with_a_size_cap(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    png = b"\x89PNG fake image bytes"

    async def structured(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text='{"n": 1}')], structured_content={"n": 1}
        )

    async def picture(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        return mcp_types.CallToolResult(
            content=[
                mcp_types.TextContent(text="a picture"),
                mcp_types.ImageContent(data=base64.b64encode(png).decode(), mime_type="image/png"),
            ]
        )

    async def huge(args: dict[str, Any]) -> mcp_types.CallToolResult:
        await trio.lowlevel.checkpoint()
        return text("z" * 5_000)

    server = MemoryServer()
    server.add("structured", structured)
    server.add("picture", picture)
    server.add("huge", huge)
    bus = ToolBus()
    me = bus.identities.mint("me")
    options = McpServerOptions(max_result_bytes=4_096)
    connection = await connect(bus, server, supervisor, options, callers=[me])
    assert await bus.call(me, "mem.structured") == {"n": 1}
    result = await bus.call(me, "mem.picture")
    assert isinstance(result, list)
    caption, image = result
    assert caption == {"type": "text", "text": "a picture"}
    assert image["type"] == "image"
    assert image["bytes"] == len(png)
    assert connection.blob(image["ref"]).data == png
    with pytest.raises(McpResultTooLarge, match="4096-byte cap"):
        await bus.call(me, "mem.huge")


async def test_every_call_runs_under_the_bus_deadline(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    cancelled = trio.Event()

    async def stuck(args: dict[str, Any]) -> mcp_types.CallToolResult:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    server = MemoryServer()
    server.add("stuck", stuck)
    bus = ToolBus()
    me = bus.identities.mint("me")
    await connect(bus, server, supervisor, McpServerOptions(timeout=3.0), callers=[me])
    started = trio.current_time()
    with pytest.raises(ToolTimeout):
        await bus.call(me, "mem.stuck")
    assert trio.current_time() - started == pytest.approx(3.0)
    with trio.fail_after(1):
        await cancelled.wait()  # the server was told to stop the call


async def test_calls_in_flight_per_server_are_bounded(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    running = 0
    most = 0

    async def slow(args: dict[str, Any]) -> mcp_types.CallToolResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await trio.sleep(1)
        running -= 1
        return text("done")

    server = MemoryServer()
    server.add("slow", slow)
    bus = ToolBus()
    me = bus.identities.mint("me")
    await connect(bus, server, supervisor, McpServerOptions(max_concurrent_calls=2), callers=[me])
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(bus.call, me, "mem.slow")
    assert most == 2
    assert trio.current_time() - started == pytest.approx(3.0)


async def test_tool_list_changes_update_the_registry(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    server.add("old", add, ADD_SCHEMA)
    bus = ToolBus()
    me = bus.identities.mint("me")
    connection = await connect(bus, server, supervisor, callers=[me])
    server.add("new", add, ADD_SCHEMA)
    server.remove("old")
    server.add("add", add, {"type": "object", "properties": {"a": {"type": "integer"}}})
    await server.notify_list_changed()
    await trio.sleep(0.5)
    assert sorted(spec.name for spec in bus.list_tools()) == ["mem.add", "mem.new"]
    assert bus.get_tool("mem.add").input_schema.required == ()  # replaced, grants kept
    assert await bus.call(me, "mem.new", {"a": 1, "b": 2}) == "3"  # new tools get the grants
    assert connection.statistics().list_changes == 1


async def test_paginated_listing_is_read_whole_and_bounded(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer(page_size=2)
    for index in range(5):
        server.add(f"t{index}", add)
    bus = ToolBus()
    await connect(bus, server, supervisor)
    assert len(bus.list_tools()) == 5
    bounded = ToolBus()
    options = McpServerOptions(max_list_pages=2, max_tools=3)
    connection = await register_mcp_server(
        bounded, "other", supervisor=supervisor, transport=server.connect, options=options
    )
    assert [spec.name for spec in bounded.list_tools()] == ["other.t0", "other.t1", "other.t2"]
    assert [refused.remote_name for refused in connection.refused()] == ["t3"]


async def test_a_hung_server_is_detected_by_ping_and_restarted(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    me = bus.identities.mint("me")
    connection = await connect(bus, server, supervisor, callers=[me])
    decisions: list[SupervisionDecision] = []
    async with supervisor.events.subscribe(SupervisionDecision) as stream:
        server.hang_pings = True
        await trio.sleep(FAST.ping_interval + FAST.ping_timeout + 0.01)
        server.hang_pings = False
        decisions.append(await stream.receive())
    assert decisions[0].error_type == McpServerHung.__name__
    assert decisions[0].supervisor == "mcp:mem"
    await connection.wait_ready()
    assert server.connections == 2
    assert await bus.call(me, "mem.add", {"a": 1, "b": 1}) == "2"
    stats = connection.statistics()
    assert stats.restarts == 1
    assert "did not answer a ping" in (stats.last_error or "")


async def test_calls_during_a_restart_wait_or_fail_fast_with_a_clear_error(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    me = bus.identities.mint("me")
    waiting = await connect(bus, server, supervisor, callers=[me])
    impatient = await register_mcp_server(
        bus,
        "fast",
        supervisor=supervisor,
        transport=server.connect,
        options=McpServerOptions(
            ping_interval=1.0, ping_timeout=2.0, wait_for_restart=False, backoff=Backoff(1.0)
        ),
        callers=[me],
    )
    server.hang_pings = True
    await trio.sleep(3.1)  # both detected the hang; restarts are under way
    server.hang_pings = False
    assert waiting.state is not McpServerState.READY
    with pytest.raises(McpServerUnavailable, match="'fast' is restarting"):
        await bus.call(me, "fast.add", {"a": 1, "b": 1})
    assert await bus.call(me, "mem.add", {"a": 1, "b": 1}) == "2"  # waited for it
    await impatient.wait_ready()
    assert impatient.statistics().restarts == 1


async def test_a_server_that_spends_its_restart_budget_is_stopped_alone(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    me = bus.identities.mint("me")
    options = McpServerOptions(
        ping_interval=1.0,
        ping_timeout=1.0,
        backoff=Backoff(initial=0.1),
        restart_limit=RestartLimit(2, 60.0),
    )
    connection = await connect(bus, server, supervisor, options, callers=[me])
    server.refuse_connections = True
    server.hang_pings = True
    await trio.sleep(10)
    assert connection.state is McpServerState.STOPPED
    assert server.connections == 3  # the first, then two restarts
    with pytest.raises(McpServerUnavailable, match="stopped for good"):
        await bus.call(me, "mem.add", {"a": 1, "b": 1})
    assert supervisor.state == "running"  # nothing else was touched


async def test_closing_unregisters_the_tools_and_first_failure_is_typed(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add("add", add, ADD_SCHEMA)
    bus = ToolBus()
    connection = await connect(bus, server, supervisor)
    await connection.close()
    assert bus.list_tools() == []
    assert connection.state is McpServerState.CLOSED
    server.refuse_connections = True
    with pytest.raises(McpConnectFailed, match="ConnectionRefusedError"):
        await connect(bus, server, supervisor)
    assert bus.list_tools() == []
    with pytest.raises(ValueError, match="server name"):
        await register_mcp_server(bus, "bad name", supervisor=supervisor, url="http://x/mcp")
    with pytest.raises(TypeError, match="exactly one"):
        await register_mcp_server(bus, "two", supervisor=supervisor, stdio=["x"], url="http://x")


async def test_schema_edge_cases_are_reported_on_the_connection(
    supervisor: Supervisor, autojump_clock: trio.testing.MockClock
) -> None:
    server = MemoryServer()
    server.add(
        "where",
        add,
        {
            "type": "object",
            "$defs": {"P": {"type": "object"}},
            "properties": {"at": {"$ref": "#/$defs/P"}, "n": {"type": "integer"}},
            "required": ["n"],
        },
    )
    server.add("bad name!", add)
    bus = ToolBus()
    connection = await connect(bus, server, supervisor)
    (where,) = connection.tools()
    assert where.bus_name == "mem.where"
    assert {(issue.path, issue.keyword) for issue in where.issues} == {
        ("", "$defs"),
        ("/properties/at", "$ref"),
    }
    assert bus.get_tool("mem.where").input_schema.required == ("n",)  # the rest is enforced
    (bad,) = connection.refused()
    assert bad.remote_name == "bad name!"
    assert "its name is not" in bad.reason
    assert connection.statistics().schema_issues == 2
    strict = await register_mcp_server(
        ToolBus(),
        "strict",
        supervisor=supervisor,
        transport=server.connect,
        options=McpServerOptions(schema_mode="refuse"),
    )
    assert strict.tools() == ()
    assert {refused.remote_name for refused in strict.refused()} == {"where", "bad name!"}
