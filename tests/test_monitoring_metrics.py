"""FrameworkMetrics: a private registry fed by event handlers and by statistics on scrape."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import REGISTRY, generate_latest

from mister_smith.errors import ErrorSeverity, RecoveryAction
from mister_smith.events import (
    AgentSpawned,
    AgentStopped,
    ChildExited,
    CircuitStateChanged,
    ComponentRecovered,
    DeadLetter,
    ErrorOccurred,
    EventBus,
    ExitKind,
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
from mister_smith.monitoring import FrameworkMetrics
from mister_smith.resources import FunctionCheck, HealthMonitor, open_pool
from mister_smith.supervision import open_supervisor
from mister_smith.tools import EchoTool, ToolBus
from mister_smith.types import ActorId, Restart, TaskId


def value(metrics: FrameworkMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_instance_has_its_own_registry() -> None:
    first, second = FrameworkMetrics(), FrameworkMetrics()
    assert first.registry is not second.registry
    assert first.registry is not REGISTRY
    assert REGISTRY.get_sample_value("mister_smith_actors") is None
    first.actors.inc()
    assert value(first, "mister_smith_actors") == 1.0
    assert value(second, "mister_smith_actors") == 0.0


def test_events_feed_the_counters() -> None:
    bus = EventBus()
    metrics = FrameworkMetrics()
    metrics.attach(bus)
    metrics.attach(bus)  # idempotent: nothing is counted twice
    tools = ToolBus()
    tools.register_tool(EchoTool())  # only registered tools are labelled by name
    metrics.add_tool_registry(tools)
    actor = ActorId.new()
    bus.emit(AgentSpawned(actor_id=actor, name="a", role="researcher"))
    bus.emit(AgentSpawned(actor_id=actor, name="b"))
    bus.emit(AgentStopped(actor_id=actor, name="b", reason="done"))
    bus.emit(
        SupervisionDecision(
            supervisor="root",
            child="a",
            error_type="ValueError",
            error="x",
            severity=ErrorSeverity.CRITICAL,
            action=RecoveryAction.RESTART,
        )
    )
    bus.emit(
        ComponentRecovered(supervisor="root", child="a", action=RecoveryAction.RESTART, restarts=1)
    )
    bus.emit(
        ChildExited(supervisor="root", child="a", exit=ExitKind.FAILED, error_type="ValueError")
    )
    bus.emit(ChildExited(supervisor="root", child="a", exit=ExitKind.RETURNED))
    bus.emit(
        ErrorOccurred(
            component="root/a", error_type="ValueError", message="x", severity=ErrorSeverity.HIGH
        )
    )
    bus.emit(HeartbeatMissed(child="a", silent_for=20.0))
    bus.emit(CircuitStateChanged(breaker="model", old_state="closed", new_state="open"))
    bus.emit(DeadLetter(actor="a", message="hi", reason="actor stopped"))
    bus.emit(ToolCalled(tool="echo", caller="a", outcome=ToolOutcome.OK, duration=0.02))
    bus.emit(ToolCalled(tool="echo", caller="a", outcome=ToolOutcome.TIMEOUT, duration=30.0))
    bus.emit(ToolCalled(tool="echo", caller="a", outcome=ToolOutcome.DENIED))
    bus.emit(TaskCompleted(task_id=TaskId.new(), duration=1.5))
    bus.emit(TaskFailed(task_id=TaskId.new(), error_type="ValueError", error="x"))
    bus.emit(LoopBlocked(task="slow", duration=0.3))
    bus.emit(ResourcePoolExhausted(pool="db", waited=10.0))
    bus.emit(HealthChanged(component="db", status="unhealthy", reason="down"))

    assert value(metrics, "mister_smith_actors") == 1.0
    assert value(metrics, "mister_smith_actors_spawned_total", role="researcher") == 1.0
    assert value(metrics, "mister_smith_actors_stopped_total") == 1.0
    assert value(metrics, "mister_smith_restarts_total", supervisor="root", action="restart") == 1.0
    assert (
        value(
            metrics, "mister_smith_supervision_decisions_total", supervisor="root", action="restart"
        )
        == 1.0
    )
    assert value(metrics, "mister_smith_child_failures_total", supervisor="root") == 1.0
    assert value(metrics, "mister_smith_errors_total", severity="high") == 1.0
    assert value(metrics, "mister_smith_heartbeats_missed_total") == 1.0
    assert (
        value(
            metrics, "mister_smith_circuit_breaker_transitions_total", breaker="model", state="open"
        )
        == 1.0
    )
    assert value(metrics, "mister_smith_dead_letters_total", reason="actor stopped") == 1.0
    assert value(metrics, "mister_smith_tool_calls_total", tool="echo", outcome="ok") == 1.0
    assert value(metrics, "mister_smith_tool_calls_total", tool="echo", outcome="denied") == 1.0
    assert value(metrics, "mister_smith_tool_timeouts_total", tool="echo") == 1.0
    assert value(metrics, "mister_smith_tool_call_duration_seconds_count", tool="echo") == 2.0
    assert value(metrics, "mister_smith_tool_call_duration_seconds_sum", tool="echo") == 30.02
    assert value(metrics, "mister_smith_tasks_total", outcome="completed") == 1.0
    assert value(metrics, "mister_smith_tasks_total", outcome="failed") == 1.0
    assert value(metrics, "mister_smith_task_duration_seconds_sum") == 1.5
    assert value(metrics, "mister_smith_loop_blocked_total") == 1.0
    assert value(metrics, "mister_smith_loop_blocked_seconds_bucket", le="0.5") == 1.0
    assert value(metrics, "mister_smith_pool_exhausted_total", pool="db") == 1.0
    assert (
        value(metrics, "mister_smith_health_changes_total", component="db", status="unhealthy")
        == 1.0
    )
    assert value(metrics, "mister_smith_events_emitted_total") == 19.0

    metrics.detach()
    bus.emit(LoopBlocked(task="slow", duration=0.3))
    assert value(metrics, "mister_smith_loop_blocked_total") == 1.0
    assert bus.statistics().handlers == 0


def test_observe_message() -> None:
    metrics = FrameworkMetrics()
    metrics.observe_message("writer", 0.2)
    metrics.observe_message("writer", 0.4, outcome="failed")
    assert (
        value(
            metrics,
            "mister_smith_message_duration_seconds_count",
            actor="writer",
            outcome="handled",
        )
        == 1.0
    )
    assert (
        value(
            metrics, "mister_smith_message_duration_seconds_sum", actor="writer", outcome="failed"
        )
        == 0.4
    )


async def test_supervisor_restarts_are_counted(autojump_clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    metrics = FrameworkMetrics()
    metrics.attach(bus)
    crashes = 0

    async def flaky() -> None:
        nonlocal crashes
        if crashes < 2:
            crashes += 1
            raise ValueError("boom")
        await trio.sleep_forever()

    async with open_supervisor("workers", events=bus, keep_alive=True) as supervisor:
        await supervisor.start_child(flaky, restart=Restart.PERMANENT)
        await trio.sleep(1)
        await supervisor.stop()
    assert (
        value(metrics, "mister_smith_restarts_total", supervisor="workers", action="restart") == 2.0
    )
    assert value(metrics, "mister_smith_child_failures_total", supervisor="workers") == 2.0


@attrs.frozen
class ActorStats:
    name: str
    queued: int
    capacity: int
    handled: int
    failed: int
    dead_lettered: int
    in_flight: int
    restarts: int


@attrs.define
class FakeActor:
    stats: ActorStats

    def statistics(self) -> ActorStats:
        return self.stats


@attrs.frozen
class Blocking:
    steps: int
    blocked: int


@attrs.define
class FakeDetector:
    steps: int = 0
    blocked: int = 0

    def statistics(self) -> Blocking:
        return Blocking(self.steps, self.blocked)


async def test_statistics_are_read_on_scrape(autojump_clock: trio.testing.MockClock) -> None:
    metrics = FrameworkMetrics()
    actors = [FakeActor(ActorStats("writer", 3, 10, 5, 1, 0, 1, 2))]
    metrics.add_actors(lambda: actors)
    detector = FakeDetector(steps=100, blocked=2)
    metrics.add_blocking_detector(detector)

    async def connect() -> object:
        await trio.sleep(0)
        return object()

    async with open_pool(connect, name="db", min_size=1, max_size=4) as pool:
        metrics.add_pool(pool)
        async with pool.acquire():
            assert value(metrics, "mister_smith_pool_connections", pool="db", state="in_use") == 1.0
            assert value(metrics, "mister_smith_pool_connections", pool="db", state="idle") == 0.0
        assert value(metrics, "mister_smith_pool_connections", pool="db", state="idle") == 1.0
        assert value(metrics, "mister_smith_pool_max_size", pool="db") == 4.0
        assert value(metrics, "mister_smith_pool_acquired_total", pool="db") == 1.0
        assert value(metrics, "mister_smith_pool_connections_created_total", pool="db") == 1.0

    assert value(metrics, "mister_smith_mailbox_depth", actor="writer") == 3.0
    assert value(metrics, "mister_smith_mailbox_capacity", actor="writer") == 10.0
    assert value(metrics, "mister_smith_actor_in_flight", actor="writer") == 1.0
    assert value(metrics, "mister_smith_messages_total", actor="writer", outcome="handled") == 5.0
    assert value(metrics, "mister_smith_actor_restarts_total", actor="writer") == 2.0
    actors[0] = FakeActor(ActorStats("writer", 7, 10, 9, 1, 0, 0, 2))
    assert value(metrics, "mister_smith_mailbox_depth", actor="writer") == 7.0  # never stale
    assert value(metrics, "mister_smith_loop_steps_total") == 100.0
    detector.blocked = 5
    assert value(metrics, "mister_smith_loop_blocked_steps_total") == 5.0


async def test_pool_sources_that_come_and_go(autojump_clock: trio.testing.MockClock) -> None:
    metrics = FrameworkMetrics()

    async def connect() -> object:
        await trio.sleep(0)
        return object()

    async with open_pool(connect, name="a", min_size=2) as a:
        metrics.add_pools(lambda: [pool.statistics() for pool in (a,) if not pool.closed])
        assert value(metrics, "mister_smith_pool_connections", pool="a", state="idle") == 2.0
    assert value(metrics, "mister_smith_pool_connections", pool="a", state="idle") is None


async def test_failing_source_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    metrics = FrameworkMetrics()

    def broken() -> list[FakeActor]:
        raise RuntimeError("source bug")

    metrics.add_actors(broken)
    text = generate_latest(metrics.registry).decode()
    assert "mister_smith_actors" in text
    assert "source bug" in caplog.text


async def test_health_is_exported(autojump_clock: trio.testing.MockClock) -> None:
    async def fine() -> bool:
        return True

    async def down() -> bool:
        return False

    metrics = FrameworkMetrics()
    health = HealthMonitor(
        [FunctionCheck("db", fine), FunctionCheck("cache", down, required=False)]
    )
    metrics.add_health(health)
    assert value(metrics, "mister_smith_ready") == 0.0  # starting
    assert value(metrics, "mister_smith_live") == 1.0
    assert value(metrics, "mister_smith_health_status", component="db", status="unknown") == 1.0
    await health.check_now()
    assert value(metrics, "mister_smith_ready") == 1.0
    assert value(metrics, "mister_smith_health_status", component="db", status="healthy") == 1.0
    assert value(metrics, "mister_smith_health_status", component="db", status="unknown") == 0.0
    assert (
        value(metrics, "mister_smith_health_status", component="cache", status="unhealthy") == 1.0
    )
