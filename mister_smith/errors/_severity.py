"""Error severity and the recovery strategies a supervisor carries out."""

from __future__ import annotations

import enum
from typing import ClassVar

import attrs


class ErrorSeverity(enum.IntEnum):
    """How bad a failure is; ordered, so ``ErrorSeverity.LOW < ErrorSeverity.CRITICAL``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class RecoveryAction(enum.Enum):
    """The kind of a :class:`RecoveryStrategy`, as recorded in supervision events."""

    RETRY = "retry"
    RESTART = "restart"
    ESCALATE = "escalate"
    RELOAD = "reload"
    CIRCUIT_BREAKER = "circuit_breaker"
    FAILOVER = "failover"
    IGNORE = "ignore"
    STOP = "stop"
    """Not a strategy one can ask for: what a supervisor records when a child has spent
    its own restart budget (``ChildSpec.restart_limit``) and is stopped for good, the
    way Akka's ``OneForOneStrategy`` stops a child past ``maxNrOfRetries``."""


@attrs.frozen
class RecoveryStrategy:
    """Base of the recovery strategies; use the variants as ``RecoveryStrategy.Retry(...)``.

    A supervisor asks a failed child's recovery policy for one of these and carries it
    out (see :mod:`mister_smith.supervision`).
    """

    action: ClassVar[RecoveryAction]

    Retry: ClassVar[type[_Retry]]
    Restart: ClassVar[type[_Restart]]
    Escalate: ClassVar[type[_Escalate]]
    Reload: ClassVar[type[_Reload]]
    CircuitBreaker: ClassVar[type[_CircuitBreaker]]
    Failover: ClassVar[type[_Failover]]
    Ignore: ClassVar[type[_Ignore]]


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number of seconds >= 0, got {value!r}")


@attrs.frozen
class _Retry(RecoveryStrategy):
    """Re-run the failed child in place after ``delay`` seconds, up to ``max_attempts`` times.

    When the attempts are used up the supervisor falls back to its restart strategy.
    """

    action: ClassVar[RecoveryAction] = RecoveryAction.RETRY
    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    delay: float = attrs.field(default=1.0, validator=_non_negative)


@attrs.frozen
class _Restart(RecoveryStrategy):
    """Apply the supervisor's restart strategy (one-for-one, one-for-all, rest-for-one)."""

    action: ClassVar[RecoveryAction] = RecoveryAction.RESTART


@attrs.frozen
class _Escalate(RecoveryStrategy):
    """Fail the supervisor at once; its parent handles that as its own child's failure."""

    action: ClassVar[RecoveryAction] = RecoveryAction.ESCALATE


@attrs.frozen
class _Reload(RecoveryStrategy):
    """Call the supervisor's reload hook (e.g. re-read configuration), then restart."""

    action: ClassVar[RecoveryAction] = RecoveryAction.RELOAD


@attrs.frozen
class _CircuitBreaker(RecoveryStrategy):
    """Gate restarts through the child's circuit breaker (wait while it is open)."""

    action: ClassVar[RecoveryAction] = RecoveryAction.CIRCUIT_BREAKER


@attrs.frozen
class _Failover(RecoveryStrategy):
    """Start the child's declared fallback in its place."""

    action: ClassVar[RecoveryAction] = RecoveryAction.FAILOVER


@attrs.frozen
class _Ignore(RecoveryStrategy):
    """Record the error and treat the exit as normal."""

    action: ClassVar[RecoveryAction] = RecoveryAction.IGNORE


for _name, _variant in (
    ("Retry", _Retry),
    ("Restart", _Restart),
    ("Escalate", _Escalate),
    ("Reload", _Reload),
    ("CircuitBreaker", _CircuitBreaker),
    ("Failover", _Failover),
    ("Ignore", _Ignore),
):
    _variant.__name__ = _name
    _variant.__qualname__ = f"RecoveryStrategy.{_name}"
    setattr(RecoveryStrategy, _name, _variant)
