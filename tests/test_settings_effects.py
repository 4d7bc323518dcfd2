"""Every configuration field acts, or is listed as not applicable with a reason.

``test_every_settings_field_is_consumed_or_listed`` enumerates ``attrs.fields`` of every
settings class reachable from :class:`~mister_smith.config.AgentConfig` and fails if a
field is in neither table. ``CONSUMED`` maps each consumed field to the behavioural test
(virtual time, under ``RuntimeManager.open``) showing its effect; most live in this
module, a few where the feature is tested in depth.
"""

from __future__ import annotations

import ast
import itertools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mister_smith.actors import Actor, ActorContext
from mister_smith.agents import AgentSpec, ScriptedModel
from mister_smith.agents.script import after_tool, answer, call_tools, first_turn, rule
from mister_smith.config import (
    ActorSettings,
    AgentConfig,
    AgentSettings,
    EventSettings,
    MonitoringSettings,
    PoolSettings,
    SupervisionSettings,
    SupervisionStrategy,
    TaskSettings,
    ToolSettings,
)
from mister_smith.errors import (
    MailboxFull,
    PoolExhausted,
    SupervisionError,
    TaskQueueFull,
    TaskTimeout,
    ToolPermissionDenied,
    ToolTimeout,
)
from mister_smith.events import (
    CircuitStateChanged,
    EventBus,
    LoopBlocked,
    SupervisionDecision,
    TaskFailed,
)
from mister_smith.runtime import FIXED_AT_OPEN, RuntimeManager
from mister_smith.supervision import Restart, RestartLimit, StrategyKind, shutdown_grace
from mister_smith.tools import EchoTool, tool
from mister_smith.types import TaskId

# -- the tables -------------------------------------------------------------------------------

HERE = "tests.test_settings_effects"
PERSIST = "tests.test_persistence_settings"

