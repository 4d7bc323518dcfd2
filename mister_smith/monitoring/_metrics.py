"""Framework metrics in prometheus-client, one ``CollectorRegistry`` per runtime.

Two feeds fill the registry:

* **events**: :meth:`FrameworkMetrics.attach` registers handler callbacks on an
  :class:`~mister_smith.events.EventBus`, so counters and histograms follow what the
  framework announces (spawns, restarts, tool calls, dead letters, blocked loop...);
* **statistics on scrape**: pools, actors' mailboxes, the event bus, the blocking
  detector and health are read (``statistics()``) each time the registry is
  collected, so gauges are never stale and nobody has to update them.

The global ``prometheus_client.REGISTRY`` is never touched: two runtimes in one
process (or two tests) keep separate metrics.

Label values are bounded (see :mod:`._labels`): a ``tool`` label only names tools
registered on the registry given to :meth:`FrameworkMetrics.add_tool_registry`, and
other labels taken from events admit a bounded number of values.

Collection is safe from a worker thread (``/metrics`` renders in one, so a large
registry does not block the loop): prometheus-client's metrics lock themselves, and the
statistics read on scrape are read on the Trio loop (``trio.from_thread.run_sync``),
never concurrently with the objects they describe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ..events import (
    AgentSpawned,
    AgentStopped,
    ChildExited,
    CircuitStateChanged,
    ComponentRecovered,
    DeadLetter,
    ErrorOccurred,
    EventBus,
    ExitKind,
    HandlerRegistration,
    HealthChanged,
    HeartbeatMissed,
    LoopBlocked,
    ResourcePoolExhausted,
    SupervisionDecision,
    TaskCompleted,
    TaskFailed,
    ToolCalled,
    ToolOutcome,
)
from ._labels import MAX_LABEL_VALUES, UNKNOWN_TOOL, LabelBudget, ToolLabels
from ._sources import (
    ActorMetricsSource,
    BlockingMetricsSource,
    EventBusMetricsSource,
    HealthSource,
    PoolMetricsSource,
    PoolStatisticsLike,
    ToolRegistryLike,
)

logger = logging.getLogger("mister_smith.monitoring")

NAMESPACE: Final = "mister_smith"
"""Prefix of every metric name."""

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram buckets (seconds) for tool calls, tasks and message handling."""

BLOCKED_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Histogram buckets (seconds) for steps that blocked the loop."""

_HEALTH_STATUSES: Final = ("healthy", "degraded", "unhealthy", "unknown")

PoolSource = Callable[[], Iterable[PoolStatisticsLike]]
"""Returns the current pools' statistics (e.g. ``lambda: manager.statistics().values()``)."""

ActorSource = Callable[[], Iterable[ActorMetricsSource]]
"""Returns the live actors (e.g. ``system.actors``)."""


def _name(suffix: str) -> str:
    return f"{NAMESPACE}_{suffix}"


