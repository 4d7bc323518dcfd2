"""Model Context Protocol: MCP servers' tools on our bus, and our tools served over MCP.

Needs the ``mcp`` extra (``pip install 'mister-smith[mcp]'``): the official MCP Python
SDK does the protocol; this package adds what running it in a supervised system takes.

Client — :func:`register_mcp_server` (also ``ToolBus.register_mcp_server``) connects a
server over stdio (a supervised child process), streamable HTTP, or any transport, and
registers each of its tools as ``<server>.<tool>``: permissions deny by default like
every tool, arguments validated against the server's schema as far as our validator
enforces it (the rest reported as :class:`SchemaIssue` s, never silently dropped),
every call under the bus's deadline and at most ``max_concurrent_calls`` at once per
server. A dead server is restarted with backoff within its restart budget, a hung one
(an unanswered ping) too; its tools answer :class:`McpServerUnavailable` meanwhile.
Tool-list changes update the registry. Answers map to our results (text, JSON, binary
content by reference in a bounded :class:`BlobStore`) and errors (:class:`McpError`
and its subclasses), each with a size cap.

Server — :class:`McpToolServer` offers chosen bus tools and agents (as
:class:`~mister_smith.tools.AgentTool` s, their deadline honoured) to MCP clients over
stdio or streamable HTTP, every call made as one configured caller identity through
the same permission checks (``mister-smith mcp serve`` on the command line).
"""

from ._catalog import Catalog as Catalog
from ._catalog import RefusedTool as RefusedTool
from ._catalog import RemoteTool as RemoteTool
from ._catalog import SyncPlan as SyncPlan
from ._catalog import build_catalog as build_catalog
from ._catalog import plan_sync as plan_sync
from ._connection import McpServerConnection as McpServerConnection
from ._connection import McpServerState as McpServerState
from ._connection import McpServerStatistics as McpServerStatistics
from ._errors import McpBlobMissing as McpBlobMissing
from ._errors import McpConnectFailed as McpConnectFailed
from ._errors import McpError as McpError
from ._errors import McpProtocolError as McpProtocolError
from ._errors import McpResultTooLarge as McpResultTooLarge
from ._errors import McpServerHung as McpServerHung
from ._errors import McpServerUnavailable as McpServerUnavailable
from ._errors import McpToolFailed as McpToolFailed
from ._options import McpServerOptions as McpServerOptions
from ._options import SchemaMode as SchemaMode
from ._register import register_mcp_server as register_mcp_server
from ._results import Blob as Blob
from ._results import BlobStore as BlobStore
from ._schema_import import ImportedSchema as ImportedSchema
from ._schema_import import SchemaIssue as SchemaIssue
from ._schema_import import import_schema as import_schema
from ._server import McpToolServer as McpToolServer
from ._tool import McpTool as McpTool
from ._transport import CustomTransport as CustomTransport
from ._transport import HttpEndpoint as HttpEndpoint
from ._transport import StdioCommand as StdioCommand
from ._transport import TransportFactory as TransportFactory

__all__ = [
    "Blob",
    "BlobStore",
    "Catalog",
    "CustomTransport",
    "HttpEndpoint",
    "ImportedSchema",
    "McpBlobMissing",
    "McpConnectFailed",
    "McpError",
    "McpProtocolError",
    "McpResultTooLarge",
    "McpServerConnection",
    "McpServerHung",
    "McpServerOptions",
    "McpServerState",
    "McpServerStatistics",
    "McpServerUnavailable",
    "McpTool",
    "McpToolFailed",
    "McpToolServer",
    "RefusedTool",
    "RemoteTool",
    "SchemaIssue",
    "SchemaMode",
    "StdioCommand",
    "SyncPlan",
    "TransportFactory",
    "build_catalog",
    "import_schema",
    "plan_sync",
    "register_mcp_server",
]
