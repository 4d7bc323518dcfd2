"""What can be injected (``FailureType``) and the record of one injection (``Injection``)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import trio

from ..errors import ErrorSeverity, MisterSmithError, RecoveryStrategy, RuntimeFault


class InjectedCrash(RuntimeFault):
    """The error a :attr:`FailureType.CRASH` raises in its target.

    A :class:`~mister_smith.errors.RuntimeFault`: severity ``CRITICAL``, recovered by
    ``Restart`` — the same as any unexpected exception from user code.
    """


class InjectionRefused(Exception):
    """The failure cannot be injected into that target (not running, not applicable)."""


@attrs.frozen(repr=False)
class FailureType:
    """Base of the failures :meth:`SystemTestHarness.inject_failure` can inject.

    Use the constants and constructors on this class:

    * ``FailureType.CRASH`` — the target fails with :class:`InjectedCrash`.
    * ``FailureType.ERROR(kind)`` — the target fails with a fresh ``kind`` error, so the
      error's severity and recovery strategy drive the supervisor's decision.
    * ``FailureType.HANG`` — the target stops making progress (an actor's handler never
      returns, a tool call never returns, a child goes silent).
    * ``FailureType.SLOW(delay)`` — the target is late by ``delay`` seconds.
    * ``FailureType.DROP_HEARTBEAT`` — a heartbeat-monitored child stays silent until
      its failure detector declares it hung.

    Every injection is one-shot: it applies to the actor's next message, the tool's next
    call, or the child's current run.
    """

    CRASH: ClassVar[FailureType]
    HANG: ClassVar[FailureType]
    DROP_HEARTBEAT: ClassVar[FailureType]
    SLOW: ClassVar[type[Slow]]
    ERROR: ClassVar[type[Error]]

    def make_error(self, label: str) -> Exception | None:
        """The exception this failure raises in its target (``None``: it raises nothing)."""
        return None

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        return f"FailureType.{type(self).__name__.upper()}"


@attrs.frozen(repr=False)
class Crash(FailureType):
    """The target fails with :class:`InjectedCrash` (``CRITICAL``, ``Restart``)."""

    def make_error(self, label: str) -> Exception:
        """A fresh :class:`InjectedCrash` carrying ``label``."""
        return InjectedCrash(label)


@attrs.frozen(repr=False)
class Hang(FailureType):
    """The target stops making progress until something cancels it."""


@attrs.frozen(repr=False)
class DropHeartbeat(FailureType):
    """A heartbeat-monitored child's heartbeats are dropped until its run ends."""

    def __repr__(self) -> str:
        return "FailureType.DROP_HEARTBEAT"


def _check_delay(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"SLOW delay must be a number of seconds >= 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError("SLOW delay must be finite; use FailureType.HANG to never finish")


@attrs.frozen(repr=False)
class Slow(FailureType):
    """The target is late by ``delay`` seconds, then carries on normally.

    An actor handles its next message ``delay`` seconds late (a ``handler_timeout``
    shorter than that turns it into a :class:`~mister_smith.errors.HandlerTimeout`); a
    tool call starts ``delay`` seconds late (past its deadline it is a
    :class:`~mister_smith.errors.ToolTimeout`); a child is silent for ``delay`` seconds
    (past its ``heartbeat_timeout`` it is declared hung).
    """

    delay: float = attrs.field(validator=_check_delay)

    def __repr__(self) -> str:
        return f"FailureType.SLOW({self.delay!r})"


def _check_kind(
    instance: Error, attribute: attrs.Attribute[type[Exception]], value: object
) -> None:
    if not (isinstance(value, type) and issubclass(value, Exception)):
        raise TypeError(f"ERROR kind must be an Exception subclass, got {value!r}")


def _check_override(instance: Error, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not issubclass(instance.kind, MisterSmithError):
        raise TypeError(
            f"{attribute.name} can only be overridden for MisterSmithError kinds, "
            f"not {instance.kind.__name__}"
        )


@attrs.frozen(repr=False)
class Error(FailureType):
    """The target fails with a fresh ``kind(label)`` error.

    Attributes:
        kind: An ``Exception`` subclass constructible from one message argument (every
            :class:`~mister_smith.errors.MisterSmithError` is).
        severity: Per-instance severity override (``MisterSmithError`` kinds only).
        recovery: Per-instance recovery strategy override (``MisterSmithError`` only).
    """

    kind: type[Exception] = attrs.field(validator=_check_kind)
    severity: ErrorSeverity | None = attrs.field(default=None, validator=_check_override)
    recovery: RecoveryStrategy | None = attrs.field(default=None, validator=_check_override)

    def make_error(self, label: str) -> Exception:
        """A fresh ``kind`` error carrying ``label`` (and the overrides, if any)."""
        if issubclass(self.kind, MisterSmithError):
            return self.kind(label, severity=self.severity, recovery_strategy=self.recovery)
        return self.kind(label)

    def __repr__(self) -> str:
        extra = ""
        if self.severity is not None:
            extra += f", severity=ErrorSeverity.{self.severity.name}"
        if self.recovery is not None:
            extra += f", recovery={self.recovery!r}"
        return f"FailureType.ERROR({self.kind.__name__}{extra})"


FailureType.CRASH = Crash()
FailureType.HANG = Hang()
FailureType.DROP_HEARTBEAT = DropHeartbeat()
FailureType.SLOW = Slow
FailureType.ERROR = Error


@attrs.define(eq=False, repr=False)
class Injection:
    """One call of :meth:`SystemTestHarness.inject_failure` and what became of it.

    Attributes:
        index: 1-based sequence number within the harness.
        target: What it was injected into (``actor:NAME``, ``child:SUP/NAME``,
            ``tool:NAME``).
        failure: The failure.
        injected_at: Trio-clock time of the call.
        label: The message of the error it raises (unique per injection).
        applied_at: When the fault took effect (``None``: not yet).
        error: The exception raised in the target, if any.
    """

    index: int
    target: str
    failure: FailureType
    injected_at: float
    label: str
    applied_at: float | None = None
    error: BaseException | None = None
    _applied: trio.Event = attrs.field(factory=trio.Event, init=False)

    @property
    def applied(self) -> bool:
        """Whether the fault has taken effect."""
        return self._applied.is_set()

    def mark_applied(self, error: BaseException | None = None) -> None:
        """Record that the fault took effect now (raising ``error``, if any)."""
        if not self._applied.is_set():
            self.applied_at = trio.current_time()
            self.error = error
            self._applied.set()

    async def wait_applied(self) -> None:
        """Wait until the fault has taken effect."""
        await self._applied.wait()

    def __repr__(self) -> str:
        state = "pending" if self.applied_at is None else f"applied at {self.applied_at:g}"
        return f"<Injection #{self.index} {self.failure!r} into {self.target} ({state})>"
