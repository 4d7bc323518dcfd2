"""Small pure functions turning configuration into the runtime's parts' options.

Each is a plain function of settings (no I/O, no clock), unit-tested on its own, so
what a config field does is readable in one place and the runtime's builder stays a
list of steps.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import attrs

from ..async_patterns import RetryPolicy
from ..config import SupervisionSettings, TaskSettings
from ..events import EventBus
from ..supervision import Backoff, CircuitBreaker, RestartLimit


def restart_limit(settings: SupervisionSettings) -> RestartLimit:
    """``max_restart_attempts`` within ``restart_window``: the root's intensity, and
    each actor's own restart budget."""
    return RestartLimit(settings.max_restart_attempts, settings.restart_window)


def backoff(settings: SupervisionSettings) -> Backoff:
    """The delay between restarts of actors, domains and the root's children."""
    return Backoff(
        initial=settings.backoff_initial,
        maximum=settings.backoff_max,
        factor=settings.backoff_factor,
        jitter=settings.backoff_jitter,
    )


def task_retry_policy(settings: TaskSettings) -> RetryPolicy:
    """The task executor's default retry policy (``tasks.retry_*``)."""
    return RetryPolicy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        factor=settings.retry_factor,
    )


@attrs.frozen
class BreakerSettings:
    """What a circuit breaker made by the runtime is configured with."""

    failure_threshold: int
    reset_timeout: float
    half_open_max_calls: int

    @classmethod
    def of(cls, settings: SupervisionSettings) -> BreakerSettings:
        """The ``supervision.breaker_*`` fields."""
        return cls(
            settings.breaker_failure_threshold,
            settings.breaker_reset_timeout,
            settings.breaker_half_open_calls,
        )


class BreakerFactory:
    """Makes the circuit breakers supervisors gate restarts with (``breaker_*``).

    It remembers the breakers it made (weakly), so :meth:`reconfigure` changes the
    thresholds of the live ones too.
    """

    def __init__(self, settings: BreakerSettings, events: EventBus) -> None:
        self.settings = settings
        self.events = events
        self._made: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()

    def __call__(self, name: str) -> CircuitBreaker:
        """A new breaker called ``name`` with the current settings."""
        breaker = CircuitBreaker(
            name,
            failure_threshold=self.settings.failure_threshold,
            reset_timeout=self.settings.reset_timeout,
            half_open_max_calls=self.settings.half_open_max_calls,
            events=self.events,
        )
        self._made.add(breaker)
        return breaker

    def breakers(self) -> list[CircuitBreaker]:
        """The live breakers it made."""
        return list(self._made)

    def reconfigure(self, settings: BreakerSettings) -> None:
        """Use ``settings`` for new breakers and apply them to the live ones."""
        self.settings = settings
        for breaker in self._made:
            breaker.reconfigure(
                failure_threshold=settings.failure_threshold,
                reset_timeout=settings.reset_timeout,
                half_open_max_calls=settings.half_open_max_calls,
            )


BreakerFactoryLike = Callable[[str], CircuitBreaker]
