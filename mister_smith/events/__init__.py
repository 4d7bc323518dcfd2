"""Events: frozen records of what the system did, and the bus that routes them.

What is kept for later (the bus's history, the dead-letter log) is bounded by bytes:
:func:`bounded_payload` keeps a small payload as it is and a large one as a
:class:`PayloadPreview`.
"""

from ._bus import EventBus as EventBus
from ._bus import EventBusStatistics as EventBusStatistics
from ._bus import EventStream as EventStream
from ._bus import HandlerRegistration as HandlerRegistration
from ._bus import StreamStatistics as StreamStatistics
from ._payload import DEFAULT_PAYLOAD_LIMIT as DEFAULT_PAYLOAD_LIMIT
from ._payload import PayloadPreview as PayloadPreview
from ._payload import bounded_payload as bounded_payload
from ._payload import cut_text as cut_text
from ._payload import payload_size as payload_size
from ._records import AgentSpawned as AgentSpawned
from ._records import AgentStopped as AgentStopped
from ._records import ChildExited as ChildExited
from ._records import ChildStarted as ChildStarted
from ._records import CircuitStateChanged as CircuitStateChanged
from ._records import ComponentRecovered as ComponentRecovered
from ._records import ConfigReloaded as ConfigReloaded
from ._records import ContextSummarized as ContextSummarized
from ._records import DeadLetter as DeadLetter
from ._records import ErrorOccurred as ErrorOccurred
from ._records import Event as Event
from ._records import ExitKind as ExitKind
from ._records import HealthChanged as HealthChanged
from ._records import HeartbeatMissed as HeartbeatMissed
from ._records import LoopBlocked as LoopBlocked
from ._records import ResourcePoolExhausted as ResourcePoolExhausted
from ._records import ShutdownStuck as ShutdownStuck
from ._records import SupervisionDecision as SupervisionDecision
from ._records import SupervisorStopped as SupervisorStopped
from ._records import TaskCompleted as TaskCompleted
from ._records import TaskFailed as TaskFailed
from ._records import ToolCalled as ToolCalled
from ._records import ToolOutcome as ToolOutcome
from ._records import event_time as event_time

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "AgentSpawned",
    "AgentStopped",
    "ChildExited",
    "ChildStarted",
    "CircuitStateChanged",
    "ComponentRecovered",
    "ContextSummarized",
    "DeadLetter",
    "ErrorOccurred",
    "Event",
    "EventBus",
    "EventBusStatistics",
    "EventStream",
    "ExitKind",
    "HandlerRegistration",
    "HealthChanged",
    "HeartbeatMissed",
    "LoopBlocked",
    "PayloadPreview",
    "ResourcePoolExhausted",
    "ShutdownStuck",
    "StreamStatistics",
    "SupervisionDecision",
    "SupervisorStopped",
    "ConfigReloaded",
    "TaskCompleted",
    "TaskFailed",
    "ToolCalled",
    "ToolOutcome",
    "bounded_payload",
    "cut_text",
    "event_time",
    "payload_size",
]
