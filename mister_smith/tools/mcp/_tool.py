"""``McpTool``: one tool of an MCP server, registered on the bus like any other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._schema import ToolSchema
from ._catalog import RemoteTool

if TYPE_CHECKING:
    from ._connection import McpServerConnection


class McpTool:
    """A tool of an MCP server: calling it calls the server's tool over the connection.

    The bus checks permissions, validates the arguments against the imported schema and
    holds the deadline, as for any tool; the connection bounds the calls in flight and
    maps the server's answers and failures to our results and errors.

    Attributes:
        connection: The server's connection.
        remote: What the server said about the tool (name, description, schema issues).
        timeout: Its deadline in seconds (``None``: the bus's default).
    """

    idempotent = False
    """A remote tool's own hints are untrusted: the bus never runs it twice."""

    def __init__(
        self, connection: McpServerConnection, remote: RemoteTool, *, timeout: float | None
    ) -> None:
        self.connection = connection
        self.remote = remote
        self.timeout = timeout

    @property
    def name(self) -> str:
        """Its name on the bus (``<server>.<tool>`` by default)."""
        return self.remote.bus_name

    @property
    def description(self) -> str:
        """The server's description of it."""
        return self.remote.description

    @property
    def input_schema(self) -> ToolSchema:
        """Its arguments' schema, as far as our validator enforces it."""
        return self.remote.schema

    def __repr__(self) -> str:
        return f"<McpTool {self.name!r} of server {self.connection.name!r}>"

    async def execute(self, args: Mapping[str, Any]) -> object:
        """Call the server's tool with ``args`` and return its result."""
        return await self.connection.call_tool(self.remote.remote_name, args)
