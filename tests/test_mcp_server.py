"""Our MCP server exercised by the official SDK's own client: in process, over streamable
HTTP on 127.0.0.1, and ``mister-smith mcp serve`` over stdio; the same permission checks,
validation and deadlines as an in-process call."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import mcp_types
import pytest
import trio
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from mister_smith.cli import main
from mister_smith.errors import InvalidGrant
from mister_smith.events import EventBus, ToolCalled, ToolOutcome
from mister_smith.tools import EchoTool, ToolBus, tool
from mister_smith.tools.mcp import McpToolServer

pytestmark = [
    # See test_mcp_http.py: the SDK's HTTP client leaves httpx2 iterators to the GC.
    pytest.mark.filterwarnings("ignore:Async generator 'httpx2:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore2:ResourceWarning"),
]

REPO = Path(__file__).resolve().parent.parent


@tool
async def add(a: int, b: int) -> dict[str, int]:
    """Add two integers."""
    await trio.lowlevel.checkpoint()
    return {"sum": a + b}


@tool(timeout=0.5)
async def stuck() -> str:
    """Never answers."""
    await trio.sleep_forever()


class SlowAgent:
    """An agent stand-in that records the time it was given and takes ``delay``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.timeouts: list[float | None] = []

    async def ask(self, message: object, *, timeout: float | None = None) -> object:
        self.timeouts.append(timeout)
        await trio.sleep(self.delay)
        return f"considered {message!r}"


def text_of(result: mcp_types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, mcp_types.TextContent)
    return block.text


def offered(bus: ToolBus, **kwargs: Any) -> McpToolServer:
    return McpToolServer(bus, identity=bus.identities.mint("client"), **kwargs)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_sees_and_calls_only_what_the_identity_is_granted(
    mode: str, autojump_clock: trio.testing.MockClock
) -> None:
    events = EventBus()
    bus = ToolBus(events=events)
    identity = bus.identities.mint("client")
    bus.register_tool(add, callers=[identity])
    bus.register_tool(stuck, callers=[identity])
    bus.register_tool(EchoTool(name="secret"))  # deny by default: nobody granted
    bus.register_tool(EchoTool(name="hidden"), callers=[identity])
    server = McpToolServer(bus, identity=identity, tools=["add", "stuck", "secret"])
    async with events.subscribe(ToolCalled) as calls, Client(server.server, mode=mode) as client:
        listed = await client.list_tools()
        assert [t.name for t in listed.tools] == ["add", "stuck"]
        assert listed.tools[0].input_schema["required"] == ["a", "b"]
        result = await client.call_tool("add", {"a": 2, "b": 40})
        assert not result.is_error
        assert result.structured_content == {"sum": 42}
        assert json.loads(text_of(result)) == {"sum": 42}
        denied = await client.call_tool("secret", {"message": "x"})
        assert denied.is_error
        assert text_of(denied).startswith("ToolPermissionDenied: client may not call")
        invalid = await client.call_tool("add", {"a": "two", "b": 1})
        assert invalid.is_error
        assert "InvalidToolInput" in text_of(invalid)
        assert "a: expected integer, got string" in text_of(invalid)
        started = trio.current_time()
        late = await client.call_tool("stuck", {})
        assert late.is_error
        assert text_of(late).startswith("ToolTimeout")
        assert trio.current_time() - started == pytest.approx(0.5)
        with pytest.raises(MCPError, match="Unknown tool: hidden"):
            await client.call_tool("hidden", {"message": "x"})  # granted, but not offered
        outcomes = [(await calls.receive()).outcome for _ in range(4)]
    assert outcomes == [
        ToolOutcome.OK,
        ToolOutcome.DENIED,
        ToolOutcome.INVALID,
        ToolOutcome.TIMEOUT,
    ]


async def test_an_agent_offered_as_a_tool_keeps_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = ToolBus()
    quick, slow = SlowAgent(1.0), SlowAgent(100.0)
    server = offered(bus, agents={"quick": quick, "slow": slow}, agent_timeout=10.0)
    async with Client(server.server, mode="legacy") as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["quick", "slow"]
        answer = await client.call_tool("quick", {"message": "the plan"})
        assert text_of(answer) == "considered 'the plan'"
        started = trio.current_time()
        late = await client.call_tool("slow", {"message": "the plan"})
        assert late.is_error
        assert text_of(late).startswith("ToolTimeout")
        assert trio.current_time() - started == pytest.approx(10.0)
    assert quick.timeouts[0] == pytest.approx(10.0)  # the ask got the call's deadline
    with pytest.raises(InvalidGrant, match="plain name"):
        McpToolServer(ToolBus(), identity="client", agents={"x": quick})


async def test_a_result_past_the_cap_is_refused() -> None:
    @tool
    async def blob(size: int) -> str:
        """Many bytes."""
        await trio.lowlevel.checkpoint()
        return "b" * size

    bus = ToolBus()
    identity = bus.identities.mint("client")
    bus.register_tool(blob, callers=[identity])
    server = McpToolServer(bus, identity=identity, max_result_bytes=100)
    async with Client(server.server, mode="legacy") as client:
        assert text_of(await client.call_tool("blob", {"size": 100})) == "b" * 100
        refused = await client.call_tool("blob", {"size": 101})
        assert refused.is_error
        assert "larger than 100 bytes" in text_of(refused)


async def test_sdk_client_over_http_on_loopback_only(nursery: trio.Nursery) -> None:
    bus = ToolBus()
    identity = bus.identities.mint("client")
    bus.register_tool(add, callers=[identity])
    server = McpToolServer(bus, identity=identity)
    with pytest.raises(ValueError, match=r"refusing to serve MCP on '0\.0\.0\.0'"):
        await server.serve_http(host="0.0.0.0")
    scope = trio.CancelScope()

    async def run(*, task_status: trio.TaskStatus[str]) -> None:
        with scope:
            await server.serve_http(task_status=task_status)

    url = await nursery.start(run)
    assert url.startswith("http://127.0.0.1:")
    async with Client(url, mode="legacy") as client:
        assert [t.name for t in (await client.list_tools()).tools] == ["add"]
        result = await client.call_tool("add", {"a": 1, "b": 2})
        assert result.structured_content == {"sum": 3}
    scope.cancel()


async def test_mister_smith_mcp_serve_over_stdio_with_the_sdk_client(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello from the workspace\n", encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mister_smith.cli", "mcp", "serve", "--workspace", str(tmp_path)],
        env={"PYTHONPATH": str(REPO)},
    )
    with trio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = sorted(t.name for t in (await session.list_tools()).tools)
            assert names == ["list_directory", "read_file"]  # write_file is not offered
            read_it = await session.call_tool("read_file", {"path": "notes.txt"})
            assert read_it.structured_content is not None
            assert read_it.structured_content["content"] == "hello from the workspace\n"
            escape = await session.call_tool("read_file", {"path": "../../etc/passwd"})
            assert escape.is_error


def test_mcp_serve_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "serve", "--transport", "http", "--host", "0.0.0.0"]) == 2
    assert "refusing to serve MCP on '0.0.0.0'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["mcp", "serve", "--tools", "read_file,format_disk"])
    assert exited.value.code == 2
    assert "unknown tool(s) 'format_disk'" in capsys.readouterr().err
