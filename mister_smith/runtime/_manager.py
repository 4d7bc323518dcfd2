"""``RuntimeManager``: wires events, supervision and actors under one root supervisor."""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import psutil
import trio

from ..actors import ActorRef, ActorSystem
from ..async_patterns import ActorMiddleware, AgentMiddleware
from ..config import AgentConfig
from ..errors import ErrorSeverity, RecoveryStrategy, ResourceError, SupervisionError
from ..events import ErrorOccurred, EventBus
from ..monitoring import (
    FrameworkMetrics,
    TracingMiddleware,
    apply_log_level,
    serve_monitoring,
    tracer,
)
from ..resources import (
    BlockingHealthCheck,
    EventBusHealthCheck,
    HealthMonitor,
    MailboxHealthCheck,
    SupervisorHealthCheck,
)
from ..supervision import Restart, Supervisor, open_supervisor
from ..tools import BlockingDetector, ToolBus, ToolPolicy
from ..types import IdentityAuthority

logger = logging.getLogger("mister_smith.runtime")

T = TypeVar("T")

MEMORY_CHECK_INTERVAL = 1.0
"""Seconds between two RSS readings of the ``max_memory`` watchdog."""


class RuntimeManager:
    """The running system: root supervisor, event bus, actor system, tool bus.

    Open it with ``async with RuntimeManager.open(config) as runtime:``. Everything it
    starts is a child of ``runtime.supervision`` (the root supervisor); leaving the
    block or calling :meth:`graceful_shutdown` stops everything in reverse start
    order within the bound. An escalation that reaches the root ends in an orderly
    shutdown and the cause is raised from the ``async with``.

    Attributes:
        config: The configuration in force.
        events: The event bus every component reports to.
        supervision: The root supervisor.
        actor_system: Spawns actors (under the ``actors`` supervisor).
        tool_bus: The tool registry and call layer (its thread limiter, sized by
            ``runtime.blocking_threads``, runs every blocking tool). It denies by
            default (``tools.default_policy``): grant tools to roles registered with
            :attr:`identities` or to actors.
        blocking_detector: Reports task steps that block the loop longer than
            ``tools.blocking_threshold`` as ``LoopBlocked`` events.
        health: The health monitor (liveness, readiness, per-component reports).
        metrics: Framework metrics in their own Prometheus registry.
        http_port: The port of the monitoring endpoints, when served.
    """

    @property
    def identities(self) -> IdentityAuthority:
        """The one authority minting the identities of every actor the runtime spawns
        and checked by its tool bus: register roles here (``register_role``)."""
        return self.tool_bus.identities

    @property
    def blocking_limiter(self) -> trio.CapacityLimiter:
        """The thread limiter for blocking work (``runtime.blocking_threads`` tokens)."""
        return self.tool_bus.blocking_limiter

    def __init__(
        self,
        config: AgentConfig,
        events: EventBus,
        root: Supervisor,
        actor_system: ActorSystem,
        tool_bus: ToolBus,
        blocking_detector: BlockingDetector,
    ) -> None:
        self.config = config
        self.events = events
        self.supervision = root
        self.actor_system = actor_system
        self.tool_bus = tool_bus
        self.blocking_detector = blocking_detector
        self.health: HealthMonitor
        self.metrics: FrameworkMetrics
        self.http_port: int | None = None
        self._shutdown_reason: str | None = None

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: AgentConfig | None = None,
        *,
        middleware: Sequence[AgentMiddleware] = (),
        serve_http: bool = False,
    ) -> AsyncIterator[RuntimeManager]:
        """Start the runtime from ``config`` (defaults when omitted); stop it on exit.

        ``middleware`` (e.g. ``LoggingMiddleware()``, ``MetricsMiddleware()``) is applied
        around every message every actor and agent handles, outermost first.

        Health checks (root supervisor, event bus, mailboxes, blocking detector) run
        every ``monitoring.health_check_interval`` as a supervised child, framework
        metrics are kept in :attr:`metrics`, and ``monitoring.log_level`` is applied to
        the ``mister_smith`` loggers. With ``serve_http=True`` the ``/health/live``,
        ``/health/ready`` and ``/metrics`` endpoints are served on
        ``monitoring.http_host``:``monitoring.http_port`` (port 0 picks a free port,
        see :attr:`http_port`).

        ``RuntimeSettings`` take effect here: ``blocking_threads`` sizes
        :attr:`blocking_limiter` (used by blocking tools), ``thread_stack_size`` is
        applied with :func:`threading.stack_size` for worker threads created from now
        on, ``max_memory`` arms an RSS watchdog that raises
        :class:`~mister_smith.errors.ResourceError` through supervision, and
        ``worker_threads`` does not apply (Trio runs every task on one thread).
        """
        config = AgentConfig() if config is None else config
        settings = config.runtime
        if settings.thread_stack_size is not None:
            threading.stack_size(settings.thread_stack_size)
        events = EventBus(
            history_size=config.events.history_size,
            subscriber_buffer=config.events.subscriber_buffer,
        )
        supervision = config.supervision
        # Spans for messages and tool calls when OpenTelemetry is installed, sampled at
        # monitoring.trace_sampling_rate; nothing at all on the hot paths otherwise.
        spans = tracer(settings=config.monitoring)
        async with open_supervisor(
            "root",
            events=events,
            max_restarts=supervision.max_restart_attempts,
            restart_window=supervision.restart_window,
            strategy=supervision.restart_strategy,
            default_restart=Restart.PERMANENT,
            shutdown_timeout=supervision.shutdown_timeout,
            keep_alive=True,
        ) as root:
            actors_supervisor = await root.start_supervisor(
                "actors",
                max_restarts=supervision.max_restart_attempts,
                restart_window=supervision.restart_window,
                default_restart=supervision.strategy.restart_type,
            )
            identities = IdentityAuthority("runtime")
            actor_system = ActorSystem(
                actors_supervisor,
                events,
                identities=identities,
                mailbox_capacity=config.actors.mailbox_capacity,
                ask_timeout=config.actors.ask_timeout,
                dead_letter_log_size=config.actors.dead_letter_log_size,
                default_restart=supervision.strategy.restart_type,
                middleware=[
                    *([TracingMiddleware(spans)] if spans.enabled else []),
                    *([ActorMiddleware(middleware)] if middleware else []),
                ],
            )
            tool_bus = ToolBus(
                events=events,
                default_timeout=config.tools.default_timeout,
                # ToolSettings stores "deny" or "open"; "open" is logged as a warning.
                default_policy=cast(ToolPolicy, config.tools.default_policy),
                identities=identities,
                blocking_threads=settings.blocking_threads,
                tracing=spans.tool_span if spans.enabled else None,
            )
            detector = BlockingDetector(events, threshold=config.tools.blocking_threshold)
            trio.lowlevel.add_instrument(detector)
            runtime = cls(config, events, root, actor_system, tool_bus, detector)
            apply_log_level(config.monitoring)
            runtime.health = HealthMonitor(
                [
                    SupervisorHealthCheck(root, name="root"),
                    EventBusHealthCheck(events),
                    MailboxHealthCheck(_mailboxes(actor_system)),
                    BlockingHealthCheck(detector),
                ],
                events=events,
                root=root,
                settings=config.monitoring,
            )
            runtime.metrics = FrameworkMetrics()
            runtime.metrics.attach(events)
            runtime.metrics.add_tool_registry(tool_bus)  # only its tools get a tool label
            runtime.metrics.add_actors(actor_system.actors)
            runtime.metrics.add_event_bus(events)
            runtime.metrics.add_blocking_detector(detector)
            runtime.metrics.add_health(runtime.health)
            await root.start_child(runtime.health.run, name="health", restart=Restart.PERMANENT)
            if serve_http:
                http = await root.start_child(
                    functools.partial(
                        serve_monitoring,
                        config.monitoring.http_host,
                        config.monitoring.http_port,
                        health=runtime.health,
                        registry=runtime.metrics.registry,
                    ),
                    name="http",
                    restart=Restart.PERMANENT,
                )
                runtime.http_port = http.value
            if settings.max_memory is not None:
                await root.start_child(
                    _memory_watchdog,
                    settings.max_memory,
                    name="memory-watchdog",
                    restart=Restart.PERMANENT,
                )
            try:
                yield runtime
                await runtime.graceful_shutdown()
            finally:
                trio.lowlevel.remove_instrument(detector)
                runtime.metrics.detach()

    async def graceful_shutdown(self, timeout: float | None = None) -> None:
        """Stop everything in reverse start order.

        Args:
            timeout: Upper bound in seconds (default: the sum of the children's
                shutdown timeouts); children still running then are cancelled.
        """
        if self._shutdown_reason is None:
            self._shutdown_reason = "graceful shutdown"
            logger.info("runtime: graceful shutdown")
        await self.supervision.stop(timeout=timeout)

    def statistics(self) -> dict[str, Any]:
        """A dictionary of every component's statistics, for humans and probes."""
        return {
            "supervision": self.supervision.statistics(),
            "actors": self.actor_system.statistics(),
            "events": self.events.statistics(),
            "tools": self.tool_bus.statistics(),
            "blocking": self.blocking_detector.statistics(),
        }