class FrameworkMetrics:
    """The framework's metrics, in a registry of their own.

    Args:
        registry: Where to register (default: a new ``CollectorRegistry``; never the
            process-global one).
        max_label_values: Distinct values each label taken from event text may have
            (supervisor, actor, role, pool, breaker, component, reason, and registered
            tool names) before further ones are counted as ``other``.

    Attributes:
        registry: The registry to expose (``/metrics`` serves it).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        max_label_values: int = MAX_LABEL_VALUES,
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        reg = self.registry
        self._tool_label = ToolLabels()
        self._budgets = {
            kind: LabelBudget(max_label_values)
            for kind in (
                *("role", "supervisor", "breaker", "actor", "reason", "pool", "component"),
                "tool",
                "error_type",
            )
        }
        # -- actors and supervision (events) -------------------------------------------
        self.actors = Gauge(_name("actors"), "Actors alive (spawned minus stopped).", registry=reg)
        self.actors_spawned = Counter(
            _name("actors_spawned"), "Actors spawned.", ["role"], registry=reg
        )
        self.actors_stopped = Counter(
            _name("actors_stopped"), "Actors stopped for good.", registry=reg
        )
        self.restarts = Counter(
            _name("restarts"),
            "Children brought back by their supervisor, by recovery action.",
            ["supervisor", "action"],
            registry=reg,
        )
        self.supervision_decisions = Counter(
            _name("supervision_decisions"),
            "Decisions taken by supervisors about exited children.",
            ["supervisor", "action"],
            registry=reg,
        )
        self.child_failures = Counter(
            _name("child_failures"),
            "Supervised children that exited with an error.",
            ["supervisor"],
            registry=reg,
        )
        self.errors = Counter(
            _name("errors"), "Errors observed, by severity.", ["severity"], registry=reg
        )
        self.heartbeats_missed = Counter(
            _name("heartbeats_missed"), "Children declared hung (missed heartbeats).", registry=reg
        )
        self.circuit_transitions = Counter(
            _name("circuit_breaker_transitions"),
            "Circuit breaker state changes, by new state.",
            ["breaker", "state"],
            registry=reg,
        )
        # -- messages, tools, tasks --------------------------------------------------------
        self.message_duration = Histogram(
            _name("message_duration_seconds"),
            "Time actors spent handling a message, by outcome.",
            ["actor", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.dead_letters = Counter(
            _name("dead_letters"),
            "Accepted messages that will never be handled, by reason.",
            ["reason"],
            registry=reg,
        )
        self.tool_calls = Counter(
            _name("tool_calls"), "Tool calls, by outcome.", ["tool", "outcome"], registry=reg
        )
        self.tool_timeouts = Counter(
            _name("tool_timeouts"),
            "Tool calls that ran past their deadline.",
            ["tool"],
            registry=reg,
        )
        self.tool_duration = Histogram(
            _name("tool_call_duration_seconds"),
            "Tool call latency.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.tasks = Counter(
            _name("tasks"), "Tasks finished, by outcome.", ["outcome"], registry=reg
        )
        self.task_duration = Histogram(
            _name("task_duration_seconds"),
            "Duration of completed tasks.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        # -- agents: usage per agent (task events) --------------------------------------
        self.agent_tokens = Counter(
            _name("agent_tokens"),
            "Model tokens used by completed agent tasks, by agent and kind (input/output).",
            ["agent", "kind"],
            registry=reg,
        )
        self.agent_model_requests = Counter(
            _name("agent_model_requests"),
            "Model requests made by completed agent tasks, by agent.",
            ["agent"],
            registry=reg,
        )
        self.agent_task_failures = Counter(
            _name("agent_task_failures"),
            "Agent tasks that failed, by agent and error type (e.g. UsageLimitExceeded).",
            ["agent", "error_type"],
            registry=reg,
        )
        # -- loop, pools, health (events) -----------------------------------------------
        self.loop_blocked = Counter(
            _name("loop_blocked"), "Task steps that blocked the Trio loop.", registry=reg
        )
        self.loop_blocked_duration = Histogram(
            _name("loop_blocked_seconds"),
            "How long blocking task steps held the loop.",
            buckets=BLOCKED_BUCKETS,
            registry=reg,
        )
        self.pool_exhausted = Counter(
            _name("pool_exhausted"),
            "Acquisitions that found a pool exhausted for the whole acquire timeout.",
            ["pool"],
            registry=reg,
        )
        self.health_changes = Counter(
            _name("health_changes"),
            "Health check status changes, by new status.",
            ["component", "status"],
            registry=reg,
        )
        self.label_overflows = Counter(
            _name("metric_label_overflows"),
            "Label values pooled as 'other' because a label had too many distinct values.",
            ["label"],
            registry=reg,
        )
        # -- statistics read on scrape --------------------------------------------------
        self._scraped = _StatisticsCollector()
        reg.register(self._scraped)
        self._registrations: list[HandlerRegistration] = []
        self._attached: list[EventBus] = []

    # -- event feed -----------------------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Count what ``bus`` announces, and export its own counters on scrape.

        Handlers are quick, synchronous and never raise into ``emit``. Attaching the
        same bus again does nothing; :meth:`detach` removes every handler.
        """
        if any(bus is attached for attached in self._attached):
            return
        self._attached.append(bus)
        handlers: list[tuple[type[Any], Callable[[Any], None]]] = [
            (AgentSpawned, self._on_spawned),
            (AgentStopped, self._on_stopped),
            (ComponentRecovered, self._on_recovered),
            (SupervisionDecision, self._on_decision),
            (ChildExited, self._on_child_exited),
            (ErrorOccurred, self._on_error),
            (HeartbeatMissed, self._on_heartbeat_missed),
            (CircuitStateChanged, self._on_circuit),
            (DeadLetter, self._on_dead_letter),
            (ToolCalled, self._on_tool_called),
            (TaskCompleted, self._on_task_completed),
            (TaskFailed, self._on_task_failed),
            (LoopBlocked, self._on_loop_blocked),
            (ResourcePoolExhausted, self._on_pool_exhausted),
            (HealthChanged, self._on_health_changed),
        ]
        for event_type, handler in handlers:
            self._registrations.append(bus.add_handler(event_type, handler))
        self.add_event_bus(bus)

    def detach(self) -> None:
        """Remove every handler added by :meth:`attach`."""
        for registration in self._registrations:
            registration.remove()
        self._registrations.clear()
        self._attached.clear()

    def _on_spawned(self, event: AgentSpawned) -> None:
        self.actors.inc()
        self.actors_spawned.labels(role=self._label("role", event.role or "")).inc()

    def _on_stopped(self, event: AgentStopped) -> None:
        self.actors.dec()
        self.actors_stopped.inc()

    def _on_recovered(self, event: ComponentRecovered) -> None:
        supervisor = self._label("supervisor", event.supervisor)
        self.restarts.labels(supervisor=supervisor, action=event.action.value).inc()

    def _on_decision(self, event: SupervisionDecision) -> None:
        self.supervision_decisions.labels(
            supervisor=self._label("supervisor", event.supervisor), action=event.action.value
        ).inc()

    def _on_child_exited(self, event: ChildExited) -> None:
        if event.exit is ExitKind.FAILED:
            self.child_failures.labels(supervisor=self._label("supervisor", event.supervisor)).inc()

    def _on_error(self, event: ErrorOccurred) -> None:
        self.errors.labels(severity=event.severity.name.lower()).inc()

    def _on_heartbeat_missed(self, event: HeartbeatMissed) -> None:
        self.heartbeats_missed.inc()

    def _on_circuit(self, event: CircuitStateChanged) -> None:
        self.circuit_transitions.labels(
            breaker=self._label("breaker", event.breaker),
            state=event.new_state,
        ).inc()

    def _on_dead_letter(self, event: DeadLetter) -> None:
        # The kind of reason ("crashed while handling it", "actor stopped"...), not the
        # text after it, which quotes the error.
        kind = event.reason.split(":", 1)[0].strip()[:100]
        self.dead_letters.labels(reason=self._label("reason", kind)).inc()

    def _on_tool_called(self, event: ToolCalled) -> None:
        tool = self._tool_label(event.tool, found=event.outcome is not ToolOutcome.NOT_FOUND)
        if tool != UNKNOWN_TOOL:  # registered names are bounded too: tools come and go
            tool = self._label("tool", tool)
        self.tool_calls.labels(tool=tool, outcome=event.outcome.value).inc()
        if event.outcome is ToolOutcome.TIMEOUT:
            self.tool_timeouts.labels(tool=tool).inc()
        if event.outcome in (ToolOutcome.OK, ToolOutcome.FAILED, ToolOutcome.TIMEOUT):
            self.tool_duration.labels(tool=tool).observe(event.duration)

    def _on_task_completed(self, event: TaskCompleted) -> None:
        self.tasks.labels(outcome="completed").inc()
        self.task_duration.observe(event.duration)
        if event.agent is not None and event.usage:
            agent = self._label("actor", event.agent)
            for kind in ("input", "output"):
                self.agent_tokens.labels(agent=agent, kind=kind).inc(
                    max(0, int(event.usage.get(f"{kind}_tokens", 0)))
                )
            self.agent_model_requests.labels(agent=agent).inc(
                max(0, int(event.usage.get("model_calls", 0)))
            )

    def _on_task_failed(self, event: TaskFailed) -> None:
        self.tasks.labels(outcome="failed").inc()
        if event.agent is not None:
            self.agent_task_failures.labels(
                agent=self._label("actor", event.agent),
                error_type=self._label("error_type", event.error_type),
            ).inc()

    def _on_loop_blocked(self, event: LoopBlocked) -> None:
        self.loop_blocked.inc()
        self.loop_blocked_duration.observe(event.duration)

    def _on_pool_exhausted(self, event: ResourcePoolExhausted) -> None:
        self.pool_exhausted.labels(pool=self._label("pool", event.pool)).inc()

    def _on_health_changed(self, event: HealthChanged) -> None:
        self.health_changes.labels(
            component=self._label("component", event.component),
            status=event.status,
        ).inc()

    # -- direct observations ----------------------------------------------------------------

    def observe_message(self, actor: str, duration: float, *, outcome: str = "handled") -> None:
        """Record one message handled by ``actor`` (outcome ``handled`` or ``failed``)."""
        self.message_duration.labels(actor=self._label("actor", actor), outcome=outcome).observe(
            duration
        )

    def _label(self, kind: str, value: str) -> str:
        """``value`` as a label of ``kind``, pooled as ``other`` past the kind's budget."""
        budget = self._budgets[kind]
        label = budget(value)
        if label != value:
            self.label_overflows.labels(label=kind).inc()
        return label

    # -- tool names ---------------------------------------------------------------------

    def add_tool_registry(self, registry: ToolRegistryLike) -> None:
        """Label tool metrics by name for the tools registered on ``registry``.

        ``registry`` is a ``ToolBus`` (anything with ``get_tool(name)`` raising a
        ``LookupError`` for unknown names). Only names it knows at the time of a call
        get their own ``tool`` label; without a registry every call counts as
        ``unknown``, since a name in an event proves nothing.
        """
        if not any(registry is known for known in self._tool_label.registries):
            self._tool_label.registries.append(registry)

    # -- scrape-time sources ----------------------------------------------------------------

    def add_pool(self, pool: PoolMetricsSource) -> None:
        """Export ``pool.statistics()`` on every scrape."""
        self._scraped.pool_sources.append(lambda: (pool.statistics(),))

    def add_pools(self, source: PoolSource) -> None:
        """Export the pools ``source()`` returns on every scrape (pools that come and go)."""
        self._scraped.pool_sources.append(source)

    def add_actors(self, source: ActorSource) -> None:
        """Export mailbox depth and message counters of the actors ``source()`` returns."""
        self._scraped.actor_sources.append(source)

    def add_event_bus(self, bus: EventBusMetricsSource) -> None:
        """Export the bus's emitted, dropped and handler-failure counters."""
        if bus not in self._scraped.buses:
            self._scraped.buses.append(bus)

    def add_blocking_detector(self, detector: BlockingMetricsSource) -> None:
        """Export the blocking detector's step counters."""
        self._scraped.detectors.append(detector)

    def add_health(self, health: HealthSource) -> None:
        """Export liveness, readiness and each component's status."""
        self._scraped.health = health


