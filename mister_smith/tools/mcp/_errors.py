"""Errors of MCP tool calls: each is a ``ToolError`` (and the fitting builtin).

::

    ToolError
    └── McpError                                  anything an MCP server did wrong
        ├── McpServerUnavailable (ConnectionError)  not connected: starting, restarting,
        │   │                                       stopped for good, or died mid-call
        │   └── McpConnectFailed                  the first connection never came up
        ├── McpServerHung (TimeoutError)            no answer to a ping within its bound
        ├── McpProtocolError                      a JSON-RPC error or a malformed answer
        ├── McpToolFailed (ToolExecutionFailed)   the tool answered ``isError: true``
        ├── McpResultTooLarge (ToolQuotaExceeded) a result or a message past its cap
        └── McpBlobMissing (LookupError)          an image or blob reference not kept

They live with the MCP package rather than in ``mister_smith.errors`` because they only
exist when the optional ``mcp`` extra is installed; each also subclasses the generic
tool error a caller already handles (``ToolExecutionFailed``, ``ToolQuotaExceeded``).
"""

from __future__ import annotations

from ...errors import ToolError, ToolExecutionFailed, ToolQuotaExceeded


class McpError(ToolError):
    """An MCP server (or the connection to it) failed a call; see the subclasses."""


class McpServerUnavailable(McpError, ConnectionError):
    """The server is not connected: still starting, restarting after a crash, stopped for
    good after spending its restart budget, closed, or it died during the call."""


class McpConnectFailed(McpServerUnavailable):
    """The first connection to a server failed (the command could not start, the URL did
    not answer, the handshake or the first tool listing failed or took too long)."""


class McpServerHung(McpError, TimeoutError):
    """The server did not answer a heartbeat ping within its bound: it is restarted."""


class McpProtocolError(McpError):
    """The server answered with a JSON-RPC error, or with something that is not a valid
    MCP answer (malformed JSON, a result that breaks the tool's output schema).

    Attributes:
        code: The JSON-RPC error code, when the server sent one.
    """

    def __init__(self, *args: object, code: int | None = None) -> None:
        super().__init__(*args)
        self.code = code


class McpToolFailed(McpError, ToolExecutionFailed):
    """The tool ran and reported a failure (``isError: true``); the message is its text."""


class McpResultTooLarge(McpError, ToolQuotaExceeded):
    """A tool result, or one message from the server, is larger than its cap."""


class McpBlobMissing(McpError, LookupError):
    """No blob is kept under that reference (never made, or dropped to stay in bounds)."""
