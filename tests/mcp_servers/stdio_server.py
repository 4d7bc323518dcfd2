"""An MCP server written with the official SDK, run over stdio by the MCP tests.

Its tools exercise what a client must survive: failures, slow and hung calls, a crash,
large and binary results, and a tool list that changes. It imports
nothing of mister_smith, so it starts as fast as the SDK allows.
"""

from __future__ import annotations

import base64
import os
import sys
import time

import anyio
import mcp_types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("test-stdio", log_level="WARNING")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(message: str) -> str:
    """Return the message."""
    return message


@server.tool()
def fail(reason: str) -> str:
    """Always fail with the reason."""
    raise ValueError(reason)


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await anyio.sleep(seconds)
    return "slept"


@server.tool()
async def freeze() -> str:
    """Block the server's event loop for good: it stops answering anything (a hang)."""
    sys.stderr.write("freezing\n")
    sys.stderr.flush()
    time.sleep(3600)
    return "never"


@server.tool()
def crash(status: int = 3) -> str:
    """Exit the server process at once."""
    sys.stderr.write(f"crashing with status {status}\n")
    sys.stderr.flush()
    os._exit(status)


@server.tool()
def big(size: int) -> str:
    """Return ``size`` characters."""
    return "y" * size


@server.tool(structured_output=False)
def pixel() -> list[mcp_types.ContentBlock]:
    """Return a caption and a 1x1 PNG image."""
    return [
        mcp_types.TextContent(text="a pixel"),
        mcp_types.ImageContent(data=base64.b64encode(PNG).decode(), mime_type="image/png"),
    ]


@server.tool()
def whoami() -> int:
    """The server's process id (changes when it is restarted)."""
    return os.getpid()


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool ``shout`` and tell the client the tool list changed."""

    def shout(message: str) -> str:
        """Upper-case the message."""
        return message.upper()

    server.add_tool(shout, name="shout")
    await ctx.request_context.session.send_tool_list_changed()
    return "grown"


@server.tool()
async def shrink(ctx: Context) -> str:
    """Remove the tool ``echo`` and tell the client the tool list changed."""
    server.remove_tool("echo")
    await ctx.request_context.session.send_tool_list_changed()
    return "shrunk"


if __name__ == "__main__":
    server.run("stdio")
