"""``mister-smith mcp serve`` and the demo's MCP mode.

``mcp serve`` offers built-in workspace tools to one MCP client, over stdio (the client
starts it as a subprocess) or streamable HTTP on a loopback address. The client is one
caller identity on a deny-by-default bus: it holds the role ``mcp-client``, and only the
tools named with ``--tools`` are granted to that role.

``demo --mcp`` starts that very command as a supervised stdio MCP server and puts its
file tools on the team's bus in place of the in-process ones; with faults on, the server
is killed during the survey and the team carries on once its supervisor restarted it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..config import AgentConfig
from ..tools import (
    EchoTool,
    ListDirectoryTool,
    ReadFileTool,
    Tool,
    ToolBus,
    Workspace,
    WrappedTool,
    WriteFileTool,
)

if TYPE_CHECKING:
    from ..runtime import RuntimeManager
    from ..tools.mcp import McpServerConnection

BUILTIN_TOOLS: Mapping[str, Callable[[Workspace], Tool]] = {
    "read_file": ReadFileTool,
    "list_directory": ListDirectoryTool,
    "write_file": WriteFileTool,
    "echo": lambda workspace: EchoTool(),
}
"""The tools ``mcp serve --tools`` can offer, by name."""

READ_ONLY_TOOLS = ("read_file", "list_directory")
"""What ``mcp serve`` offers by default."""

CLIENT_ROLE = "mcp-client"
"""The role of the MCP client's identity; the offered tools are granted to it."""


@attrs.frozen
class McpServeOptions:
    """How ``mcp serve`` runs.

    Attributes:
        transport: ``"stdio"`` or ``"http"``.
        workspace: The directory the file tools are confined to.
        tools: The built-in tools offered (names of :data:`BUILTIN_TOOLS`).
        client: The name of the client's identity (a label: it grants nothing).
        host: Loopback address to bind (HTTP).
        port: Port to bind (HTTP; 0: any free port, printed on stderr).
    """

    transport: str = "stdio"
    workspace: Path = attrs.field(factory=Path.cwd)
    tools: tuple[str, ...] = READ_ONLY_TOOLS
    client: str = "mcp-client"
    host: str = "127.0.0.1"
    port: int = 8765


def parse_tools(text: str) -> tuple[str, ...]:
    """``"read_file,list_directory"`` as names, each a built-in tool.

    Raises:
        ValueError: an unknown or empty name.
    """
    names = tuple(part.strip() for part in text.split(","))
    unknown = [name for name in names if name not in BUILTIN_TOOLS]
    if not names or unknown:
        raise ValueError(
            f"unknown tool(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(BUILTIN_TOOLS)}"
        )
    return names


async def serve_mcp(options: McpServeOptions, config: AgentConfig) -> int:
    """Serve the chosen tools to an MCP client until it goes (stdio) or a signal (HTTP)."""
    from ..tools.mcp import McpToolServer

    bus = ToolBus(
        default_timeout=config.tools.default_timeout,
        blocking_threads=config.runtime.blocking_threads,
        name="mcp",
    )
    role = bus.identities.register_role(CLIENT_ROLE)
    identity = bus.identities.mint(options.client, roles=[role])
    workspace = Workspace(options.workspace)
    for name in options.tools:
        bus.register_tool(BUILTIN_TOOLS[name](workspace), roles=[role])
    server = McpToolServer(bus, identity=identity, name="mister-smith", tools=options.tools)
    if options.transport == "stdio":
        await server.serve_stdio()
        return 0
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: server.serve_http(
                host=options.host, port=options.port, task_status=task_status
            )
        )
        print(f"mister-smith: serving MCP on {url}", file=sys.stderr, flush=True)
    return 0


def server_command(workspace: Path, tools: Sequence[str] = READ_ONLY_TOOLS) -> list[str]:
    """The command running ``mcp serve`` over stdio with this interpreter."""
    return [
        sys.executable,
        "-m",
        "mister_smith.cli",
        "mcp",
        "serve",
        "--workspace",
        str(workspace),
        "--tools",
        ",".join(tools),
    ]


def package_path() -> str:
    """Where this ``mister_smith`` package was imported from (for the child's
    ``PYTHONPATH``, so it runs the same code as its parent)."""
    return str(Path(__file__).resolve().parent.parent.parent)


class ServerKiller(WrappedTool):
    """Wraps an MCP tool and kills its server's process on the ``kill_on``-th call
    (once), just before the call goes out: the call fails as a crash would make it fail,
    and the next ones wait for the restarted server within their deadline."""

    def __init__(self, inner: Tool, connection: McpServerConnection, *, kill_on: int) -> None:
        super().__init__(inner)
        self.connection = connection
        self.kill_on = kill_on
        self.calls = 0
        self.killed = False

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Call the server's tool, killing the server first on the planned call."""
        self.calls += 1
        if self.calls == self.kill_on and not self.killed:
            self.killed = self.connection.kill_server()
        return await self.inner.execute(args)


async def connect_file_server(
    runtime: RuntimeManager,
    workspace: Path,
    *,
    roles: Sequence[str],
    read_tool: str,
    timeout: float,
    kill_on: int | None,
) -> McpServerConnection:
    """Start ``mcp serve`` over stdio under the runtime's supervisor and register its
    file tools on the runtime's bus under their own names, granted to ``roles``; with
    ``kill_on``, the server is killed on that call of ``read_tool``."""
    from ..tools.mcp import McpServerOptions

    connection = await runtime.tool_bus.register_mcp_server(
        "files",
        supervisor=runtime.supervision,
        stdio=server_command(workspace),
        env={"PYTHONPATH": package_path()},
        roles=list(roles),
        options=McpServerOptions(prefix="", timeout=timeout, connect_timeout=30.0),
    )
    if kill_on is not None:
        bus = runtime.tool_bus
        bus.replace_tool(ServerKiller(bus.get_tool(read_tool), connection, kill_on=kill_on))
    return connection
