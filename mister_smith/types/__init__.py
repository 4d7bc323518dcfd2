"""Core types: typed identifiers, caller identities and the small enums shared across floors."""

from ._enums import Restart as Restart
from ._enums import StrategyKind as StrategyKind
from ._identity import Caller as Caller
from ._identity import CallerIdentity as CallerIdentity
from ._identity import IdentityAuthority as IdentityAuthority
from ._identity import IdentityStatistics as IdentityStatistics
from ._identity import RevocationListener as RevocationListener
from ._identity import Role as Role
from ._ids import TYPED_IDS as TYPED_IDS
from ._ids import ActorId as ActorId
from ._ids import AgentId as AgentId
from ._ids import NodeId as NodeId
from ._ids import TaskId as TaskId
from ._ids import ToolId as ToolId
from ._ids import label_uuid as label_uuid
from ._json import JsonProblem as JsonProblem
from ._json import MessageTypes as MessageTypes
from ._json import plain_json_problem as plain_json_problem
from ._json import strict_json_converter as strict_json_converter
from ._trace import TRACEPARENT as TRACEPARENT
from ._trace import format_traceparent as format_traceparent
from ._trace import parse_traceparent as parse_traceparent

__all__ = [
    "TRACEPARENT",
    "TYPED_IDS",
    "format_traceparent",
    "parse_traceparent",
    "plain_json_problem",
    "strict_json_converter",
    "ActorId",
    "AgentId",
    "Caller",
    "CallerIdentity",
    "IdentityAuthority",
    "JsonProblem",
    "MessageTypes",
    "IdentityStatistics",
    "NodeId",
    "Restart",
    "RevocationListener",
    "Role",
    "StrategyKind",
    "TaskId",
    "ToolId",
    "label_uuid",
]