def _mailboxes(system: ActorSystem) -> Callable[[], dict[str, ActorRef]]:
    def current() -> dict[str, ActorRef]:
        return {ref.name: ref for ref in system.actors()}

    return current


async def _memory_watchdog(limit: int) -> None:
    """Raise :class:`ResourceError` when this process's RSS exceeds ``limit`` bytes."""
    process = psutil.Process()
    while True:
        rss = await trio.to_thread.run_sync(lambda: process.memory_info().rss)
        if rss > limit:
            raise ResourceError(
                f"resident memory {rss} bytes exceeds max_memory {limit} bytes",
                severity=ErrorSeverity.HIGH,
                recovery_strategy=RecoveryStrategy.Escalate(),
            )
        await trio.sleep(MEMORY_CHECK_INTERVAL)


def run(
    main: Callable[[RuntimeManager], Awaitable[T]],
    config: AgentConfig | None = None,
    *,
    handle_signals: bool = True,
) -> T | None:
    """Run ``await main(runtime)`` in a fresh Trio run that owns the process.

    SIGINT and SIGTERM trigger a graceful shutdown (``None`` is returned then). An
    escalation reaching the root is logged with its cause, reported as an
    :class:`~mister_smith.events.ErrorOccurred` event, and re-raised after the
    orderly shutdown.
    """

    async def amain() -> T | None:
        result: list[T] = []
        runtimes: list[RuntimeManager] = []
        try:
            async with RuntimeManager.open(config) as runtime:
                runtimes.append(runtime)
                async with trio.open_nursery() as nursery:
                    if handle_signals:
                        await nursery.start(_shutdown_on_signal, runtime)
                    result.append(await main(runtime))
                    nursery.cancel_scope.cancel()
        except SupervisionError as exc:
            if runtimes:
                runtimes[0].events.emit(
                    ErrorOccurred(
                        source="root",
                        component="root",
                        error_type=type(exc).__name__,
                        message=str(exc),
                        severity=exc.severity,
                    )
                )
            logger.exception("runtime: root escalation ended the run")
            raise
        return result[0] if result else None

    return trio.run(amain)


async def _shutdown_on_signal(
    runtime: RuntimeManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            logger.warning("runtime: received signal %s, shutting down", signum)
            runtime._shutdown_reason = f"signal {signum}"
            await runtime.graceful_shutdown(timeout=_SIGNAL_SHUTDOWN_TIMEOUT)
            return


_SIGNAL_SHUTDOWN_TIMEOUT = 30.0
"""The wider design's graceful-shutdown bound on SIGTERM/SIGINT (seconds)."""
