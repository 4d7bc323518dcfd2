"""Tools: typed, validated, permissioned, deadline-bound calls that never block the loop.

- :class:`Tool` is the protocol; :func:`tool` builds one from a typed ``async def``
  (schema from the signature, description from the docstring). Sync functions are
  refused unless declared ``blocking=True``; they then run in worker threads
  (:func:`run_blocking`) under the bus's limiter and are abandoned on timeout.
- :class:`ToolBus` registers tools and runs every call through lookup, permissions,
  :class:`ToolSchema` validation, a cancel-scope deadline, metrics and a ``ToolCalled``
  event. Permissions deny by default and are keyed by an unforgeable
  :class:`~mister_smith.types.CallerIdentity` the runtime mints for every actor; a
  plain name is an unauthenticated caller that only open tools admit.
- :class:`BlockingDetector` / :func:`monitor_blocking` report task steps that block the
  loop as ``LoopBlocked`` events naming the task and tool.
- Calls of tools registered with ``approval=True`` (or picked by an approval policy)
  wait, bounded, for a person's decision in :class:`Approvals`.
- Built-ins: :class:`EchoTool`, workspace-confined file tools (:class:`Workspace`),
  :class:`HttpGetTool`, :class:`CommandTool`, and :class:`AgentTool` wrapping anything
  :class:`Askable`.
- MCP (the ``mcp`` extra): ``ToolBus.register_mcp_server`` puts an MCP server's tools on
  the bus, supervised; :mod:`mister_smith.tools.mcp` also serves bus tools over MCP.
- Untrusted HTTP bodies are read with :func:`read_decoded_body` (a cap on decoded bytes,
  one content-encoding, a compression-ratio limit); destinations are checked with
  :class:`HostAllowList`, :class:`InternalAllowList` and :func:`address_problem`.
"""

from ._addresses import HostAllowList as HostAllowList
from ._addresses import InternalAllowList as InternalAllowList
from ._addresses import Resolver as Resolver
from ._addresses import address_problem as address_problem
from ._agent import AgentTool as AgentTool
from ._agent import Askable as Askable
from ._agent import Delegate as Delegate
from ._approvals import DEFAULT_APPROVAL_TIMEOUT as DEFAULT_APPROVAL_TIMEOUT
from ._approvals import ApprovalDecided as ApprovalDecided
from ._approvals import ApprovalNotFound as ApprovalNotFound
from ._approvals import ApprovalOutcome as ApprovalOutcome
from ._approvals import ApprovalPolicy as ApprovalPolicy
from ._approvals import ApprovalRequest as ApprovalRequest
from ._approvals import ApprovalRequested as ApprovalRequested
from ._approvals import Approvals as Approvals
from ._approvals import Verdict as Verdict
from ._arguments import AllowedCommand as AllowedCommand
from ._arguments import ArgumentPolicy as ArgumentPolicy
from ._blocking import BlockedStep as BlockedStep
from ._blocking import BlockingDetector as BlockingDetector
from ._blocking import BlockingStatistics as BlockingStatistics
from ._blocking import LoopBlockedError as LoopBlockedError
from ._blocking import monitor_blocking as monitor_blocking
from ._body import DECODABLE_ENCODINGS as DECODABLE_ENCODINGS
from ._body import BodyDecoder as BodyDecoder
from ._body import BodyLimits as BodyLimits
from ._body import DecodedBody as DecodedBody
from ._body import content_coding as content_coding
from ._body import read_decoded_body as read_decoded_body
from ._bus import DuplicateTool as DuplicateTool
from ._bus import ToolBus as ToolBus
from ._bus import ToolBusStatistics as ToolBusStatistics
from ._bus import ToolSpec as ToolSpec
from ._bus import ToolStatistics as ToolStatistics
from ._command import CommandTool as CommandTool
from ._context import ToolCallContext as ToolCallContext
from ._context import current_tool_call as current_tool_call
from ._context import run_blocking as run_blocking
from ._echo import EchoTool as EchoTool
from ._files import ListDirectoryTool as ListDirectoryTool
from ._files import ReadFileTool as ReadFileTool
from ._files import WriteFileTool as WriteFileTool
from ._http import HttpGetTool as HttpGetTool
from ._permissions import Grantee as Grantee
from ._permissions import PolicyName as PolicyName
from ._permissions import ToolPolicy as ToolPolicy
from ._schema import SchemaViolation as SchemaViolation
from ._schema import ToolSchema as ToolSchema
from ._signature import Param as Param
from ._signature import schema_for_type as schema_for_type
from ._tool import FunctionTool as FunctionTool
from ._tool import Tool as Tool
from ._tool import tool as tool
from ._workspace import Workspace as Workspace
from ._wrapped import WrappedTool as WrappedTool

__all__ = [
    "DEFAULT_APPROVAL_TIMEOUT",
    "ApprovalDecided",
    "ApprovalNotFound",
    "ApprovalOutcome",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalRequested",
    "Approvals",
    "Verdict",
    "WrappedTool",
    "AgentTool",
    "AllowedCommand",
    "ArgumentPolicy",
    "Askable",
    "BlockedStep",
    "BlockingDetector",
    "BlockingStatistics",
    "BodyDecoder",
    "BodyLimits",
    "DECODABLE_ENCODINGS",
    "DecodedBody",
    "CommandTool",
    "Delegate",
    "DuplicateTool",
    "EchoTool",
    "FunctionTool",
    "Grantee",
    "HostAllowList",
    "HttpGetTool",
    "InternalAllowList",
    "ListDirectoryTool",
    "LoopBlockedError",
    "Param",
    "PolicyName",
    "ReadFileTool",
    "Resolver",
    "SchemaViolation",
    "Tool",
    "ToolBus",
    "ToolBusStatistics",
    "ToolCallContext",
    "ToolPolicy",
    "ToolSchema",
    "ToolSpec",
    "ToolStatistics",
    "Workspace",
    "WriteFileTool",
    "address_problem",
    "content_coding",
    "current_tool_call",
    "monitor_blocking",
    "read_decoded_body",
    "run_blocking",
    "schema_for_type",
    "tool",
]
