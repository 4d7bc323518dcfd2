"""Frozen event records announced on the :class:`~mister_smith.events.EventBus`."""

from __future__ import annotations

import enum
import time
import uuid
from typing import Any

import attrs
import trio

from ..errors import ErrorSeverity, RecoveryAction
from ..types import ActorId, TaskId, label_uuid


def new_event_id() -> uuid.UUID:
    """A random (version 4) UUID for an event, without a system call (see
    :func:`~mister_smith.types.label_uuid`): every supervision decision emits several
    events, and event ids are unique labels, not secrets."""
    return label_uuid()


def event_time() -> float:
    """The current time on the Trio clock (so virtual time in tests).

    Outside a Trio run (building an event in plain sync code) it falls back to
    :func:`time.monotonic`.
    """
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event.

    Attributes:
        source: Who emitted it (a supervisor, actor or component name).
        timestamp: Trio clock time at creation (virtual under a mock clock).
        event_id: Unique id of this event.
        correlation_id: Groups the events of one conversation or request.
        causation_id: The ``event_id`` of the event that caused this one.
    """

    source: str = ""
    timestamp: float = attrs.field(factory=event_time)
    event_id: uuid.UUID = attrs.field(factory=new_event_id)
    correlation_id: str | None = None
    causation_id: uuid.UUID | None = None

    @property
    def event_type(self) -> str:
        """The event's type name, e.g. ``"AgentSpawned"``."""
        return type(self).__name__


# --- agents, actors, tasks -----------------------------------------------------------


@attrs.frozen(kw_only=True)
class AgentSpawned(Event):
    """An actor or agent was spawned (by the actor system or a team)."""

    actor_id: ActorId
    name: str
    role: str | None = None


@attrs.frozen(kw_only=True)
class AgentStopped(Event):
    """An actor or agent stopped for good (not a restart)."""

    actor_id: ActorId
    name: str
    reason: str


@attrs.frozen(kw_only=True)
class TaskCompleted(Event):
    """A task finished with a result (``usage`` counts model tokens where relevant)."""

    task_id: TaskId
    result: Any = None
    agent: str | None = None
    duration: float = 0.0
    usage: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TaskFailed(Event):
    """A task ended with an error."""

    task_id: TaskId
    error_type: str
    error: str
    agent: str | None = None


class ToolOutcome(enum.Enum):
    """How a tool call ended."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DENIED = "denied"
    INVALID = "invalid"
    NOT_FOUND = "not_found"


@attrs.frozen(kw_only=True)
class ToolCalled(Event):
    """A tool call ended, whatever its outcome: announced by the tool bus (``source``:
    the bus's name), or by an agent that refused it before the bus (``source``: the
    agent's name, outcome ``DENIED``: a tool outside its ``allowed_tools``)."""

    tool: str
    caller: str
    outcome: ToolOutcome
    duration: float = 0.0
    error: str | None = None


@attrs.frozen(kw_only=True)
class ErrorOccurred(Event):
    """An error was observed by a component (recorded even when it is recovered)."""

    component: str
    error_type: str
    message: str
    severity: ErrorSeverity


@attrs.frozen(kw_only=True)
class ContextSummarized(Event):
    """An agent folded the oldest part of its context window into its summary."""

    agent: str
    summarized_messages: int
    summary: str


# --- supervision ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SupervisionDecision(Event):
    """A supervisor decided what to do about a child's exit.

    Attributes:
        supervisor: The deciding supervisor's name.
        child: The child's name.
        error_type: Class name of the error (``""`` for a normal return).
        error: The error's text.
        severity: The error's severity.
        action: What the supervisor does about it.
        attempt: For retries, which attempt this is (1-based); else 0.
    """

    supervisor: str
    child: str
    error_type: str
    error: str
    severity: ErrorSeverity
    action: RecoveryAction
    attempt: int = 0


@attrs.frozen(kw_only=True)
class ComponentRecovered(Event):
    """A child is running again after a recovery action."""

    supervisor: str
    child: str
    action: RecoveryAction
    restarts: int


@attrs.frozen(kw_only=True)
class ChildStarted(Event):
    """A supervised child started (first start or restart)."""

    supervisor: str
    child: str


class ExitKind(enum.Enum):
    """How a supervised child's run ended."""

    RETURNED = "returned"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class ChildExited(Event):
    """A supervised child's run ended."""

    supervisor: str
    child: str
    exit: ExitKind
    error_type: str = ""


@attrs.frozen(kw_only=True)
class SupervisorStopped(Event):
    """A supervisor finished: ``reason`` is ``"normal"``, ``"shutdown"`` or the error."""

    supervisor: str
    reason: str


@attrs.frozen(kw_only=True)
class ShutdownStuck(Event):
    """A child did not finish within its shutdown grace period and cancellation."""

    supervisor: str
    child: str
    waited: float


@attrs.frozen(kw_only=True)
class CircuitStateChanged(Event):
    """A circuit breaker moved between closed, open and half-open."""

    breaker: str
    old_state: str
    new_state: str


@attrs.frozen(kw_only=True)
class HeartbeatMissed(Event):
    """A monitored child missed its heartbeats for longer than allowed."""

    child: str
    silent_for: float


# --- messages, resources, health ------------------------------------------------------


@attrs.frozen(kw_only=True)
class DeadLetter(Event):
    """A message that was accepted but will never be handled, and why."""

    actor: str
    message: Any
    reason: str


@attrs.frozen(kw_only=True)
class LoopBlocked(Event):
    """A task step held the Trio loop longer than the blocking threshold."""

    task: str
    duration: float
    tool: str | None = None


@attrs.frozen(kw_only=True)
class ResourcePoolExhausted(Event):
    """A pool had nothing free within the acquire timeout."""

    pool: str
    waited: float


@attrs.frozen(kw_only=True)
class HealthChanged(Event):
    """A health check's status changed."""

    component: str
    status: str
    reason: str = ""


@attrs.frozen(kw_only=True)
class ConfigReloaded(Event):
    """A running runtime applied a new configuration (``RuntimeManager.reconfigure``,
    SIGHUP, or a ``Reload`` recovery).

    Attributes:
        changed: The key paths whose values changed (``supervision.backoff_initial``...),
            sorted; empty when the new configuration equals the old one.
        trigger: What asked for it: ``"reconfigure"``, ``"signal"`` or ``"reload"``.
    """

    changed: tuple[str, ...]
    trigger: str = "reconfigure"