class _StatisticsCollector:
    """Reads ``statistics()`` of registered sources each time the registry is collected."""

    def __init__(self) -> None:
        self.pool_sources: list[PoolSource] = []
        self.actor_sources: list[ActorSource] = []
        self.buses: list[EventBusMetricsSource] = []
        self.detectors: list[BlockingMetricsSource] = []
        self.health: HealthSource | None = None

    def describe(self) -> Iterable[Metric]:
        """Nothing: the families depend on what is registered at scrape time."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Build the families from the sources' current statistics, on the Trio loop.

        From a thread Trio started (``/metrics`` renders in one) the statistics are
        read on the loop with ``trio.from_thread.run_sync``, so they never race the
        objects they describe; on the loop, or outside Trio, they are read directly.
        """
        return iter(_on_the_loop(self._families))

    def _families(self) -> list[Metric]:
        return [
            *self._pools(),
            *self._actors(),
            *self._buses(),
            *self._detectors(),
            *self._health(),
        ]

    def _pools(self) -> Iterator[Metric]:
        if not self.pool_sources:
            return
        connections = GaugeMetricFamily(
            _name("pool_connections"), "Pool connections, by state.", labels=["pool", "state"]
        )
        max_size = GaugeMetricFamily(
            _name("pool_max_size"), "Most connections a pool opens.", labels=["pool"]
        )
        waiting = GaugeMetricFamily(
            _name("pool_waiting"), "Acquirers waiting for a connection.", labels=["pool"]
        )
        counters = {
            "acquired": CounterMetricFamily(
                _name("pool_acquired"), "Successful acquisitions.", labels=["pool"]
            ),
            "timeouts": CounterMetricFamily(
                _name("pool_acquire_timeouts"), "Acquisitions that timed out.", labels=["pool"]
            ),
            "created": CounterMetricFamily(
                _name("pool_connections_created"), "Connections created.", labels=["pool"]
            ),
            "closed": CounterMetricFamily(
                _name("pool_connections_closed"), "Connections closed.", labels=["pool"]
            ),
            "discarded": CounterMetricFamily(
                _name("pool_connections_discarded"),
                "Connections discarded after a failed use.",
                labels=["pool"],
            ),
        }
        for source in self.pool_sources:
            for stats in _safely(source, "pool"):
                name = stats.name
                for state in ("idle", "in_use", "creating", "closing"):
                    value = getattr(stats, state, None)
                    if value is not None:
                        connections.add_metric([name, state], value)
                max_size.add_metric([name], stats.max_size)
                waiting.add_metric([name], stats.waiting)
                for field, family in counters.items():
                    family.add_metric([name], getattr(stats, field))
        yield connections
        yield max_size
        yield waiting
        yield from counters.values()

    def _actors(self) -> Iterator[Metric]:
        if not self.actor_sources:
            return
        depth = GaugeMetricFamily(
            _name("mailbox_depth"), "Messages waiting in an actor's mailbox.", labels=["actor"]
        )
        capacity = GaugeMetricFamily(
            _name("mailbox_capacity"), "Capacity of an actor's mailbox.", labels=["actor"]
        )
        in_flight = GaugeMetricFamily(
            _name("actor_in_flight"), "Messages an actor is handling now.", labels=["actor"]
        )
        messages = CounterMetricFamily(
            _name("messages"),
            "Messages accepted by actors, by outcome.",
            labels=["actor", "outcome"],
        )
        restarts = CounterMetricFamily(
            _name("actor_restarts"), "Restarts of an actor.", labels=["actor"]
        )
        for source in self.actor_sources:
            for actor in _safely(source, "actor"):
                stats = actor.statistics()
                depth.add_metric([stats.name], stats.queued)
                capacity.add_metric([stats.name], stats.capacity)
                flying = getattr(stats, "in_flight", None)
                if flying is not None:
                    in_flight.add_metric([stats.name], flying)
                for outcome in ("handled", "failed", "dead_lettered"):
                    count = getattr(stats, outcome, None)
                    if count is not None:
                        messages.add_metric([stats.name, outcome], count)
                restarted = getattr(stats, "restarts", None)
                if restarted is not None:
                    restarts.add_metric([stats.name], restarted)
        yield depth
        yield capacity
        yield in_flight
        yield messages
        yield restarts

    def _buses(self) -> Iterator[Metric]:
        if not self.buses:
            return
        emitted = CounterMetricFamily(_name("events_emitted"), "Events emitted on the bus.")
        dropped = CounterMetricFamily(
            _name("events_dropped"), "Events dropped from full subscriber queues."
        )
        failures = CounterMetricFamily(
            _name("event_handler_failures"), "Event handler calls that raised."
        )
        for bus in self.buses:
            stats = bus.statistics()
            emitted.add_metric([], stats.emitted)
            dropped.add_metric([], stats.dropped)
            failures.add_metric([], stats.handler_failures)
        yield emitted
        yield dropped
        yield failures

    def _detectors(self) -> Iterator[Metric]:
        if not self.detectors:
            return
        steps = CounterMetricFamily(_name("loop_steps"), "Task steps measured for blocking.")
        blocked = CounterMetricFamily(
            _name("loop_blocked_steps"), "Task steps over the blocking threshold."
        )
        for detector in self.detectors:
            stats = detector.statistics()
            steps.add_metric([], stats.steps)
            blocked.add_metric([], stats.blocked)
        yield steps
        yield blocked

    def _health(self) -> Iterator[Metric]:
        health = self.health
        if health is None:
            return
        live = health.liveness()
        ready = health.readiness()
        yield GaugeMetricFamily(_name("live"), "1 while liveness passes.", value=int(live.ok))
        yield GaugeMetricFamily(_name("ready"), "1 while readiness passes.", value=int(ready.ok))
        status = GaugeMetricFamily(
            _name("health_status"),
            "1 for each component's current status (healthy, degraded, unhealthy, unknown).",
            labels=["component", "status"],
        )
        checks = ready.to_dict().get("checks", {})
        if isinstance(checks, Mapping):
            for component, body in checks.items():
                current = body.get("status") if isinstance(body, Mapping) else None
                for name in _HEALTH_STATUSES:
                    status.add_metric([str(component), name], int(current == name))
        yield status


def _on_the_loop(read: Callable[[], list[Metric]]) -> list[Metric]:
    """``read()`` on the Trio loop: directly if already there, else via ``from_thread``."""
    if trio.lowlevel.in_trio_run():
        return read()
    try:
        return trio.from_thread.run_sync(read)
    except RuntimeError:  # not a Trio thread (e.g. prometheus_client's own server) or
        return read()  # no run at all: nothing on a loop to race with


def _safely(source: Callable[[], Iterable[Any]], kind: str) -> list[Any]:
    """Call a scrape source; a failing one is logged and skipped, not fatal to /metrics."""
    try:
        return list(source())
    except Exception:
        logger.exception("metrics: a %s source raised while scraped", kind)
        return []
