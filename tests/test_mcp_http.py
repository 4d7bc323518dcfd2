"""The MCP client against an SDK server over streamable HTTP on 127.0.0.1 (served in
this process by hypercorn on Trio), on the real clock: calls, headers, and a server
that goes away and comes back."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from mcp.server.mcpserver import Context, MCPServer

from mister_smith.events import EventBus
from mister_smith.supervision import Backoff, RestartLimit, Supervisor, open_supervisor
from mister_smith.tools import ToolBus
from mister_smith.tools.mcp import McpServerOptions, McpServerState, McpServerUnavailable

pytestmark = [
    # The SDK's streamable-HTTP client leaves httpx2's response iterators (async
    # generators) to the garbage collector when a stream is cut; Trio's finalizer says so
    # with a ResourceWarning (ignored by Python's default filters, errors here).
    pytest.mark.filterwarnings("ignore:Async generator 'httpx2:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore2:ResourceWarning"),
]

QUICK = McpServerOptions(
    ping_interval=0.05,
    ping_timeout=1.0,
    backoff=Backoff(initial=0.02, maximum=0.1),
    restart_limit=RestartLimit(50, 60.0),
    wait_for_restart=False,
)


def sdk_server() -> MCPServer:
    server = MCPServer("test-http", log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def header(name: str, ctx: Context) -> str:
        """A request header the client sent."""
        headers = ctx.request_context.request.headers  # type: ignore[union-attr]
        return str(headers.get(name, ""))

    return server


async def serve_http(
    port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve a fresh SDK server on 127.0.0.1; report the port."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.1
    app: Any = sdk_server().streamable_http_app()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever)
        )
        task_status.started(int(binds[0].rsplit(":", 1)[1]))


@pytest.fixture
async def supervisor() -> AsyncIterator[Supervisor]:
    async with open_supervisor("root", keep_alive=True, events=EventBus()) as sup:
        yield sup
        await sup.stop()


async def test_an_http_server_is_called_with_headers_and_recovers_after_going_away(
    supervisor: Supervisor, nursery: trio.Nursery
) -> None:
    scope = trio.CancelScope()

    async def run_server(port: int, *, task_status: trio.TaskStatus[int]) -> None:
        with scope:
            await serve_http(port, task_status=task_status)

    port = await nursery.start(run_server, 0)
    bus = ToolBus()
    me = bus.identities.mint("me")
    connection = await bus.register_mcp_server(
        "web",
        supervisor=supervisor,
        url=f"http://127.0.0.1:{port}/mcp",
        headers={"X-Team": "blue"},
        callers=[me],
        options=QUICK,
    )
    assert sorted(connection.statistics().tools) == ["web.add", "web.header"]
    assert connection.statistics().transport == "http"
    assert await bus.call(me, "web.add", {"a": 20, "b": 22}) == {"result": 42}
    assert await bus.call(me, "web.header", {"name": "x-team"}) == {"result": "blue"}
    scope.cancel()  # the server goes away
    with trio.fail_after(10):
        while connection.state is McpServerState.READY:
            await trio.sleep(0.01)
    with pytest.raises(McpServerUnavailable, match="'web' is"):
        await bus.call(me, "web.add", {"a": 1, "b": 1})
    scope = trio.CancelScope()
    await nursery.start(run_server, port)  # and comes back
    with trio.fail_after(10):
        await connection.wait_ready()
    assert await bus.call(me, "web.add", {"a": 1, "b": 1}) == {"result": 2}
    assert connection.statistics().restarts >= 1
    scope.cancel()