CONSUMED: dict[str, str] = {
    "runtime.blocking_threads": "tests.test_runtime::test_settings_take_effect",
    "runtime.max_memory": (
        "tests.test_runtime::test_memory_watchdog_raises_a_resource_error_through_supervision"
    ),
    "runtime.thread_stack_size": "tests.test_runtime::test_settings_take_effect",
    "supervision.max_restart_attempts": f"{HERE}::test_restart_budget_per_actor",
    "supervision.restart_window": f"{HERE}::test_restart_budget_per_actor",
    "supervision.escalation_timeout": f"{HERE}::test_escalation_timeout_bounds_giving_up",
    "supervision.strategy": f"{HERE}::test_strategy_is_the_default_restart_type",
    "supervision.restart_strategy": f"{HERE}::test_restart_strategy_is_the_roots",
    "supervision.backoff_initial": f"{HERE}::test_backoff_settings_shape_the_delays",
    "supervision.backoff_max": f"{HERE}::test_backoff_settings_shape_the_delays",
    "supervision.backoff_factor": f"{HERE}::test_backoff_settings_shape_the_delays",
    "supervision.backoff_jitter": f"{HERE}::test_backoff_jitter_spreads_the_delay",
    "supervision.shutdown_timeout": f"{HERE}::test_shutdown_timeout_bounds_cleanup",
    "supervision.max_children_per_supervisor": (
        "tests.test_fault_isolation::test_max_children_per_supervisor_overflows_into_sibling_domains"
    ),
    "supervision.heartbeat_interval": (
        "tests.test_fault_isolation::test_a_hung_handler_is_detected_by_heartbeat_and_restarted"
    ),
    "supervision.heartbeat_timeout": (
        "tests.test_fault_isolation::test_a_hung_handler_is_detected_by_heartbeat_and_restarted"
    ),
    "supervision.breaker_failure_threshold": f"{HERE}::test_breaker_settings_gate_restarts",
    "supervision.breaker_reset_timeout": f"{HERE}::test_breaker_settings_gate_restarts",
    "supervision.breaker_half_open_calls": f"{HERE}::test_breaker_settings_gate_restarts",
    "monitoring.health_check_interval": f"{HERE}::test_health_interval_and_timeout",
    "monitoring.health_check_timeout": f"{HERE}::test_health_interval_and_timeout",
    "monitoring.log_level": f"{HERE}::test_log_level_is_applied",
    "monitoring.trace_sampling_rate": (
        "tests.test_tracing_wiring::test_runtime_wires_spans_only_when_they_can_record"
    ),
    "monitoring.http_host": "tests.test_runtime::test_monitoring_endpoints_over_loopback",
    "monitoring.http_port": "tests.test_runtime::test_monitoring_endpoints_over_loopback",
    "actors.mailbox_capacity": f"{HERE}::test_actor_settings",
    "actors.max_agents": "tests.test_fault_isolation::test_max_agents_is_enforced_by_the_runtime",
    "actors.ask_timeout": f"{HERE}::test_actor_settings",
    "actors.dead_letter_log_size": f"{HERE}::test_actor_settings",
    "events.history_size": f"{HERE}::test_event_settings",
    "events.subscriber_buffer": f"{HERE}::test_event_settings",
    "tools.default_timeout": f"{HERE}::test_tool_settings",
    "tools.max_retries": f"{HERE}::test_tool_retries",
    "tools.blocking_threshold": f"{HERE}::test_blocking_threshold",
    "tools.default_policy": f"{HERE}::test_tool_settings",
    "tasks.timeout": f"{HERE}::test_task_settings",
    "tasks.queue_size": f"{HERE}::test_task_settings",
    "tasks.max_concurrency": f"{HERE}::test_task_settings",
    "tasks.retry_max_attempts": f"{HERE}::test_task_retry_settings",
    "tasks.retry_base_delay": f"{HERE}::test_task_retry_settings",
    "tasks.retry_max_delay": f"{HERE}::test_task_retry_settings",
    "tasks.retry_factor": f"{HERE}::test_task_retry_settings",
    "pools.min_size": f"{HERE}::test_pool_settings",
    "pools.max_size": f"{HERE}::test_pool_settings",
    "pools.acquire_timeout": f"{HERE}::test_pool_settings",
    "pools.max_idle": f"{HERE}::test_pool_settings",
    "pools.max_lifetime": f"{HERE}::test_pool_lifetime",
    "agents.max_tool_calls_per_turn": f"{HERE}::test_agent_limits_cap_runtime_agents",
    "agents.max_tool_calls_per_task": f"{HERE}::test_agent_limits_cap_runtime_agents",
    "agents.openai_model": "tests.test_wire_conformance::test_cli_models_come_from_the_config",
    "agents.anthropic_model": ("tests.test_wire_conformance::test_cli_models_come_from_the_config"),
    "agents.max_response_bytes": (
        "tests.security.test_model_response_limits::"
        "test_the_cap_comes_from_the_agents_config_section"
    ),
    "persistence.path": f"{PERSIST}::test_path_names_the_store_file",
    "persistence.synchronous": f"{PERSIST}::test_synchronous_sets_the_commit_durability",
    "persistence.batch_max": f"{PERSIST}::test_batch_max_caps_operations_per_commit",
    "persistence.max_record_bytes": f"{PERSIST}::test_max_record_bytes_refuses_larger_records",
    "persistence.dedupe_window": (
        f"{PERSIST}::test_dedupe_window_is_how_long_handled_ids_are_remembered"
    ),
    "persistence.dedupe_capacity": f"{PERSIST}::test_dedupe_capacity_bounds_the_remembered_ids",
    "persistence.dead_letter_capacity": f"{PERSIST}::test_dead_letter_retention",
    "persistence.dead_letter_max_age": f"{PERSIST}::test_dead_letter_retention",
    "persistence.journal_max_entries": f"{PERSIST}::test_journal_retention",
    "persistence.journal_max_age": f"{PERSIST}::test_journal_retention",
    "distributed.nats_url": "tests.test_distributed_settings::test_the_node_joins_as_configured",
    "distributed.cluster": "tests.test_distributed_settings::test_the_node_joins_as_configured",
    "distributed.node_name": "tests.test_distributed_settings::test_the_node_joins_as_configured",
    "distributed.registry_ttl": (
        "tests.test_distributed_node::test_killed_nodes_shards_restart_on_a_survivor"
    ),
    "distributed.outbound_bytes": (
        "tests.test_distributed_remote::test_backpressure_across_the_bridge"
    ),
    "distributed.inbound_capacity": (
        "tests.test_distributed_remote::test_backpressure_across_the_bridge"
    ),
    "distributed.connect_timeout": (
        "tests.test_distributed_settings::test_connect_timeout_bounds_the_first_connection"
    ),
    "distributed.reconnect_wait": (
        "tests.test_distributed_settings::test_reconnect_settings_bound_how_long_the_client_tries"
    ),
    "distributed.max_reconnect_attempts": (
        "tests.test_distributed_settings::test_reconnect_settings_bound_how_long_the_client_tries"
    ),
    "distributed.max_payload": (
        "tests.test_distributed_settings::test_max_payload_bounds_what_crosses_the_wire"
    ),
}
"""Consumed fields, each with the test (``module::function``) showing its effect."""

