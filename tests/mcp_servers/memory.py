"""In-process MCP servers (the SDK's low-level ``Server``) reached over memory streams.

A :class:`MemoryServer` opens a fresh server session per connection, as a restarted
process would, and can be made to hang (ping never answered) or to refuse connecting,
so the client's supervision is tested on virtual time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import mcp_types
import trio
from mcp.client._transport import TransportStreams
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.shared.memory import create_client_server_memory_streams

Handler = Callable[[dict[str, Any]], Awaitable[mcp_types.CallToolResult]]


def text(value: str) -> mcp_types.CallToolResult:
    """A result holding one text block."""
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=value)])


@attrs.define
class MemoryServer:
    """A scriptable in-process MCP server.

    Attributes:
        tools: What ``tools/list`` answers.
        handlers: How each tool answers, by name.
        hang_pings: Pings are never answered while set (a hung server).
        refuse_connections: Opening a connection fails while set (a server that cannot
            start).
        connections: Connections opened so far.
        page_size: Tools per ``tools/list`` page (cursor-paginated) when set.
    """

    tools: list[mcp_types.Tool] = attrs.field(factory=list)
    handlers: dict[str, Handler] = attrs.field(factory=dict)
    hang_pings: bool = False
    refuse_connections: bool = False
    connections: int = 0
    page_size: int | None = None
    sessions: list[Any] = attrs.field(factory=list)

    def add(self, name: str, handler: Handler, schema: dict[str, Any] | None = None) -> None:
        """Offer tool ``name`` answered by ``handler``."""
        self.tools = [tool for tool in self.tools if tool.name != name]
        self.tools.append(
            mcp_types.Tool(
                name=name,
                description=f"the {name} tool",
                input_schema=schema or {"type": "object", "properties": {}},
            )
        )
        self.handlers[name] = handler

    def remove(self, name: str) -> None:
        """Stop offering tool ``name``."""
        self.tools = [tool for tool in self.tools if tool.name != name]
        self.handlers.pop(name, None)

    async def notify_list_changed(self) -> None:
        """Tell the latest connected client that the tool list changed."""
        await self.sessions[-1].send_tool_list_changed()

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        await trio.lowlevel.checkpoint()
        self.sessions.append(ctx.session)
        if self.page_size is None:
            return mcp_types.ListToolsResult(tools=list(self.tools))
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + self.page_size
        return mcp_types.ListToolsResult(
            tools=self.tools[start:end], next_cursor=str(end) if end < len(self.tools) else None
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        handler = self.handlers.get(params.name)
        if handler is None:
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(text=f"Unknown tool: {params.name}")],
                is_error=True,
            )
        return await handler(params.arguments or {})

    async def _ping(
        self, ctx: ServerRequestContext[Any], params: mcp_types.RequestParams | None
    ) -> mcp_types.EmptyResult:
        if self.hang_pings:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        return mcp_types.EmptyResult()

    def server(self) -> Server[Any]:
        """A fresh SDK server answering with this script."""
        return Server(
            "memory",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_ping=self._ping,
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[TransportStreams]:
        """One connection (the client's transport factory)."""
        self.connections += 1
        if self.refuse_connections:
            await trio.lowlevel.checkpoint()
            raise ConnectionRefusedError("the memory server refuses connections")
        server = self.server()
        async with (
            create_client_server_memory_streams() as (client, (read, write)),
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(
                lambda: server.run(read, write, server.create_initialization_options())
            )
            yield client
            nursery.cancel_scope.cancel()
