"""Error taxonomy: every failure has a severity and a recovery strategy.

The six kinds and their defaults follow the design doc exactly:

==================  ===========  ========================
kind                severity     recovery
==================  ===========  ========================
RuntimeFault        CRITICAL     Restart
SupervisionError    HIGH         Escalate
ConfigError         MEDIUM       Reload
ResourceError       MEDIUM       Retry(3 attempts, 1 s)
NetworkError        LOW          CircuitBreaker
PersistenceError    HIGH         Failover
==================  ===========  ========================
"""

from ._identity import DuplicateRole as DuplicateRole
from ._identity import InvalidGrant as InvalidGrant
from ._identity import UnknownRole as UnknownRole
from ._severity import ErrorSeverity as ErrorSeverity
from ._severity import RecoveryAction as RecoveryAction
from ._severity import RecoveryStrategy as RecoveryStrategy
from ._taxonomy import ActorCrashed as ActorCrashed
from ._taxonomy import ActorError as ActorError
from ._taxonomy import ActorNameTaken as ActorNameTaken
from ._taxonomy import ActorNotFound as ActorNotFound
from ._taxonomy import ActorStopped as ActorStopped
from ._taxonomy import AskTimeout as AskTimeout
from ._taxonomy import CheckpointConflict as CheckpointConflict
from ._taxonomy import CheckpointUnreadable as CheckpointUnreadable
from ._taxonomy import CircuitOpenError as CircuitOpenError
from ._taxonomy import ConfigError as ConfigError
from ._taxonomy import DispatchQueueFull as DispatchQueueFull
from ._taxonomy import DurabilityUnavailable as DurabilityUnavailable
from ._taxonomy import ErrorClassification as ErrorClassification
from ._taxonomy import EscalatedError as EscalatedError
from ._taxonomy import EventError as EventError
from ._taxonomy import EventTimeout as EventTimeout
from ._taxonomy import HandlerTimeout as HandlerTimeout
from ._taxonomy import HandlingInterrupted as HandlingInterrupted
from ._taxonomy import HeartbeatTimeout as HeartbeatTimeout
from ._taxonomy import InvalidStoreRequest as InvalidStoreRequest
from ._taxonomy import InvalidToolInput as InvalidToolInput
from ._taxonomy import InvalidToolName as InvalidToolName
from ._taxonomy import JournalDecodeError as JournalDecodeError
from ._taxonomy import MailboxFull as MailboxFull
from ._taxonomy import MessageNotDurable as MessageNotDurable
from ._taxonomy import MessageRejected as MessageRejected
from ._taxonomy import MisterSmithError as MisterSmithError
from ._taxonomy import NetworkError as NetworkError
from ._taxonomy import NoRouteError as NoRouteError
from ._taxonomy import PersistenceError as PersistenceError
from ._taxonomy import PoolExhausted as PoolExhausted
from ._taxonomy import RecordTooLarge as RecordTooLarge
from ._taxonomy import ResourceError as ResourceError
from ._taxonomy import ResponseBodyRejected as ResponseBodyRejected
from ._taxonomy import RestartIntensityExceeded as RestartIntensityExceeded
from ._taxonomy import RuntimeFault as RuntimeFault
from ._taxonomy import StoreClosed as StoreClosed
from ._taxonomy import StoreCorrupted as StoreCorrupted
from ._taxonomy import StoreLocked as StoreLocked
from ._taxonomy import StoreUnavailable as StoreUnavailable
from ._taxonomy import StoreWriteFailed as StoreWriteFailed
from ._taxonomy import StreamError as StreamError
from ._taxonomy import SupervisionError as SupervisionError
from ._taxonomy import TaskError as TaskError
from ._taxonomy import TaskQueueFull as TaskQueueFull
from ._taxonomy import TaskTimeout as TaskTimeout
from ._taxonomy import ToolApprovalDenied as ToolApprovalDenied
from ._taxonomy import ToolError as ToolError
from ._taxonomy import ToolExecutionFailed as ToolExecutionFailed
from ._taxonomy import ToolNotFound as ToolNotFound
from ._taxonomy import ToolPermissionDenied as ToolPermissionDenied
from ._taxonomy import ToolQuotaExceeded as ToolQuotaExceeded
from ._taxonomy import ToolTimeout as ToolTimeout
from ._taxonomy import classify_error as classify_error
from ._taxonomy import root_cause as root_cause
from ._taxonomy import unwrap_single as unwrap_single

__all__ = [
    "HandlingInterrupted",
    "MessageRejected",
    "NoRouteError",
    "ActorCrashed",
    "ActorNameTaken",
    "ActorNotFound",
    "HandlerTimeout",
    "CircuitOpenError",
    "HeartbeatTimeout",
    "ActorError",
    "ActorStopped",
    "AskTimeout",
    "ConfigError",
    "ErrorClassification",
    "ErrorSeverity",
    "DispatchQueueFull",
    "EscalatedError",
    "EventError",
    "EventTimeout",
    "InvalidToolInput",
    "MailboxFull",
    "MisterSmithError",
    "NetworkError",
    "PersistenceError",
    "StoreClosed",
    "StoreUnavailable",
    "StoreLocked",
    "StoreCorrupted",
    "StoreWriteFailed",
    "InvalidStoreRequest",
    "RecordTooLarge",
    "CheckpointConflict",
    "CheckpointUnreadable",
    "JournalDecodeError",
    "MessageNotDurable",
    "DurabilityUnavailable",
    "PoolExhausted",
    "RecoveryAction",
    "RecoveryStrategy",
    "ResourceError",
    "ResponseBodyRejected",
    "RestartIntensityExceeded",
    "RuntimeFault",
    "StreamError",
    "SupervisionError",
    "TaskError",
    "TaskQueueFull",
    "TaskTimeout",
    "ToolError",
    "ToolExecutionFailed",
    "ToolNotFound",
    "ToolPermissionDenied",
    "ToolQuotaExceeded",
    "InvalidToolName",
    "ToolApprovalDenied",
    "ToolTimeout",
    "DuplicateRole",
    "InvalidGrant",
    "UnknownRole",
    "classify_error",
    "root_cause",
    "unwrap_single",
]