NOT_APPLICABLE: dict[str, str] = {
    "runtime.worker_threads": "Trio runs every task on one thread; kept so design configs load",
    "monitoring.metrics_export_interval": "Prometheus pulls /metrics; nothing is pushed",
    "orchestration.": "deployment, not the process: rendered by render_kubernetes (test_k8s)",
}
"""Fields (or a section prefix ending in ``.``) no running process uses, with why."""


def _leaf_paths(cls: type, prefix: str = "") -> list[str]:
    paths: list[str] = []
    for field in attrs.fields(cls):
        kind = field.type
        if isinstance(kind, type) and attrs.has(kind):
            paths.extend(_leaf_paths(kind, f"{prefix}{field.name}."))
        else:
            paths.append(f"{prefix}{field.name}")
    return paths


def _not_applicable(path: str) -> bool:
    return any(
        path == key or (key.endswith(".") and path.startswith(key)) for key in NOT_APPLICABLE
    )


def test_every_settings_field_is_consumed_or_listed() -> None:
    paths = _leaf_paths(AgentConfig)
    assert len(paths) > 60  # the orchestration subtree included
    unlisted = [p for p in paths if p not in CONSUMED and not _not_applicable(p)]
    assert unlisted == [], f"settings that nothing consumes and no reason excuses: {unlisted}"
    stale = [p for p in CONSUMED if p not in paths]
    assert stale == [], f"CONSUMED names fields that do not exist: {stale}"
    both = [p for p in CONSUMED if _not_applicable(p)]
    assert both == []


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted(CONSUMED))
def test_each_consumed_field_names_a_real_behavioural_test(path: str) -> None:
    module_name, function = CONSUMED[path].split("::")
    source = ROOT / (module_name.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    tests = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert function in tests, f"{path}: no test {CONSUMED[path]}"


def test_fields_fixed_at_open_are_real_fields() -> None:
    paths = set(_leaf_paths(AgentConfig))
    assert set(FIXED_AT_OPEN) <= paths


# -- helpers ------------------------------------------------------------------------------------


def config(**sections: Any) -> AgentConfig:
    """The default configuration with some sections' fields changed."""
    base = AgentConfig()
    changes = {
        name: attrs.evolve(getattr(base, name), **fields) for name, fields in sections.items()
    }
    return attrs.evolve(base, **changes)


class Crashy(Actor):
    async def handle(self, message: Any, ctx: ActorContext) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if isinstance(message, float):
            await trio.sleep(message)
        return (message, ctx.incarnation)


def decision_times(events: EventBus, child: str) -> list[float]:
    return [e.timestamp for e in events.history(SupervisionDecision) if e.child == child]


# -- supervision ----------------------------------------------------------------------------------


async def test_restart_budget_per_actor(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(supervision={"max_restart_attempts": 1, "restart_window": 10.0})
    async with RuntimeManager.open(cfg) as rt:
        spaced = await rt.actor_system.spawn(Crashy, name="spaced")
        dense = await rt.actor_system.spawn(Crashy, name="dense")
        for _ in range(3):  # one crash per 11 s: never 2 in the 10 s window
            with pytest.raises(Exception, match="crashed"):
                await spaced.ask("boom")
            await trio.sleep(11)
        assert spaced.is_alive
        for _ in range(2):  # two crashes within the window: the second spends it
            with pytest.raises(Exception, match="crashed"):
                await dense.ask("boom")
            await trio.sleep(1)
        assert not dense.is_alive


async def test_escalation_timeout_bounds_giving_up(autojump_clock: trio.abc.Clock) -> None:
    async def stubborn() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with shutdown_grace():
                await trio.sleep(1000)

    async def fatal() -> None:
        await trio.sleep(1)
        raise SupervisionError("explicit")  # asks the root to escalate: the run ends

    cfg = config(supervision={"escalation_timeout": 4.0, "shutdown_timeout": 500.0})
    with pytest.raises(Exception, match="explicit"):
        async with RuntimeManager.open(cfg) as rt:
            await rt.supervision.start_child(stubborn, name="stubborn")
            await rt.supervision.start_child(fatal, name="fatal")
            await trio.sleep_forever()
    assert trio.current_time() == pytest.approx(5.0, abs=0.1)


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [(SupervisionStrategy.RESTART_TRANSIENT, True), (SupervisionStrategy.RESTART_TEMPORARY, False)],
)
async def test_strategy_is_the_default_restart_type(
    autojump_clock: trio.abc.Clock, strategy: SupervisionStrategy, restarted: bool
) -> None:
    async with RuntimeManager.open(config(supervision={"strategy": strategy})) as rt:
        ref = await rt.actor_system.spawn(Crashy)
        with pytest.raises(Exception, match="crashed"):
            await ref.ask("boom")
        await trio.sleep(1)
        assert ref.is_alive is restarted


async def test_restart_strategy_is_the_roots(autojump_clock: trio.abc.Clock) -> None:
    starts: list[str] = []

    async def worker(name: str) -> None:
        starts.append(name)
        if name == "a" and starts.count("a") == 1:
            await trio.sleep(1)
            raise ValueError("a fails once")
        await trio.sleep_forever()

    cfg = config(supervision={"restart_strategy": StrategyKind.ONE_FOR_ALL, "backoff_initial": 0})
    async with RuntimeManager.open(cfg) as rt:
        await rt.supervision.start_child(worker, "a", name="a")
        await rt.supervision.start_child(worker, "b", name="b")
        await trio.sleep(2)
        # one-for-all: a's crash restarted its siblings (b; the actors domain, health...)
        assert starts.count("b") == 2
        assert rt.actor_system.supervisor.state == "running"


async def test_backoff_settings_shape_the_delays(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(
        supervision={
            "backoff_initial": 1.0,
            "backoff_factor": 3.0,
            "backoff_max": 5.0,
            "backoff_jitter": 0.0,
            "max_restart_attempts": 10,
        }
    )
    async with RuntimeManager.open(cfg) as rt:
        ref = await rt.actor_system.spawn(Crashy, name="b")
        answered: list[float] = []
        for _ in range(4):
            with pytest.raises(Exception, match="crashed"):
                await ref.ask("boom", timeout=60)
            crashed = trio.current_time()
            await ref.ask("up?", timeout=60)
            answered.append(trio.current_time() - crashed)
        assert answered == pytest.approx([1.0, 3.0, 5.0, 5.0])  # x3, capped at 5


async def test_backoff_jitter_spreads_the_delay(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(supervision={"backoff_initial": 2.0, "backoff_jitter": 0.5})
    delays: list[float] = []
    async with RuntimeManager.open(cfg) as rt:
        for n in range(8):
            ref = await rt.actor_system.spawn(Crashy, name=f"j{n}")
            with pytest.raises(Exception, match="crashed"):
                await ref.ask("boom")
            crashed = trio.current_time()
            await ref.ask("up?")
            delays.append(trio.current_time() - crashed)
    assert all(1.0 <= d <= 3.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 1  # spread, not one fixed delay


async def test_shutdown_timeout_bounds_cleanup(autojump_clock: trio.abc.Clock) -> None:
    class SlowStop(Actor):
        async def handle(self, message: Any, ctx: ActorContext) -> Any:
            return message

        async def on_stop(self, ctx: ActorContext) -> None:
            await trio.sleep(100)

    async with RuntimeManager.open(config(supervision={"shutdown_timeout": 2.0})) as rt:
        ref = await rt.actor_system.spawn(SlowStop)
        started = trio.current_time()
        await ref.stop()
        assert trio.current_time() - started == pytest.approx(2.0, abs=0.05)


async def test_breaker_settings_gate_restarts(autojump_clock: trio.abc.Clock) -> None:
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(trio.current_time())
        raise ConnectionError("down")  # CircuitBreaker recovery

    cfg = config(
        supervision={
            "breaker_failure_threshold": 2,
            "breaker_reset_timeout": 7.0,
            "breaker_half_open_calls": 1,
        }
    )
    async with RuntimeManager.open(cfg) as rt:
        await rt.supervision.start_child(
            flaky, name="flaky", restart=Restart.PERMANENT, restart_limit=RestartLimit(2, 60)
        )
        await trio.sleep(100)
        opened = rt.events.history(CircuitStateChanged, lambda e: e.new_state == "open")
        assert rt.supervision.state == "running"
        assert "flaky" not in [c.name for c in rt.supervision.children()]
    # 2 failures open it; it lets a probe through after reset_timeout (7 s).
    # Each probe's admission closes the breaker again (half_open_calls=1), so each
    # reopening takes 2 more failures; the third opening in a row is one more than
    # its budget (2) allows: the child is stopped, the runtime goes on.
    assert starts == [0.0, 0.0, 7.0, 7.0, 14.0, 14.0]
    assert len(opened) == 2  # the third failure that would open it stops the child


# -- monitoring ----------------------------------------------------------------------------------


async def test_health_interval_and_timeout(autojump_clock: trio.abc.Clock) -> None:
    rounds: list[float] = []

    async def slow_check() -> bool:
        rounds.append(trio.current_time())
        await trio.sleep(5)
        return True

    from mister_smith.resources import FunctionCheck

    cfg = config(monitoring={"health_check_interval": 10.0, "health_check_timeout": 2.0})
    async with RuntimeManager.open(cfg) as rt:
        rt.health.add_check(FunctionCheck("slow", slow_check))
        await trio.sleep(35)
        assert rounds == [10.0, 20.0, 30.0]
        assert rt.health.component("slow").report.reason == "timed out after 2 s"


async def test_log_level_is_applied(autojump_clock: trio.abc.Clock) -> None:
    async with RuntimeManager.open(config(monitoring={"log_level": "error"})):
        assert logging.getLogger("mister_smith").level == logging.ERROR
    async with RuntimeManager.open(config(monitoring={"log_level": "debug"})):
        assert logging.getLogger("mister_smith").level == logging.DEBUG
    logging.getLogger("mister_smith").setLevel(logging.NOTSET)


# -- actors and events ---------------------------------------------------------------------------


async def test_actor_settings(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(actors={"mailbox_capacity": 2, "ask_timeout": 3.0, "dead_letter_log_size": 2})
    async with RuntimeManager.open(cfg) as rt:
        ref = await rt.actor_system.spawn(Crashy)
        await ref.tell(100.0)
        await trio.sleep(0.1)
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull, match="2 messages"):
            ref.tell_nowait(3)
        started = trio.current_time()
        with pytest.raises(TimeoutError):
            await ref.ask("late")
        assert trio.current_time() - started == pytest.approx(3.0)
        await ref.stop()
        assert len(rt.actor_system.dead_letters()) == 2  # 3 dead letters, log of 2


async def test_event_settings(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(events={"history_size": 5, "subscriber_buffer": 3})
    async with RuntimeManager.open(cfg) as rt, rt.events.subscribe(TaskFailed) as stream:
        for n in range(10):
            rt.events.emit(
                TaskFailed(source="t", task_id=TaskId.new(), error_type="E", error=str(n))
            )
        assert len(rt.events.history()) == 5
        stats = stream.statistics()
        assert (stats.queued, stats.capacity, stats.dropped) == (3, 3, 7)
        assert [stream.receive_nowait().error for _ in range(3)] == ["7", "8", "9"]


# -- tools ---------------------------------------------------------------------------------------


async def test_tool_settings(autojump_clock: trio.abc.Clock) -> None:
    @tool
    async def nap(seconds: float) -> str:
        """Sleep."""
        await trio.sleep(seconds)
        return "rested"

    async with RuntimeManager.open(config(tools={"default_timeout": 4.0})) as rt:
        rt.tool_bus.register_tool(nap)
        with pytest.raises(ToolPermissionDenied):  # deny by default
            await rt.tool_bus.call("anyone", "nap", {"seconds": 1})
        rt.tool_bus.register_tool(EchoTool(), policy="open")
        assert await rt.tool_bus.call("anyone", "echo", {"message": "hi"}) == {"message": "hi"}
        rt.tool_bus.set_policy("nap", "open")
        started = trio.current_time()
        with pytest.raises(ToolTimeout):
            await rt.tool_bus.call("anyone", "nap", {"seconds": 10})
        assert trio.current_time() - started == pytest.approx(4.0)
    async with RuntimeManager.open(config(tools={"default_policy": "open"})) as rt:
        rt.tool_bus.register_tool(nap)
        assert await rt.tool_bus.call("anyone", "nap", {"seconds": 1}) == "rested"


class Unreliable:
    """An idempotent (or not) tool failing with ConnectionError ``failures`` times."""

    name = "unreliable"
    description = "fails then works"

    def __init__(self, failures: int, *, idempotent: bool) -> None:
        from mister_smith.tools import ToolSchema

        self.input_schema = ToolSchema.empty()
        self.failures = failures
        self.idempotent = idempotent
        self.attempts: list[float] = []

    async def execute(self, args: Mapping[str, Any]) -> object:
        self.attempts.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if len(self.attempts) <= self.failures:
            raise ConnectionError("transient")
        return "ok"


async def test_tool_retries(autojump_clock: trio.abc.Clock) -> None:
    from mister_smith.errors import ToolExecutionFailed

    async with RuntimeManager.open(config(tools={"max_retries": 2})) as rt:
        flaky = Unreliable(2, idempotent=True)
        rt.tool_bus.register_tool(flaky, policy="open")
        assert await rt.tool_bus.call("a", "unreliable", {}) == "ok"
        assert flaky.attempts == [0.0, 0.1, pytest.approx(0.3)]
        assert rt.tool_bus.statistics().tools["unreliable"].retries == 2
        rt.tool_bus.unregister_tool("unreliable")
        too_flaky = Unreliable(3, idempotent=True)
        rt.tool_bus.register_tool(too_flaky, policy="open")
        with pytest.raises(ToolExecutionFailed):
            await rt.tool_bus.call("a", "unreliable", {})
        assert len(too_flaky.attempts) == 3  # the first try and max_retries=2
        rt.tool_bus.unregister_tool("unreliable")
        write_like = Unreliable(1, idempotent=False)
        rt.tool_bus.register_tool(write_like, policy="open")
        with pytest.raises(ToolExecutionFailed):
            await rt.tool_bus.call("a", "unreliable", {})
        assert len(write_like.attempts) == 1  # never run twice


async def test_blocking_threshold() -> None:
    import time

    @tool
    async def hog() -> str:
        """Block the loop (wrongly)."""
        time.sleep(0.05)
        return "done"

    for threshold, reported in ((0.01, True), (1.0, False)):
        async with RuntimeManager.open(config(tools={"blocking_threshold": threshold})) as rt:
            rt.tool_bus.register_tool(hog, policy="open")
            await rt.tool_bus.call("a", "hog", {})
            assert bool(rt.events.history(LoopBlocked)) is reported


# -- tasks ---------------------------------------------------------------------------------------


async def test_task_settings(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(tasks={"timeout": 2.0, "queue_size": 1, "max_concurrency": 2})
    async with RuntimeManager.open(cfg) as rt:
        running = 0
        peak = 0

        async def work(seconds: float) -> float:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await trio.sleep(seconds)
            finally:
                running -= 1
            return seconds

        handles = [rt.tasks.submit_nowait(work, 1.0, retry=_no_retry()) for _ in range(3)]
        with pytest.raises(TaskQueueFull):
            rt.tasks.submit_nowait(work, 1.0)
        assert [await h.result() for h in handles] == [1.0, 1.0, 1.0]
        assert peak == 2
        with pytest.raises(TaskTimeout):
            await rt.tasks.run(work, 5.0, retry=_no_retry())


def _no_retry() -> Any:
    from mister_smith.async_patterns import RetryPolicy

    return RetryPolicy(max_attempts=1)


async def test_task_retry_settings(autojump_clock: trio.abc.Clock) -> None:
    cfg = config(
        tasks={
            "retry_max_attempts": 4,
            "retry_base_delay": 1.0,
            "retry_factor": 3.0,
            "retry_max_delay": 5.0,
        }
    )
    async with RuntimeManager.open(cfg) as rt:
        attempts: list[float] = []

        async def flaky() -> None:
            attempts.append(trio.current_time())
            raise ConnectionError("transient")

        with pytest.raises(ConnectionError):
            await rt.tasks.run(flaky)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps == pytest.approx([1.0, 3.0, 5.0])


# -- pools ---------------------------------------------------------------------------------------


async def test_pool_settings(autojump_clock: trio.abc.Clock) -> None:
    made: list[int] = []

    async def connect() -> int:
        made.append(len(made))
        return made[-1]

    cfg = config(pools={"min_size": 1, "max_size": 2, "acquire_timeout": 3.0, "max_idle": 20.0})
    async with RuntimeManager.open(cfg) as rt, rt.open_pool(connect) as pool:
        assert pool.statistics().size == 1  # min_size warmed
        async with pool.acquire(), pool.acquire():
            started = trio.current_time()
            with pytest.raises(PoolExhausted):
                async with pool.acquire():
                    pass
            assert trio.current_time() - started == pytest.approx(3.0)
        assert pool.statistics().size == 2
        await trio.sleep(60)
        assert pool.statistics().size == 1  # the one above min_size closed when idle


async def test_pool_lifetime(autojump_clock: trio.abc.Clock) -> None:
    async def connect() -> object:
        return object()

    cfg = config(pools={"min_size": 1, "max_size": 2, "max_lifetime": 30.0})
    async with RuntimeManager.open(cfg) as rt, rt.open_pool(connect) as pool:
        await trio.sleep(100)
        assert pool.statistics().expired >= 1


# -- agents --------------------------------------------------------------------------------------


async def test_agent_limits_cap_runtime_agents(autojump_clock: trio.abc.Clock) -> None:
    calls = tuple(("echo", {"message": str(n)}) for n in range(10))
    model = ScriptedModel(
        [rule(first_turn, call_tools(*calls)), rule(after_tool(), answer("done"))]
    )
    cfg = config(agents={"max_tool_calls_per_turn": 4, "max_tool_calls_per_task": 6})
    async with RuntimeManager.open(cfg) as rt:
        rt.tool_bus.register_tool(EchoTool(), policy="open")
        agent = await rt.spawn_agent(AgentSpec(role="worker"), model)
        result = await agent.ask("go")
        assert (result.tool_calls, result.refused_tool_calls) == (4, 6)


# -- the sections' types are the ones the runtime reads ---------------------------------------


def test_sections_are_the_config_classes() -> None:
    cfg = AgentConfig()
    for section, cls in [
        ("supervision", SupervisionSettings),
        ("monitoring", MonitoringSettings),
        ("actors", ActorSettings),
        ("events", EventSettings),
        ("tools", ToolSettings),
        ("tasks", TaskSettings),
        ("pools", PoolSettings),
        ("agents", AgentSettings),
    ]:
        assert isinstance(getattr(cfg, section), cls)
