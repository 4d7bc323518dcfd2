"""Retry policies for tasks, carried out by stamina (which sleeps on Trio's clock)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import ParamSpec, TypeVar

import attrs
import stamina

from ..errors import ErrorSeverity, classify_error

P = ParamSpec("P")
R = TypeVar("R")

RetryPredicate = Callable[[Exception], bool]
"""Decides from a failed attempt's exception whether another attempt is made."""


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying: its severity is ``LOW`` or ``MEDIUM``.

    With the error taxonomy this retries task, tool, actor, stream, resource and network
    errors (timeouts included) and never retries ``HIGH`` / ``CRITICAL`` ones: plain
    exceptions from user code (``ValueError``...) count as critical runtime faults, so
    bugs are not retried.
    """
    return classify_error(error).severity <= ErrorSeverity.MEDIUM


def is_critical(error: BaseException) -> bool:
    """Whether ``error`` has ``CRITICAL`` severity (see :func:`~mister_smith.classify_error`)."""
    return classify_error(error).severity >= ErrorSeverity.CRITICAL


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValueError(f"{attribute.name} must be a number >= 1, got {value!r}")


def _to_predicate(
    retry_on: type[Exception] | tuple[type[Exception], ...] | RetryPredicate,
) -> RetryPredicate:
    if isinstance(retry_on, type | tuple):
        kinds = retry_on

        def predicate(error: Exception) -> bool:
            return isinstance(error, kinds)

        predicate.__qualname__ = f"retry_on{kinds!r}"
        return predicate
    return retry_on


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a failed task is tried again.

    The delay before retry ``n`` (1-based) is
    ``min(max_delay, base_delay * factor ** (n - 1) + uniform(0, jitter))``; ``factor=1``
    gives a fixed delay. Attempts stop after ``max_attempts`` in total, or at once when
    ``retry_on`` says the error is not worth retrying; the last error is then raised.

    Retrying is done by :func:`stamina.retry_context`, so the delays are Trio sleeps (virtual
    under a mock clock) and ``stamina.set_testing(True)`` removes them in tests; stamina's
    own wall-clock ``timeout`` is not used (per-attempt timeouts are the executor's).

    Defaults follow the reference retry policy: 3 attempts, 100 ms base delay, x2.0, at
    most 30 s, retrying transient (``LOW`` / ``MEDIUM`` severity) errors.

    Attributes:
        max_attempts: Attempts in total, the first included (``1`` = no retry).
        base_delay: Delay in seconds before the first retry.
        max_delay: Upper bound in seconds of any delay.
        factor: Growth of the delay from one retry to the next (>= 1).
        jitter: Largest random extra delay in seconds added to each delay.
        retry_on: Exception class(es) to retry, or a predicate on the exception.
    """

    max_attempts: int = attrs.field(default=3, validator=_positive_int)
    base_delay: float = attrs.field(default=0.1, validator=_non_negative)
    max_delay: float = attrs.field(default=30.0, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    jitter: float = attrs.field(default=0.0, validator=_non_negative)
    retry_on: RetryPredicate = attrs.field(default=is_transient, converter=_to_predicate)

    @classmethod
    def none(cls) -> RetryPolicy:
        """Try once, never retry."""
        return cls(max_attempts=1)

    @classmethod
    def fixed(
        cls,
        delay: float,
        *,
        max_attempts: int = 3,
        jitter: float = 0.0,
        retry_on: type[Exception] | tuple[type[Exception], ...] | RetryPredicate = is_transient,
    ) -> RetryPolicy:
        """The same ``delay`` (plus up to ``jitter``) before every retry."""
        return cls(
            max_attempts=max_attempts,
            base_delay=delay,
            max_delay=delay + jitter,
            factor=1.0,
            jitter=jitter,
            retry_on=retry_on,
        )

    @classmethod
    def exponential(
        cls,
        base_delay: float = 0.1,
        *,
        factor: float = 2.0,
        max_delay: float = 30.0,
        jitter: float = 0.1,
        max_attempts: int = 3,
        retry_on: type[Exception] | tuple[type[Exception], ...] | RetryPredicate = is_transient,
    ) -> RetryPolicy:
        """Delays growing by ``factor`` from ``base_delay``, with up to ``jitter`` added."""
        return cls(
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
            factor=factor,
            jitter=jitter,
            retry_on=retry_on,
        )

    def delay_before(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based) without jitter."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry!r}")
        try:
            return min(self.max_delay, self.base_delay * self.factor ** (retry - 1))
        except OverflowError:
            return self.max_delay

    def should_retry(self, error: Exception) -> bool:
        """Whether ``error`` (from a failed attempt) allows another attempt.

        Only ``Exception`` subclasses are ever retried: cancellation and other
        ``BaseException`` s always propagate.
        """
        return isinstance(error, Exception) and bool(self.retry_on(error))

    def attempts(self) -> AsyncIterable[stamina.Attempt]:
        """A fresh stamina retry context: ``async for attempt in ...: with attempt: ...``."""
        return stamina.retry_context(
            on=self.should_retry,
            attempts=self.max_attempts,
            timeout=None,
            wait_initial=self.base_delay,
            wait_max=self.max_delay,
            wait_jitter=self.jitter,
            wait_exp_base=self.factor,
        )

    async def call(self, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)``, retrying as this policy says."""
        async for attempt in self.attempts():
            with attempt:
                return await fn(*args, **kwargs)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover
