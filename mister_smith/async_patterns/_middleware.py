"""Middleware around message handling: before / after / on-error hooks in onion order."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeVar, runtime_checkable

import attrs
import trio

from ..errors import ErrorSeverity, MessageRejected, RecoveryStrategy
from ..types import ActorId
from ._histogram import HistogramSnapshot, LatencyHistogram

M = TypeVar("M")
R = TypeVar("R")

logger = logging.getLogger("mister_smith.middleware")

CANCEL_GRACE = 1.0
"""Seconds ``on_error`` hooks may take when the handler was cancelled (they are shielded)."""


class MiddlewareRejected(MessageRejected):
    """A middleware refused a message in ``before_process``; the handler never saw it.

    Attributes:
        middleware: Name of the rejecting middleware.
        reason: Why it refused.
    """

    def __init__(
        self,
        *args: object,
        middleware: str = "",
        reason: str = "",
        severity: ErrorSeverity | None = None,
        recovery_strategy: RecoveryStrategy | None = None,
    ) -> None:
        if not args:
            args = (f"message rejected by {middleware or 'middleware'}: {reason}",)
        super().__init__(*args, severity=severity, recovery_strategy=recovery_strategy)
        self.middleware = middleware
        self.reason = reason


@attrs.define(eq=False)
class MiddlewareContext:
    """What middleware knows about the message being handled; make one per message.

    Attributes:
        actor: Name of the handling actor or agent.
        actor_id: Its id, when known.
        correlation_id: The message's correlation id, when it has one.
        started_at: Trio-clock time :meth:`MiddlewareChain.run` started (set by it).
        attributes: Scratch space middleware may share data through.
    """

    actor: str = ""
    actor_id: ActorId | None = None
    correlation_id: str | None = None
    started_at: float = 0.0
    attributes: dict[str, object] = attrs.field(factory=dict)

    @property
    def elapsed(self) -> float:
        """Trio-clock seconds since :attr:`started_at`."""
        return trio.current_time() - self.started_at


@runtime_checkable
class AgentMiddleware(Protocol):
    """Hooks around the handling of one message (the design doc's ``AgentMiddleware``).

    See :class:`MiddlewareChain` for when each hook runs. Subclass :class:`Middleware`
    to override only some of them.
    """

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        """Before the handler; raise (e.g. :class:`MiddlewareRejected`) to refuse."""
        ...

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        """After the handler returned ``result``."""
        ...

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        """The handler, a later middleware or an inner ``after_process`` raised ``error``."""
        ...


class Middleware:
    """A convenient base for middleware: every hook does nothing."""

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        """Do nothing."""

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        """Do nothing."""

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        """Do nothing."""


class MiddlewareChain:
    """An ordered list of middleware applied around a handler, onion style.

    For middleware ``[a, b, c]`` and a handler ``h``, :meth:`run` calls::

        a.before, b.before, c.before, h, c.after, b.after, a.after

    Every middleware whose ``before_process`` returned gets exactly one of
    ``after_process`` or ``on_error``, innermost first. If ``b.before`` raises (a
    rejection), ``h`` and ``c`` never see the message and only ``a.on_error`` runs; if
    ``h`` raises, ``c.on_error, b.on_error, a.on_error`` run; if ``c.after`` raises,
    ``b.on_error, a.on_error`` run. The error is then raised to the caller. An error
    raised *by* an ``on_error`` hook is logged and does not replace the original one.

    ``on_error`` also sees cancellation (``trio.Cancelled``); those calls are shielded
    for at most :data:`CANCEL_GRACE` seconds so bookkeeping can finish, then the
    cancellation continues.
    """

    def __init__(self, middleware: Iterable[AgentMiddleware] = ()) -> None:
        self._middleware: tuple[AgentMiddleware, ...] = tuple(middleware)

    def add(self, middleware: AgentMiddleware) -> None:
        """Append ``middleware`` (innermost position); takes effect for later runs."""
        self._middleware = (*self._middleware, middleware)

    def __iter__(self) -> Iterator[AgentMiddleware]:
        return iter(self._middleware)

    def __len__(self) -> int:
        return len(self._middleware)

    async def run(
        self, message: M, ctx: MiddlewareContext, handler: Callable[[M], Awaitable[R]]
    ) -> R:
        """Handle ``message`` with ``handler`` inside the chain; return its result."""
        chain = self._middleware
        ctx.started_at = trio.current_time()
        if not chain:
            return await handler(message)
        entered = 0
        try:
            for middleware in chain:
                await middleware.before_process(message, ctx)
                entered += 1
            result = await handler(message)
            while entered:
                entered -= 1
                await chain[entered].after_process(message, result, ctx)
        except BaseException as error:
            if isinstance(error, Exception):
                await self._unwind(chain[:entered], message, error, ctx)
            else:
                with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_GRACE):
                    await self._unwind(chain[:entered], message, error, ctx)
            raise
        return result

    @staticmethod
    async def _unwind(
        entered: tuple[AgentMiddleware, ...],
        message: object,
        error: BaseException,
        ctx: MiddlewareContext,
    ) -> None:
        for middleware in reversed(entered):
            try:
                await middleware.on_error(message, error, ctx)
            except Exception:
                logger.exception("on_error of %r failed; the original error stands", middleware)


def _message_type(message: object) -> str:
    return type(message).__name__


class LoggingMiddleware(Middleware):
    """Logs each message's start, end and failure through stdlib :mod:`logging`.

    Records carry structured fields in ``extra``: ``actor``, ``message_type``,
    ``correlation_id`` and, at the end, ``outcome`` (``"ok"``, ``"rejected"``,
    ``"failed"``, ``"cancelled"``), ``duration`` (seconds) and ``error_type``.

    Args:
        logger: Where to log (default: ``mister_smith.middleware``).
        level: Level of the start and success records.
        error_level: Level of failure records (rejections use ``level``).
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        level: int = logging.INFO,
        error_level: int = logging.WARNING,
    ) -> None:
        self.logger = logger if logger is not None else logging.getLogger("mister_smith.middleware")
        self.level = level
        self.error_level = error_level

    def _fields(self, message: object, ctx: MiddlewareContext) -> dict[str, object]:
        return {
            "actor": ctx.actor,
            "message_type": _message_type(message),
            "correlation_id": ctx.correlation_id,
        }

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        """Log that ``message`` is being processed."""
        if self.logger.isEnabledFor(self.level):
            self.logger.log(
                self.level,
                "%s: processing %s",
                ctx.actor,
                _message_type(message),
                extra=self._fields(message, ctx),
            )

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        """Log that ``message`` was processed, with the duration."""
        if self.logger.isEnabledFor(self.level):
            duration = ctx.elapsed
            self.logger.log(
                self.level,
                "%s: processed %s in %.6f s",
                ctx.actor,
                _message_type(message),
                duration,
                extra={**self._fields(message, ctx), "outcome": "ok", "duration": duration},
            )

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        """Log the rejection, failure or cancellation of ``message``."""
        duration = ctx.elapsed
        if isinstance(error, MiddlewareRejected):
            outcome, level = "rejected", self.level
        elif isinstance(error, Exception):
            outcome, level = "failed", self.error_level
        else:
            outcome, level = "cancelled", self.level
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                "%s: %s %s after %.6f s: %s: %s",
                ctx.actor,
                outcome,
                _message_type(message),
                duration,
                type(error).__name__,
                error,
                exc_info=error if outcome == "failed" else None,
                extra={
                    **self._fields(message, ctx),
                    "outcome": outcome,
                    "duration": duration,
                    "error_type": type(error).__name__,
                },
            )


@attrs.frozen
class MiddlewareStatistics:
    """A snapshot of a :class:`MetricsMiddleware`.

    Attributes:
        received: Messages that reached it.
        processed: Messages handled successfully.
        failed: Messages whose handling raised (rejections and cancellations excluded).
        rejected: Messages refused by an inner middleware.
        cancelled: Messages whose handling was cancelled.
        in_flight: Messages being handled now.
        by_type: Received messages per message type name.
        latency: Durations of processed and failed messages.
    """

    received: int
    processed: int
    failed: int
    rejected: int
    cancelled: int
    in_flight: int
    by_type: dict[str, int]
    latency: HistogramSnapshot


class MetricsMiddleware(Middleware):
    """Counts messages and times their handling; read it with :meth:`statistics`.

    Put it first in the chain to see every message, rejections by later middleware
    included.
    """

    def __init__(self) -> None:
        self._latency = LatencyHistogram()
        self._by_type: dict[str, int] = {}
        self._received = 0
        self._processed = 0
        self._failed = 0
        self._rejected = 0
        self._cancelled = 0
        self._in_flight = 0

    async def before_process(self, message: object, ctx: MiddlewareContext) -> None:
        """Count the message."""
        self._received += 1
        self._in_flight += 1
        kind = _message_type(message)
        self._by_type[kind] = self._by_type.get(kind, 0) + 1

    async def after_process(self, message: object, result: object, ctx: MiddlewareContext) -> None:
        """Count the success and record its latency."""
        self._in_flight -= 1
        self._processed += 1
        self._latency.record(ctx.elapsed)

    async def on_error(self, message: object, error: BaseException, ctx: MiddlewareContext) -> None:
        """Count the rejection, failure or cancellation."""
        self._in_flight -= 1
        if isinstance(error, MiddlewareRejected):
            self._rejected += 1
        elif isinstance(error, Exception):
            self._failed += 1
            self._latency.record(ctx.elapsed)
        else:
            self._cancelled += 1

    def statistics(self) -> MiddlewareStatistics:
        """Counters and latency so far (see :class:`MiddlewareStatistics`)."""
        return MiddlewareStatistics(
            received=self._received,
            processed=self._processed,
            failed=self._failed,
            rejected=self._rejected,
            cancelled=self._cancelled,
            in_flight=self._in_flight,
            by_type=dict(self._by_type),
            latency=self._latency.snapshot(),
        )
