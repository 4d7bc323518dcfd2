"""The ``MisterSmithError`` taxonomy: every error knows its severity and recovery."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ._severity import ErrorSeverity, RecoveryStrategy

_LIGHT_RETRY = RecoveryStrategy.Retry(max_attempts=1, delay=0.1)


class MisterSmithError(Exception):
    """Root of every error raised by mister_smith.

    Each class carries a default :attr:`severity` and :attr:`recovery_strategy`
    (the design doc's mapping); a subclass may change the defaults and an instance may
    override both with the keyword arguments.
    """

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.HIGH
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Escalate()

    severity: ErrorSeverity
    recovery_strategy: RecoveryStrategy

    def __init__(
        self,
        *args: object,
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args)
        self.severity = type(self).default_severity if severity is None else severity
        self.recovery_strategy = (
            type(self).default_recovery if recovery_strategy is None else recovery_strategy
        )


# --- the design doc's six kinds -------------------------------------------------------


class RuntimeFault(MisterSmithError):
    """A failure of running code (also what any non-framework exception counts as)."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.CRITICAL
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Restart()


class SupervisionError(MisterSmithError):
    """A supervisor could not keep its children running."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.HIGH
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Escalate()


class ConfigError(MisterSmithError, ValueError):
    """Configuration is missing, malformed or inconsistent."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.MEDIUM
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Reload()


class ResourceError(MisterSmithError):
    """A bounded resource (pool, slot, memory) is not available."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.MEDIUM
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Retry(max_attempts=3, delay=1.0)


class NetworkError(MisterSmithError, ConnectionError):
    """A remote peer or service could not be reached or answered badly."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.LOW
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.CircuitBreaker()


class PersistenceError(MisterSmithError):
    """Durable state could not be read or written."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.HIGH
    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Failover()


# --- the wider design's kinds (light retry: 1 attempt, 100 ms) -------------------------


class ActorError(MisterSmithError):
    """An actor could not accept or process a message."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.MEDIUM
    default_recovery: ClassVar[RecoveryStrategy] = _LIGHT_RETRY


class TaskError(MisterSmithError):
    """An async task failed, timed out or could not be queued."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.LOW
    default_recovery: ClassVar[RecoveryStrategy] = _LIGHT_RETRY


class StreamError(MisterSmithError):
    """A stream-processing stage failed."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.MEDIUM
    default_recovery: ClassVar[RecoveryStrategy] = _LIGHT_RETRY


class EventError(MisterSmithError):
    """An event could not be delivered or handled."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.LOW
    default_recovery: ClassVar[RecoveryStrategy] = _LIGHT_RETRY


class ToolError(MisterSmithError):
    """A tool call was refused or failed."""

    default_severity: ClassVar[ErrorSeverity] = ErrorSeverity.LOW
    default_recovery: ClassVar[RecoveryStrategy] = _LIGHT_RETRY


# --- specific errors -------------------------------------------------------------------


class PoolExhausted(ResourceError):
    """A pool or bounded slot set had nothing free within the allowed wait."""


class RestartIntensityExceeded(SupervisionError):
    """A supervisor saw more restarts than ``max_restarts`` within ``restart_window``.

    Raised by the supervisor that gave up. For its parent that is one failing child
    like any other, so its default recovery is ``Restart`` (OTP: a child supervisor
    that terminates is restarted under the parent's own intensity): failures climb
    one level at a time, and only the top supervisor giving up ends the tree.
    """

    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Restart()


class EscalatedError(SupervisionError):
    """A child's failure asked to be escalated; the supervisor fails with this.

    The child's error is ``__cause__``; :attr:`supervisor` and :attr:`child` name where
    it happened. Like :class:`RestartIntensityExceeded`, its default recovery is
    ``Restart``: the parent restarts the supervisor that gave up, counted in its own
    intensity (declare ``recovery=RecoveryStrategy.Escalate()`` on the nested
    supervisor to pass a failure further up at once).
    """

    default_recovery: ClassVar[RecoveryStrategy] = RecoveryStrategy.Restart()

    def __init__(
        self,
        *args: object,
        supervisor: str = "",
        child: str = "",
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.supervisor = supervisor
        self.child = child


class HeartbeatTimeout(RuntimeFault, TimeoutError):
    """A supervised child stopped sending heartbeats; it is handled like a crash."""


class CircuitOpenError(NetworkError):
    """The circuit breaker is open (or its half-open probes are all in flight).

    :attr:`retry_at` is the Trio-clock time at which it will let a probe through.
    """

    def __init__(
        self,
        *args: object,
        retry_at: float = 0.0,
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.retry_at = retry_at


class MailboxFull(ActorError):
    """``tell_nowait`` found the actor's mailbox at capacity."""


class DispatchQueueFull(ActorError):
    """``MessageBus.submit`` found the group's priority queue at its bound."""


class ActorStopped(ActorError):
    """The actor has stopped for good (or was never running).

    Raised by ``tell``/``ask`` when the message was not accepted, and by an ``ask``
    whose accepted message was dead-lettered because the actor stopped before (or
    while) handling it.
    """


class ActorCrashed(ActorError):
    """The actor crashed while handling this ``ask``'s message; the cause is ``__cause__``."""


class HandlerTimeout(ActorError, TimeoutError):
    """An actor's handler ran past its per-message deadline (counts as a failure)."""


class ActorNameTaken(ActorError, ValueError):
    """An actor with that name is already registered in the actor system."""


class ActorNotFound(ActorError, LookupError):
    """No actor is registered under that name."""


class HandlingInterrupted(ActorError):
    """The actor was stopped or restarted by its supervisor while handling this message.

    The message had been accepted; it is dead-lettered. Whether the actor lives on
    depends on why it was interrupted (a sibling's restart, or a stop).
    """


class MessageRejected(ActorError):
    """A message was refused before its handler saw it (e.g. by middleware).

    The actor keeps running: the message is dead-lettered and an ``ask`` raises this.
    """


class NoRouteError(ActorError, LookupError):
    """No live member of the group can take the message (e.g. none has the capability)."""


class AskTimeout(ActorError, TimeoutError):
    """``ask`` did not get a reply before its deadline (queueing and reply included)."""


class EventTimeout(EventError, TimeoutError):
    """``wait_for_event`` saw no matching event before its timeout."""


class TaskTimeout(TaskError, TimeoutError):
    """A task ran past its deadline and was cancelled."""


class TaskQueueFull(TaskError):
    """The task executor's queue is at capacity."""


class ToolNotFound(ToolError, LookupError):
    """No tool is registered under that name."""


class ToolPermissionDenied(ToolError, PermissionError):
    """The caller is not granted that tool."""


class InvalidToolInput(ToolError, ValueError):
    """The arguments do not match the tool's schema; the tool was not called."""


class ToolTimeout(ToolError, TimeoutError):
    """The tool call ran past its deadline and was cancelled (or abandoned)."""


class ToolExecutionFailed(ToolError):
    """The tool raised; the original exception is ``__cause__``."""


class InvalidToolName(ToolError, ValueError):
    """A tool name models cannot call: APIs take ``^[a-zA-Z0-9_-]{1,64}$`` (a dot is
    accepted and mapped to ``_`` on the wire); refused when the tool is registered."""


class ToolApprovalDenied(ToolPermissionDenied):
    """A tool that needs a human's approval was denied it (or the wait for an answer
    ran out, which counts as a denial); the tool was not run."""


class ToolQuotaExceeded(ToolError):
    """The call would take a tool past a size limit (a file's cap, a workspace's quota)."""


class ResponseBodyRejected(ToolError, ValueError):
    """An HTTP response body was refused while it was read: stacked or unknown
    content-encodings, or a decompression ratio past the limit (a compression bomb)."""


class StoreClosed(PersistenceError):
    """The store was closed (by its owner) before the operation could run; nothing of it
    was written."""


class StoreUnavailable(PersistenceError):
    """The store cannot be opened or used: its file is unreadable, locked or damaged."""


class StoreLocked(StoreUnavailable):
    """Another process holds the store open (one process writes a store at a time)."""


class StoreCorrupted(StoreUnavailable):
    """The file is not a store this version can read (damaged, foreign or newer)."""


class StoreWriteFailed(PersistenceError):
    """The transaction holding the operation failed and was rolled back: none of the
    operations committed with it took effect. The store's own error is ``__cause__``."""


class InvalidStoreRequest(PersistenceError, ValueError):
    """A store operation was called with a bad argument (a name, a payload, a limit);
    nothing was written. The message names the argument and what was wrong."""


class RecordTooLarge(InvalidStoreRequest):
    """A payload, checkpoint or journal entry is larger than ``max_record_bytes``."""


class CheckpointConflict(PersistenceError):
    """A checkpoint write or delete expected a version the checkpoint no longer has.

    :attr:`key` names the checkpoint, :attr:`expected` the version the caller gave and
    :attr:`actual` the stored one (``None`` when there is none). Nothing was written.
    """

    def __init__(
        self,
        *args: object,
        key: str = "",
        expected: int | None = None,
        actual: int | None = None,
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.key = key
        self.expected = expected
        self.actual = actual


class JournalDecodeError(PersistenceError):
    """A journal entry could not be turned back into an event (unknown type or fields)."""


class CheckpointUnreadable(PersistenceError, ValueError):
    """A stored checkpoint is not what its reader expects (damaged, or written by another
    version); the message names the key and what did not match."""


class MessageNotDurable(PersistenceError, ValueError):
    """A message sent to a durable actor cannot be kept in its durable mailbox: its type
    is not registered with the actor system's message codec, or it holds values JSON
    cannot carry. Raised by ``tell``/``ask`` before anything was written or accepted."""


class DurabilityUnavailable(PersistenceError):
    """Durability was asked for where it cannot be given: a durable spawn in an actor
    system without a store, or ``tell_nowait`` to a durable actor (a durable send must
    wait for its commit: use ``await tell``)."""


@attrs.frozen
class ErrorClassification:
    """What :func:`classify_error` concluded about an exception."""

    kind: type[MisterSmithError]
    severity: ErrorSeverity
    recovery_strategy: RecoveryStrategy


def classify_error(error: BaseException) -> ErrorClassification:
    """Say how severe ``error`` is and how to recover from it.

    A :class:`MisterSmithError` speaks for itself (including per-instance overrides).
    Otherwise builtin connection errors count as :class:`NetworkError`, ``MemoryError``
    as :class:`ResourceError`, and anything else raised by user code (``ValueError``,
    ``KeyError``, ...) as a :class:`RuntimeFault`. An exception group holding a single
    exception is classified by that exception.
    """
    error = unwrap_single(error)
    if isinstance(error, MisterSmithError):
        kind: type[MisterSmithError] = type(error)
        return ErrorClassification(kind, error.severity, error.recovery_strategy)
    if isinstance(error, ConnectionError):
        kind = NetworkError
    elif isinstance(error, MemoryError):
        kind = ResourceError
    else:
        kind = RuntimeFault
    return ErrorClassification(kind, kind.default_severity, kind.default_recovery)


def root_cause(error: BaseException) -> BaseException:
    """The original failure behind ``error``: follows ``__cause__`` (and single-exception
    groups) down to the first error that has no cause of its own.

    A supervisor that gives up raises an :class:`EscalatedError` or
    :class:`RestartIntensityExceeded` caused by its child's failure, which may itself be
    such an error from a nested supervisor; this finds the child's own error at the
    bottom of that chain.
    """
    seen: set[int] = set()
    error = unwrap_single(error)
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = unwrap_single(error.__cause__)
    return error


def unwrap_single(error: BaseException) -> BaseException:
    """The only leaf of nested single-exception groups, else ``error`` itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
