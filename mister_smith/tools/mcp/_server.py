"""``McpToolServer``: our tools and agents offered to MCP clients, under our permissions.

Built on the SDK's low-level ``Server``: ``tools/list`` answers the exposed tools the
configured caller identity may call (``ToolBus.list_available_tools``), and
``tools/call`` goes through ``ToolBus.call`` as that identity, so the permission check,
argument validation, deadline, metrics and ``ToolCalled`` events are exactly those of
an in-process call. A tool error becomes an ``isError`` result naming the error (what
MCP asks of tool failures, so a model can read it); an unknown or hidden tool is a
JSON-RPC error, as for any name the server does not offer.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import mcp_types
import trio
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from ...errors import InvalidGrant, ToolError, ToolNotFound
from ...types import Caller, CallerIdentity
from .._agent import AgentTool, Askable
from .._bus import ToolBus

logger = logging.getLogger("mister_smith.tools.mcp")

DEFAULT_AGENT_TIMEOUT = 60.0
"""Deadline in seconds of an agent offered as a tool, unless given."""


def _text(value: object) -> str:
    """A result as text for the client: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    if attrs.has(type(value)):
        value = attrs.asdict(value)  # type: ignore[arg-type]
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _structured(value: object) -> dict[str, Any] | None:
    """A JSON object result as MCP structured content (other values go as text only)."""
    if attrs.has(type(value)):
        value = attrs.asdict(value)  # type: ignore[arg-type]
    if not isinstance(value, Mapping):
        return None
    try:
        structured: dict[str, Any] = json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return None
    return structured


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class McpToolServer:
    """Offers tools of a :class:`~mister_smith.ToolBus` (and agents) over MCP.

    Every call an MCP client makes is made on the bus as ``identity``: it sees and may
    call only the tools that identity is granted (deny by default), each under its
    deadline. An agent is offered as an :class:`~mister_smith.tools.AgentTool`
    registered on the bus under its name and granted to ``identity``; the ask gets the
    time left before the call's deadline, so the agent's work is bounded like any call.

    Args:
        bus: Whose tools are offered.
        identity: Who the MCP client is on the bus (a ``CallerIdentity`` minted by the
            bus's authority; a plain name reaches open tools only).
        tools: The names offered (default: every tool ``identity`` may call, as the bus
            has them at each listing).
        agents: Agents (anything :class:`~mister_smith.tools.Askable`, e.g. an
            ``AgentEndpoint``) offered by tool name.
        agent_timeout: Deadline in seconds of each agent's calls.
        name: The server's name shown to clients.
        max_result_bytes: A result larger than this (as text) is refused with an
            ``isError`` result instead of being sent.

    Raises:
        ToolNotFound: a name in ``tools`` is not registered.
        DuplicateTool: an agent's name is already a tool on the bus.
        InvalidGrant: agents with a plain-name ``identity`` (they are granted to it).
    """

    def __init__(
        self,
        bus: ToolBus,
        *,
        identity: Caller,
        tools: Iterable[str] | None = None,
        agents: Mapping[str, Askable] | None = None,
        agent_timeout: float = DEFAULT_AGENT_TIMEOUT,
        name: str = "mister-smith",
        max_result_bytes: int = 1024 * 1024,
    ) -> None:
        if max_result_bytes < 1:
            raise ValueError(f"max_result_bytes must be >= 1, got {max_result_bytes!r}")
        self.bus = bus
        self.identity = identity
        self.max_result_bytes = max_result_bytes
        names: set[str] | None = None
        if tools is not None:
            if isinstance(tools, str):
                raise TypeError(f"tools must be a collection of names, got the string {tools!r}")
            names = set(tools)
            for tool_name in names:
                bus.get_tool(tool_name)  # ToolNotFound if it is not registered
        if agents and not isinstance(identity, CallerIdentity):
            raise InvalidGrant(
                "offering agents needs a CallerIdentity: each agent tool is granted to the "
                f"client's identity, and {identity!r} is a plain name"
            )
        for agent_name, agent in (agents or {}).items():
            assert isinstance(identity, CallerIdentity)
            bus.register_tool(
                AgentTool(
                    agent,
                    name=agent_name,
                    description=f"Ask the agent {agent_name!r}; it answers in text.",
                    timeout=agent_timeout,
                ),
                callers=[identity],
            )
            if names is not None:
                names.add(agent_name)
        self._names = None if names is None else frozenset(names)
        self.server: Server[Any] = Server(
            name,
            version="0.1.0",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    def _offered(self, name: str) -> bool:
        return self._names is None or name in self._names

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        await trio.lowlevel.checkpoint()
        specs = self.bus.list_available_tools(self.identity)
        return mcp_types.ListToolsResult(
            tools=[
                mcp_types.Tool(
                    name=spec.name,
                    description=spec.description,
                    input_schema=spec.input_schema.to_dict(),
                )
                for spec in specs
                if self._offered(spec.name)
            ]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        name = params.name
        if not self._offered(name):
            raise MCPError(mcp_types.INVALID_PARAMS, f"Unknown tool: {name}")
        try:
            value = await self.bus.call(self.identity, name, params.arguments or {})
        except ToolNotFound:
            raise MCPError(mcp_types.INVALID_PARAMS, f"Unknown tool: {name}") from None
        except ToolError as error:
            return self._error(f"{type(error).__name__}: {error}")
        text = _text(value)
        if len(text.encode("utf-8", "replace")) > self.max_result_bytes:
            return self._error(
                f"the result of {name!r} is larger than {self.max_result_bytes} bytes "
                "(max_result_bytes)"
            )
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text=text)], structured_content=_structured(value)
        )

    @staticmethod
    def _error(text: str) -> mcp_types.CallToolResult:
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=text)], is_error=True)

    async def serve_stdio(self) -> None:
        """Serve one MCP client over this process's stdin and stdout until it closes."""
        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(
                read_stream, write_stream, self.server.create_initialization_options()
            )

    async def serve_http(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/mcp",
        allow_remote: bool = False,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve MCP clients over streamable HTTP until cancelled.

        Started with ``url = await nursery.start(server.serve_http)``, it reports the
        endpoint's URL (with the port chosen when ``port=0``). Requests whose ``Host``
        or ``Origin`` is not local are refused (DNS-rebinding protection).

        Args:
            host: Address to bind; only loopback addresses unless ``allow_remote``
                (the server has no authentication of its own: its clients are
                whoever can reach it).
            port: Port to bind (0: any free port).
            path: The endpoint's path.
            allow_remote: Allow binding a non-loopback address.

        Raises:
            ValueError: a non-loopback ``host`` without ``allow_remote``.
        """
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"refusing to serve MCP on {host!r}: it has no authentication of its own; "
                "bind a loopback address, or pass allow_remote=True behind your own gate"
            )
        from hypercorn.config import Config
        from hypercorn.trio import serve

        app: Any = self.server.streamable_http_app(streamable_http_path=path, host=host)
        config = Config()
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        config.accesslog = None
        config.errorlog = logger
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                functools.partial(serve, app, config, shutdown_trigger=trio.sleep_forever)
            )
            task_status.started(binds[0] + path)
