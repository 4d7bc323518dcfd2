"""Restart intensity and backoff: pure, synchronous, clock-free (time is passed in)."""

from __future__ import annotations

import collections

import attrs


def _check_non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.define
class RestartIntensity:
    """OTP's restart intensity, counted per supervisor (not per child).

    A restart at time ``now`` is allowed while at most ``max_restarts`` restarts
    (this one included) fall within the last ``window`` seconds; so with
    ``max_restarts=3`` the fourth failure inside the window is refused. A restart
    exactly ``window`` seconds old has left the window (OTP still counts it): one
    restart every ``window`` seconds is sustainable with ``max_restarts=1``.
    """

    max_restarts: int = attrs.field(validator=attrs.validators.ge(0))
    window: float = attrs.field(validator=_check_non_negative)
    _times: collections.deque[float] = attrs.field(factory=collections.deque, init=False)

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def record(self, now: float) -> bool:
        """Record a restart at ``now``; return whether it is within the intensity."""
        self._expire(now)
        self._times.append(now)
        return len(self._times) <= self.max_restarts

    def recent(self, now: float) -> int:
        """How many restarts fall within the window ending at ``now``."""
        self._expire(now)
        return len(self._times)


def _check_positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name} must be a number of seconds > 0, got {value!r}")


def _check_count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class RestartLimit:
    """A restart budget: at most ``max_restarts`` restarts within ``window`` seconds.

    As a supervisor's ``max_restarts``/``restart_window`` it bounds the restarts of all
    its children together (OTP's intensity); as a child's ``restart_limit`` it bounds
    that child alone (Akka's ``maxNrOfRetries`` within ``withinTimeRange``): a child
    that spends its own budget is stopped for good and its siblings are untouched.
    """

    max_restarts: int = attrs.field(validator=_check_count)
    window: float = attrs.field(validator=_check_positive)

    def counter(self) -> RestartIntensity:
        """A fresh :class:`RestartIntensity` counting against this budget."""
        return RestartIntensity(self.max_restarts, self.window)


@attrs.frozen
class Backoff:
    """Exponential backoff with jitter between restarts (Akka's restartWithBackoff).

    The n-th consecutive restart (0-based) waits ``initial * factor**n`` capped at
    ``maximum``, then spread by ``±jitter`` (a fraction). A child that has run for
    ``reset_after`` seconds without failing starts again from ``initial``
    (default: ``maximum``).
    """

    initial: float = attrs.field(default=0.1, validator=_check_non_negative)
    maximum: float = attrs.field(default=30.0, validator=_check_non_negative)
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    jitter: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    reset_after: float | None = None

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Delay before the ``attempt``-th consecutive restart (``rand`` in [0, 1))."""
        base = self.initial
        for _ in range(max(0, attempt)):  # geometric growth reaches any cap quickly
            if base >= self.maximum or base <= 0.0 or self.factor == 1.0:
                break
            base *= self.factor
        base = min(self.maximum, base)
        spread = base * self.jitter * (2.0 * rand - 1.0)
        return max(0.0, min(self.maximum, base + spread))

    @property
    def quiet_period(self) -> float:
        """Run time after which the consecutive-restart count resets."""
        return self.maximum if self.reset_after is None else self.reset_after


@attrs.define
class BackoffState:
    """Per-child consecutive-restart counter driving a :class:`Backoff`."""

    backoff: Backoff
    attempt: int = 0
    last_start: float | None = None

    def started(self, now: float) -> None:
        """The child (re)started at ``now``."""
        self.last_start = now

    def next_delay(self, now: float, rand: float = 0.5) -> float:
        """The delay before restarting a child that failed at ``now``; advances the count."""
        if self.last_start is not None and now - self.last_start >= self.backoff.quiet_period:
            self.attempt = 0
        delay = self.backoff.delay(self.attempt, rand)
        self.attempt += 1
        return delay
