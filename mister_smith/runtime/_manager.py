"""``RuntimeManager``: wires events, supervision and actors under one root supervisor."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

import attrs
import trio

from ..actors import ActorRef, ActorSystem, ActorSystemStatistics, DurableMailboxes
from ..agents import AgentSpec, Model, ToolInvoker, spawn_agent
from ..async_patterns import ActorMiddleware, AgentMiddleware, ExecutorStatistics, TaskExecutor
from ..config import AgentConfig
from ..errors import (
    ConfigError,
)
from ..events import ConfigReloaded, EventBus, EventBusStatistics
from ..monitoring import (
    FrameworkMetrics,
    Observer,
    Tracer,
    TracingMiddleware,
    apply_log_level,
    serve_monitoring,
    tracer,
    using_tracer,
)
from ..persistence import DEFAULT_CODEC, Codec, open_sqlite_store
from ..resources import (
    BlockingHealthCheck,
    ConnectionPool,
    EventBusHealthCheck,
    HealthMonitor,
    HealthMonitorStatistics,
    MailboxHealthCheck,
    SupervisorHealthCheck,
    open_pool,
)
from ..supervision import Restart, Supervisor, SupervisorStatistics, snapshot
from ..tools import (
    Approvals,
    BlockingDetector,
    BlockingStatistics,
    ToolBus,
    ToolBusStatistics,
    ToolPolicy,
)
from ..types import IdentityAuthority
from . import _assembly
from ._reconfigure import changed_paths, refused
from ._watchdog import memory_watchdog

logger = logging.getLogger("mister_smith.runtime")

T = TypeVar("T")

ConfigLoader = Callable[[], AgentConfig]
"""Re-reads the configuration from where it came from (a file, the environment)."""


@attrs.frozen
class RuntimeStatistics:
    """A snapshot of a running runtime (:meth:`RuntimeManager.statistics`).

    Attributes:
        supervision: The root supervisor's counters.
        actors: The actor system's totals.
        events: The event bus's counters.
        tools: The tool bus's per-tool and bus-wide counters.
        blocking: The blocking detector's counters.
        tasks: The task executor's counters (``None`` while it restarts).
        health: The health monitor's counters.
    """

    supervision: SupervisorStatistics
    actors: ActorSystemStatistics
    events: EventBusStatistics
    tools: ToolBusStatistics
    blocking: BlockingStatistics
    tasks: ExecutorStatistics | None
    health: HealthMonitorStatistics


class RuntimeManager:
    """The running system: root supervisor, event bus, actor system, tool bus.

    Open it with ``async with RuntimeManager.open(config) as runtime:``. Everything it
    starts is a child of ``runtime.supervision`` (the root supervisor); leaving the
    block or calling :meth:`graceful_shutdown` stops everything in reverse start
    order within the bound.

    **Fault isolation.** Failures climb one level at a time. Every actor and agent has
    its own restart budget (``supervision.max_restart_attempts`` within
    ``restart_window``, with ``backoff_*`` between restarts): one that spends it is
    stopped and announced, the rest go on. A domain supervisor that gives up is
    restarted by its parent, counted in the parent's intensity. Only the root giving
    up (its own intensity spent, or an explicit ``Escalate`` such as the memory
    watchdog's) ends the runtime, and then the error raised from the ``async with``
    names the root cause (``errors.root_cause`` walks the chain).

    Attributes:
        config: The configuration in force (replaced by :meth:`reconfigure`).
        events: The event bus every component reports to.
        supervision: The root supervisor.
        actor_system: Spawns actors (under the ``actors`` domain supervisor).
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

    def __init__(
        self,
        config: AgentConfig,
        events: EventBus,
        root: Supervisor,
        actor_system: ActorSystem,
        tool_bus: ToolBus,
        blocking_detector: BlockingDetector,
        health: HealthMonitor,
        metrics: FrameworkMetrics,
        *,
        spans: Tracer,
        breakers: _assembly.BreakerFactory,
        config_loader: ConfigLoader | None = None,
    ) -> None:
        self.config = config
        self.events = events
        self.supervision = root
        self.actor_system = actor_system
        self.tool_bus = tool_bus
        self.blocking_detector = blocking_detector
        self.health = health
        self.metrics = metrics
        self.http_port: int | None = None
        self._spans = spans
        self._breakers = breakers
        self._config_loader = config_loader
        self._tasks: TaskExecutor | None = None
        self._reconfigure_lock = trio.Lock()

    @property
    def identities(self) -> IdentityAuthority:
        """The one authority minting the identities of every actor the runtime spawns
        and checked by its tool bus: register roles here (``register_role``)."""
        return self.tool_bus.identities

    @property
    def approvals(self) -> Approvals:
        """The tool calls waiting for a person's approval (tools registered with
        ``approval=True``): list them with ``pending()``, decide with ``approve`` /
        ``deny``; also served on the monitoring endpoint (``/approvals``)."""
        return self.tool_bus.approvals

    @property
    def blocking_limiter(self) -> trio.CapacityLimiter:
        """The thread limiter for blocking work (``runtime.blocking_threads`` tokens)."""
        return self.tool_bus.blocking_limiter

    @property
    def tasks(self) -> TaskExecutor:
        """The runtime's task executor (``tasks.*``: concurrency, queue, timeout and
        retry policy), running as the root's ``tasks`` child; a new one after that
        child is restarted."""
        if self._tasks is None:
            raise RuntimeError("the runtime's task executor is not running")
        return self._tasks

    def open_pool(
        self,
        factory: Callable[[], Awaitable[T]],
        **options: Any,
    ) -> AbstractAsyncContextManager[ConnectionPool[T]]:
        """Open a :class:`~mister_smith.resources.ConnectionPool` sized and timed by the
        runtime's ``pools.*`` settings (each keyword of
        :func:`~mister_smith.resources.open_pool` overrides one), reporting on the
        runtime's event bus::

            async with runtime.open_pool(connect, close=disconnect) as pool:
                async with pool.acquire() as conn: ...
        """
        options.setdefault("settings", self.config.pools)
        options.setdefault("events", self.events)
        return open_pool(factory, **options)

    async def spawn_agent(
        self,
        spec: AgentSpec,
        model: Model,
        tools: ToolInvoker | None = None,
        **options: Any,
    ) -> ActorRef:
        """Spawn an agent in the runtime (see :func:`~mister_smith.agents.spawn_agent`),
        calling tools through :attr:`tool_bus` unless ``tools`` is given, with its
        tool-call limits capped by ``agents.max_tool_calls_per_turn`` and
        ``agents.max_tool_calls_per_task`` (a spec asking for more gets the config's)."""
        limits = self.config.agents
        capped = attrs.evolve(
            spec,
            max_tool_calls_per_turn=min(
                spec.max_tool_calls_per_turn, limits.max_tool_calls_per_turn
            ),
            max_tool_calls_per_task=min(
                spec.max_tool_calls_per_task, limits.max_tool_calls_per_task
            ),
        )
        return await spawn_agent(
            self.actor_system, capped, model, self.tool_bus if tools is None else tools, **options
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config: AgentConfig | None = None,
        *,
        middleware: Sequence[AgentMiddleware] = (),
        serve_http: bool = False,
        config_loader: ConfigLoader | None = None,
        codec: Codec = DEFAULT_CODEC,
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

        ``config_loader`` re-reads the configuration (e.g.
        ``functools.partial(load_config, path)``): a ``Reload`` recovery (the default
        for :class:`~mister_smith.errors.ConfigError`) then applies what it returns
        through :meth:`reconfigure` before restarting the failed child.

        ``RuntimeSettings`` take effect here: ``blocking_threads`` sizes
        :attr:`blocking_limiter` (used by blocking tools), ``thread_stack_size`` is
        applied with :func:`threading.stack_size` for worker threads created from now
        on, ``max_memory`` arms an RSS watchdog that raises
        :class:`~mister_smith.errors.ResourceError` through supervision, and
        ``worker_threads`` does not apply (Trio runs every task on one thread).

        Durability: the embedded store at ``persistence.path`` is opened (by the root's
        ``persistence`` child) when the first actor is spawned with ``durable=True``,
        and closed after every actor stopped; messages to durable actors are encoded
        with ``codec`` (register message classes with
        :func:`~mister_smith.persistence.durable_message`).

        Raises:
            RestartIntensityExceeded | EscalatedError: the root gave up; the message
                names the root cause and ``__cause__`` chains down to it.
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
        breakers = _assembly.BreakerFactory(_assembly.BreakerSettings.of(supervision), events)
        runtimes: list[RuntimeManager] = []

        async def reload() -> None:
            if runtimes:
                await runtimes[0].reload(trigger="reload")

        async with (
            using_tracer(spans),  # agents' model-call spans join the message traces
            Supervisor(
                _assembly.root_supervisor_config(supervision),
                events=events,
                breaker_factory=breakers,
                reload=reload,
            ) as root,
        ):
            identities = IdentityAuthority("runtime")
            # Durable mailboxes' store: opened at the first durable spawn (no file
            # otherwise); started before the actors, so it closes after them.
            durable = DurableMailboxes(
                functools.partial(open_sqlite_store, config.persistence), codec
            )
            await root.start_child(durable.serve, name="persistence", restart=Restart.PERMANENT)
            actor_system = await ActorSystem.start(
                root,
                events,
                name="actors",
                identities=identities,
                **_assembly.actor_system_options(config),
                durable=durable,
                middleware=[
                    *([TracingMiddleware(spans)] if spans.enabled else []),
                    *([ActorMiddleware(middleware)] if middleware else []),
                ],
            )
            tool_bus = ToolBus(
                events=events,
                identities=identities,
                tracing=spans.tool_span if spans.enabled else None,
                **_assembly.tool_bus_options(config),
            )
            detector = BlockingDetector(events, threshold=config.tools.blocking_threshold)
            apply_log_level(config.monitoring)
            health = HealthMonitor(
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
            metrics = FrameworkMetrics()
            runtime = cls(
                config,
                events,
                root,
                actor_system,
                tool_bus,
                detector,
                health,
                metrics,
                spans=spans,
                breakers=breakers,
                config_loader=config_loader,
            )
            runtimes.append(runtime)
            metrics.attach(events)
            metrics.add_tool_registry(tool_bus)  # only its tools get a tool label
            metrics.add_actors(actor_system.actors)
            metrics.add_event_bus(events)
            metrics.add_blocking_detector(detector)
            metrics.add_health(health)
            await root.start_child(health.run, name="health", restart=Restart.PERMANENT)
            await root.start_child(runtime._serve_tasks, name="tasks", restart=Restart.PERMANENT)
            if serve_http:
                http = await root.start_child(
                    functools.partial(
                        serve_monitoring,
                        config.monitoring.http_host,
                        config.monitoring.http_port,
                        health=health,
                        registry=metrics.registry,
                        approvals=tool_bus.approvals,
                        observer=Observer(
                            tree=functools.partial(snapshot, root),
                            actors=actor_system.actors,
                            tools=tool_bus.statistics,
                            events=events,
                            clock=trio.current_time,
                        ),
                    ),
                    name="http",
                    restart=Restart.PERMANENT,
                )
                runtime.http_port = http.value
            if settings.max_memory is not None:
                await root.start_child(
                    memory_watchdog,
                    settings.max_memory,
                    name="memory-watchdog",
                    restart=Restart.PERMANENT,
                )
            # Watch the loop from here on: the framework's own start-up (imports, the
            # first bindings) is not the user's blocking code.
            trio.lowlevel.add_instrument(detector)
            try:
                # The step that added the detector is not timed: start the body in a
                # fresh one, so blocking code at its very beginning is seen too.
                await trio.lowlevel.checkpoint()
                yield runtime
                await runtime.graceful_shutdown()
            finally:
                trio.lowlevel.remove_instrument(detector)
                metrics.detach()

    async def _serve_tasks(
        self, *, task_status: trio.TaskStatus[TaskExecutor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The root's ``tasks`` child: the task executor, built from ``tasks.*``."""
        settings = self.config.tasks
        async with TaskExecutor(
            max_concurrency=settings.max_concurrency,
            queue_size=settings.queue_size,
            timeout=settings.timeout,
            retry=_assembly.task_retry_policy(settings),
            events=self.events,
            name="tasks",
        ) as executor:
            self._tasks = executor
            task_status.started(executor)
            try:
                await trio.sleep_forever()
            finally:
                if self._tasks is executor:
                    self._tasks = None

    # -- live reconfiguration -------------------------------------------------------------

    async def reconfigure(self, config: AgentConfig, *, trigger: str = "reconfigure") -> None:
        """Apply ``config`` to the running runtime; healthy actors keep running.

        Applied live: restart intensities and budgets, backoff, escalation timeout,
        breaker thresholds (new and live breakers), heartbeat and child limits (for
        actors spawned from now on), shutdown timeout, ``actors.*`` (ask timeout, actor
        limit, dead-letter log size; mailbox capacity for new actors), log level,
        trace sampling, health-check interval and timeout, tool deadlines, retries,
        blocking threshold and default policy, ``pools.*`` (pools opened from now on),
        ``agents.*`` and ``orchestration.*`` (read where they are used). A change to a
        field fixed when the runtime opened (see
        :data:`~mister_smith.runtime.FIXED_AT_OPEN`) is refused before anything is
        applied. Emits :class:`~mister_smith.events.ConfigReloaded` with the changed
        key paths.

        Raises:
            ConfigError: ``config`` changes fields that cannot change while running
                (each named with why), or is not an ``AgentConfig``.
        """
        if not isinstance(config, AgentConfig):
            raise ConfigError(f"reconfigure needs an AgentConfig, got {type(config).__name__}")
        async with self._reconfigure_lock:
            changed = changed_paths(self.config, config)
            problems = refused(changed)
            if problems:
                raise ConfigError(
                    "these settings cannot change while the runtime runs (restart it): "
                    + "; ".join(problems)
                )
            if changed:
                self._apply(config)
                self.config = config
            logger.info("runtime: configuration applied (%s): %s", trigger, ", ".join(changed))
            self.events.emit(ConfigReloaded(source="runtime", changed=changed, trigger=trigger))
            await trio.lowlevel.checkpoint()

    def _apply(self, config: AgentConfig) -> None:
        supervision = config.supervision
        limit = _assembly.restart_limit(supervision)
        backoff = _assembly.backoff(supervision)
        self.supervision.reconfigure(
            max_restarts=limit.max_restarts,
            restart_window=limit.window,
            backoff=backoff,
            escalation_timeout=supervision.escalation_timeout,
            shutdown_timeout=supervision.shutdown_timeout,
        )
        system = self.actor_system
        system.reconfigure(
            restart_limit=limit,
            backoff=backoff,
            escalation_timeout=supervision.escalation_timeout,
            ask_timeout=config.actors.ask_timeout,
            heartbeat_interval=supervision.heartbeat_interval,
            heartbeat_timeout=supervision.heartbeat_timeout,
        )
        system.default_restart = supervision.strategy.restart_type
        system.max_children_per_supervisor = supervision.max_children_per_supervisor
        system.max_actors = config.actors.max_agents
        system.mailbox_capacity = config.actors.mailbox_capacity
        system.resize_dead_letter_log(config.actors.dead_letter_log_size)
        self._breakers.reconfigure(_assembly.BreakerSettings.of(supervision))
        apply_log_level(config.monitoring)
        self._spans.sampling_rate = config.monitoring.trace_sampling_rate
        self.health.interval = config.monitoring.health_check_interval
        self.health.timeout = config.monitoring.health_check_timeout
        tools = config.tools
        self.tool_bus.reconfigure(
            default_timeout=tools.default_timeout,
            default_policy=cast(ToolPolicy, tools.default_policy),
            max_retries=tools.max_retries,
        )
        self.blocking_detector.threshold = tools.blocking_threshold

    async def reload(self, *, trigger: str = "reload") -> None:
        """Re-read the configuration with the runtime's ``config_loader`` and apply it
        (:meth:`reconfigure`); without a loader, re-apply the current one (a
        ``ConfigReloaded`` with nothing changed)."""
        loader = self._config_loader
        config = self.config if loader is None else await trio.to_thread.run_sync(loader)
        await self.reconfigure(config, trigger=trigger)

    # -- stopping ---------------------------------------------------------------------------

    async def graceful_shutdown(self, timeout: float | None = None) -> None:
        """Stop everything in reverse start order.

        Args:
            timeout: Upper bound in seconds (default: the sum of the children's
                shutdown timeouts); children still running then are cancelled, and
                any that outlive that too are reported (``ShutdownStuck``).

        Raises:
            ValueError: ``timeout`` is negative or NaN (nothing was stopped).
        """
        if self.supervision.state == "running":
            logger.info("runtime: graceful shutdown")
        await self.supervision.stop(timeout=timeout)

    def statistics(self) -> RuntimeStatistics:
        """Every component's counters, in one frozen record."""
        tasks = self._tasks
        return RuntimeStatistics(
            supervision=self.supervision.statistics(),
            actors=self.actor_system.statistics(),
            events=self.events.statistics(),
            tools=self.tool_bus.statistics(),
            blocking=self.blocking_detector.statistics(),
            tasks=None if tasks is None else tasks.statistics(),
            health=self.health.statistics(),
        )


def _mailboxes(system: ActorSystem) -> Callable[[], dict[str, ActorRef]]:
    def current() -> dict[str, ActorRef]:
        return {ref.name: ref for ref in system.actors()}

    return current


def open_runtime(
    config: AgentConfig | None = None,
    *,
    middleware: Sequence[AgentMiddleware] = (),
    serve_http: bool = False,
    config_loader: ConfigLoader | None = None,
) -> AbstractAsyncContextManager[RuntimeManager]:
    """``async with open_runtime(config) as runtime:`` — Trio's naming for
    :meth:`RuntimeManager.open` (an ``open_*`` async context manager owns the tasks it
    starts); same arguments, same behaviour."""
    return RuntimeManager.open(
        config, middleware=middleware, serve_http=serve_http, config_loader=config_loader
    )
