"""Mapping what the SDK raises to our typed MCP errors."""

from __future__ import annotations

import mcp_types
from mcp.shared.exceptions import MCPError

from ...errors import InvalidToolInput, ToolError, unwrap_single
from ._errors import (
    McpConnectFailed,
    McpError,
    McpProtocolError,
    McpServerUnavailable,
)

MESSAGE_CHARS = 500
"""Characters of a server's error message kept in ours."""


def _short(text: object) -> str:
    text = str(text)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."


def call_error(server: str, tool: str, error: MCPError) -> ToolError:
    """Our error for a JSON-RPC error answering a call of ``tool``."""
    message = _short(error.message)
    if error.code == mcp_types.CONNECTION_CLOSED:
        return McpServerUnavailable(
            f"MCP server {server!r} went away during the call of {tool!r}: {message}"
        )
    if error.code == mcp_types.INVALID_PARAMS:
        return InvalidToolInput(f"MCP tool {tool!r} of {server!r} refused its arguments: {message}")
    return McpProtocolError(
        f"MCP server {server!r} answered the call of {tool!r} with error {error.code}: {message}",
        code=error.code,
    )


def connection_failure(server: str, error: BaseException, *, connected: bool) -> BaseException:
    """Our error for a connection that failed (``connected``: it had been up).

    Errors that are ours already pass through; anything that is not an ``Exception``
    (a cancellation) is returned as is, to be re-raised untouched.
    """
    single = unwrap_single(error)
    if not isinstance(single, Exception):
        return error
    error = single
    if isinstance(error, McpError):
        return error
    kind = McpServerUnavailable if connected else McpConnectFailed
    if isinstance(error, MCPError):
        text = f"error {error.code}: {_short(error.message)}"
    elif isinstance(error, TimeoutError):
        text = f"no answer in time ({_short(error) or type(error).__name__})"
    else:
        text = f"{type(error).__name__}: {_short(error)}"
    verb = "lost its connection" if connected else "could not be connected"
    return kind(f"MCP server {server!r} {verb}: {text}")
